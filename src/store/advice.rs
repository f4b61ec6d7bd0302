//! Operating advice: read the server's persistence and eviction settings and warn about the
//! ones that lose sessions.
//!
//! Two settings decide whether sessions survive: `maxmemory-policy` (an `allkeys-*` policy
//! evicts live sessions, logging users out at random under memory pressure; `volatile-*`
//! policies evict them too, since every session has a TTL) and persistence (with neither AOF
//! nor RDB snapshots, a restart logs everybody out). Managed Redis often blocks `CONFIG`; the
//! check then reports what it could not read and warns about nothing.

use tracing::{debug, warn};

use crate::connection::pool::Pool;
use crate::error::Result;

/// What the server told us about its persistence and eviction settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerAdvice {
    /// `maxmemory-policy`, when `CONFIG GET` is allowed.
    pub maxmemory_policy: Option<String>,
    /// `appendonly`, when `CONFIG GET` is allowed.
    pub appendonly: Option<String>,
    /// `appendfsync`, when `CONFIG GET` is allowed.
    pub appendfsync: Option<String>,
    /// `save` (RDB snapshot schedule; empty means none), when `CONFIG GET` is allowed.
    pub save: Option<String>,
    /// One sentence per setting that can lose sessions; each was also logged at WARN.
    pub warnings: Vec<String>,
}

impl ServerAdvice {
    /// Judges the settings read.
    fn judge(mut self) -> Self {
        if let Some(policy) = &self.maxmemory_policy {
            if policy.starts_with("allkeys-") || policy.starts_with("volatile-") {
                self.warnings.push(format!(
                    "maxmemory-policy {policy} evicts sessions that still have time to live; \
                     use noeviction on a Redis that holds sessions"
                ));
            }
        }
        let no_aof = self.appendonly.as_deref() == Some("no");
        if no_aof && self.save.as_deref().is_some_and(|s| s.trim().is_empty()) {
            self.warnings.push(
                "persistence is off (appendonly no, no save schedule): a restart logs every user \
                 out; set appendonly yes"
                    .to_owned(),
            );
        }
        self
    }
}

/// Reads the settings with `CONFIG GET` and logs a warning for each risky one.
pub(crate) async fn check(pool: &Pool) -> Result<ServerAdvice> {
    let mut connection = pool.get().await?;
    let mut advice = ServerAdvice::default();
    for (name, slot) in [
        ("maxmemory-policy", &mut advice.maxmemory_policy),
        ("appendonly", &mut advice.appendonly),
        ("appendfsync", &mut advice.appendfsync),
        ("save", &mut advice.save),
    ] {
        let cmd = redis::cmd("CONFIG").arg("GET").arg(name).clone();
        match connection.query::<Vec<String>>(&cmd).await {
            Ok(pair) => *slot = pair.into_iter().nth(1),
            // A refusal of CONFIG itself (renamed away, or denied by an ACL): the check that ran
            // before has shown that every operation is allowed.
            Err(e) if e.code().is_some() => {
                debug!(setting = name, error = %e, "CONFIG GET refused: not checked")
            }
            Err(e) => return Err(e.into()),
        }
    }
    let advice = advice.judge();
    for warning in &advice.warnings {
        warn!("{warning}");
    }
    Ok(advice)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advice(policy: &str, aof: &str, save: &str) -> ServerAdvice {
        ServerAdvice {
            maxmemory_policy: Some(policy.into()),
            appendonly: Some(aof.into()),
            appendfsync: Some("everysec".into()),
            save: Some(save.into()),
            warnings: vec![],
        }
        .judge()
    }

    #[test]
    fn warns_about_eviction_and_missing_persistence_only() {
        assert!(advice("noeviction", "yes", "").warnings.is_empty());
        assert!(advice("noeviction", "no", "3600 1").warnings.is_empty());
        assert_eq!(advice("allkeys-lru", "yes", "").warnings.len(), 1);
        assert_eq!(advice("volatile-ttl", "yes", "").warnings.len(), 1);
        assert_eq!(advice("allkeys-lfu", "no", "").warnings.len(), 2);
        assert!(ServerAdvice::default().judge().warnings.is_empty(), "unknown is not a warning");
    }
}
