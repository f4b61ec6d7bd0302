//! Reaching Redis: opening connections to one server or a Cluster (TLS included), keeping a
//! few shared ones, and the Lua scripts with the way a call of one is sent.

pub(crate) mod connector;
pub(crate) mod pool;
pub(crate) mod scripts;
pub(crate) mod tls;
