//! The key usage scan: a walk over every session of the store, counting what each encryption
//! key still seals (seal/usage.rs), so that an operator retires a key only once nothing needs it.
//!
//! It runs with any configuration that names the store's Redis and prefix, with or without
//! keys. It walks the keyspace with `SCAN` (a cursor, so Redis serves other clients between
//! batches) and reads each session's values with `HVALS`; it writes nothing.

use redis::Value;

use crate::error::{Error, Result};
use crate::format::bound;
use crate::seal::usage::KeyUsage;
use crate::store::core::Core;

/// Keys a `SCAN` call asks for, and so sessions read per pipeline: few enough that a pipeline
/// of large sessions fits in the command timeout.
const BATCH: usize = 100;

/// Scans every session under the prefix, calling `progress` after each batch with the counts
/// so far and the keys seen.
pub(crate) async fn scan(
    core: &Core,
    mut progress: impl FnMut(&KeyUsage, u64),
) -> Result<KeyUsage> {
    if core.pool.is_cluster() {
        return Err(Error::Config(
            "the key usage scan reads one server: run it with each primary's URL".into(),
        ));
    }
    let pattern = format!("{}*", glob_escaped(&core.config.key_prefix));
    let (mut usage, mut cursor, mut seen) = (KeyUsage::default(), 0u64, 0u64);
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(BATCH).arg("TYPE").arg("hash");
        let reply = core.pool.get().await?.query::<(u64, Vec<String>)>(&scan).await;
        let (next, mut keys) = core.settle(reply)?;
        seen += keys.len() as u64;
        keys.retain(|key| !bound::is_index_key(&core.config, key)); // users' indexes hold no value
        if !keys.is_empty() {
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.cmd("HVALS").arg(key);
            }
            for values in core.run_read(&pipe).await? {
                match values {
                    Value::Array(values) if !values.is_empty() => usage.add(values),
                    Value::Array(_) => {} // expired between SCAN and HVALS
                    _ => usage.unreadable += 1,
                }
            }
        }
        progress(&usage, seen);
        if next == 0 {
            return Ok(usage);
        }
        cursor = next;
    }
}

/// `text` with the glob characters of `SCAN MATCH` escaped.
fn glob_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
