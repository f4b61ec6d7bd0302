//! redis-sessions behind other frameworks' session-store traits, so their users switch stores
//! by changing one line.

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "tower-sessions")]
pub mod tower_sessions;
