//! The Lua scripts, compiled in from `lua/` and hashed once.
//!
//! Each [`redis::Script`] is sent with EVALSHA. When Redis answers NOSCRIPT (after a restart, a
//! failover to a replica that never saw the script, or `SCRIPT FLUSH`), redis-rs loads the
//! script and retries on the same connection, so the caller sees no failure. The scripts use no
//! shebang flags (Dragonfly and KeyDB reject them) and each takes at least one key (ElastiCache
//! Serverless rejects key-less scripts).

use std::sync::LazyLock;

use redis::Script;

/// Every script the store runs.
pub(crate) struct Scripts {
    pub(crate) create: Script,
    pub(crate) get_and_touch: Script,
    pub(crate) save: Script,
    pub(crate) regenerate: Script,
    pub(crate) flash_push: Script,
    pub(crate) flash_pop: Script,
    pub(crate) destroy: Script,
}

/// The scripts, hashed on first use.
pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    create: Script::new(include_str!("../lua/create.lua")),
    get_and_touch: Script::new(include_str!("../lua/get_and_touch.lua")),
    save: Script::new(include_str!("../lua/save.lua")),
    regenerate: Script::new(include_str!("../lua/regenerate.lua")),
    flash_push: Script::new(include_str!("../lua/flash_push.lua")),
    flash_pop: Script::new(include_str!("../lua/flash_pop.lua")),
    destroy: Script::new(include_str!("../lua/destroy.lua")),
});
