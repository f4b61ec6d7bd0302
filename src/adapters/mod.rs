//! redis-sessions behind other frameworks' session-store traits, so their users switch stores
//! by changing one line.

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "tower-sessions")]
pub mod tower_sessions;

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Serialize;

use crate::session::Session;

/// Both adapters' error text for a save whose session is gone.
const GONE: &str = "the session expired or was deleted meanwhile; its changes were not saved";

/// Brings `session` to exactly `entries` (attribute name, value): removes the attributes that
/// are not among them and inserts the others. `insert` skips values that did not change, so
/// the save writes only the delta.
fn sync_entries<'a, V: Serialize + 'a>(
    session: &mut Session,
    entries: impl IntoIterator<Item = (Cow<'a, str>, &'a V)>,
) -> crate::Result<()> {
    let entries: Vec<(Cow<'a, str>, &V)> = entries.into_iter().collect();
    let kept: HashSet<&str> = entries.iter().map(|(name, _)| name.as_ref()).collect();
    let removed: Vec<String> =
        session.names().filter(|name| !kept.contains(name)).map(str::to_owned).collect();
    for name in removed {
        session.delete(&name);
    }
    for (name, value) in &entries {
        session.insert(name, *value)?;
    }
    Ok(())
}
