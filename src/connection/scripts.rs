//! The Lua scripts, compiled in from `lua/` and hashed once, and how one is called.
//!
//! A call is sent as EVALSHA, so the script body crosses the network only once per server.
//! When Redis answers NOSCRIPT (after a restart, a failover to a replica that never saw the
//! script, or `SCRIPT FLUSH`), the same call is sent once more as EVAL with the body. Unlike
//! redis-rs' `Script::invoke_async` (which answers NOSCRIPT with SCRIPT LOAD and a second
//! EVALSHA), this cannot fail again if the scripts are flushed between the two requests, and it
//! costs one extra round trip instead of two. EVAL also caches the script, so the next call's
//! EVALSHA succeeds.
//!
//! The scripts use no shebang flags (Dragonfly and KeyDB reject them) and each takes at least
//! one key (ElastiCache Serverless rejects key-less scripts).

use std::sync::LazyLock;

use redis::{Arg, Cmd, ToRedisArgs};

/// One script: its source and its SHA-1.
pub(crate) struct LuaScript {
    source: &'static str,
    hash: String,
}

impl LuaScript {
    fn new(source: &'static str) -> Self {
        let hash = redis::Script::new(source).get_hash().to_owned();
        LuaScript { source, hash }
    }

    /// Starts a call of this script on `keys` (all of one session, so all in one slot).
    pub(crate) fn call(&'static self, keys: &[&str]) -> Call {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.hash).arg(keys.len()).arg(keys);
        Call { cmd, script: self, key_count: keys.len() }
    }
}

/// A script call being built: EVALSHA, the keys, then the arguments.
pub(crate) struct Call {
    cmd: Cmd,
    script: &'static LuaScript,
    key_count: usize,
}

impl Call {
    /// Appends an argument (`ARGV[n]`).
    pub(crate) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    /// The keys the call names (`KEYS`).
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        let args = self.cmd.args_iter().skip(3).take(self.key_count);
        args.filter_map(|arg| match arg {
            Arg::Simple(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        })
    }

    /// The EVALSHA command.
    pub(crate) fn evalsha(&self) -> &Cmd {
        &self.cmd
    }

    /// The same call as EVAL with the script's body, for a server that lacks the script.
    pub(crate) fn eval(&self) -> Cmd {
        let mut eval = redis::cmd("EVAL");
        eval.arg(self.script.source);
        for arg in self.cmd.args_iter().skip(2) {
            if let Arg::Simple(bytes) = arg {
                eval.arg(bytes);
            }
        }
        eval
    }
}

/// Every script the store runs.
pub(crate) struct Scripts {
    pub(crate) create: LuaScript,
    pub(crate) get_and_touch: LuaScript,
    pub(crate) save: LuaScript,
    pub(crate) save_checked: LuaScript,
    pub(crate) compact: LuaScript,
    pub(crate) regenerate: LuaScript,
    pub(crate) flash_push: LuaScript,
    pub(crate) destroy: LuaScript,
    pub(crate) bind: LuaScript,
    pub(crate) retire: LuaScript,
    pub(crate) rotate: LuaScript,
    pub(crate) list: LuaScript,
    pub(crate) revoke: LuaScript,
    /// Stateless sessions' revocations and users' lists (src/store/stateless.rs).
    #[cfg(feature = "stateless")]
    pub(crate) revocation: LuaScript,
    #[cfg(feature = "stateless")]
    pub(crate) cookie_devices: LuaScript,
    #[cfg(feature = "stateless")]
    pub(crate) heartbeat: LuaScript,
}

/// The script `lua/<name>.lua` with helpers in front: `format.lua` (the stored format's
/// constants, generated from format/mod.rs) and `clock.lua` (`server_ms`) always, then the
/// helper files named, each the twin of a Rust module or a part the scripts share:
/// `record.lua` (packed.rs: the record's header), `fields.lua` (fields.rs: `@t`, `@i`, `@f`),
/// `expiry.lua` (expiry_rule.rs: `touch_due`, `next_ttl`), `deadline.lua` (the absolute
/// deadline check), `live.lua` (the check that opens flash push and regenerate), `move.lua`
/// (moving a session's fields, bound sessions' fields, a user's index), `devices.lua` (the
/// check of a user's index as read),
/// `entries.lua` (the record's entries and the loose fields' stamps), `write.lua` (finding
/// the live session, a delta's writes, the last write with the expiry), `limits.lua` (the
/// attribute and byte limits) and `view.lua` (comparing what the client read). Each script
/// gets only what it uses: every function a script defines is a closure made on every call,
/// which Redis pays for.
macro_rules! script {
    ($name:literal $(, $helper:literal)*) => {
        concat!(
            include_str!("../../lua/format.lua"),
            include_str!("../../lua/clock.lua"),
            $(include_str!(concat!("../../lua/", $helper, ".lua")),)*
            include_str!(concat!("../../lua/", $name, ".lua"))
        )
    };
}

/// A save script: `script!` with the helpers every save uses (the record, `@t`, the expiry
/// rule, the deadline, the entries and stamps, and `write.lua`), then those named.
macro_rules! save_script {
    ($name:literal $(, $helper:literal)*) => {
        script!($name, "record", "fields", "expiry", "deadline", "entries", "write" $(, $helper)*)
    };
}

/// The helpers of every script (all but the saves' `write.lua`, `limits.lua` and `view.lua`,
/// which run on `ARGV` as the save scripts lay it out), for tests that run Lua of their own.
#[cfg(feature = "test-server")]
const ALL_HELPERS: &str =
    script!("live", "record", "fields", "expiry", "deadline", "entries", "move", "devices");

/// The scripts, hashed on first use.
pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    create: LuaScript::new(script!("create", "record", "fields", "expiry")),
    get_and_touch: LuaScript::new(script!("get_and_touch", "record", "fields", "expiry")),
    save: LuaScript::new(save_script!("save", "limits")),
    save_checked: LuaScript::new(save_script!("save_checked", "limits", "view")),
    compact: LuaScript::new(save_script!("compact", "view")),
    regenerate: LuaScript::new(script!(
        "regenerate",
        "record",
        "fields",
        "expiry",
        "deadline",
        "live",
        "move"
    )),
    flash_push: LuaScript::new(script!("flash_push", "record", "fields", "deadline", "live")),
    destroy: LuaScript::new(include_str!("../../lua/destroy.lua")),
    bind: LuaScript::new(script!("bind", "record", "fields", "expiry", "deadline", "live", "move")),
    retire: LuaScript::new(script!("retire", "record", "deadline", "live", "move")),
    rotate: LuaScript::new(script!("rotate", "record", "deadline", "live", "move")),
    list: LuaScript::new(script!("list", "record", "move", "devices")),
    revoke: LuaScript::new(script!("revoke", "devices")),
    #[cfg(feature = "stateless")]
    revocation: LuaScript::new(script!("revocation")),
    #[cfg(feature = "stateless")]
    cookie_devices: LuaScript::new(script!("cookie_devices")),
    #[cfg(feature = "stateless")]
    heartbeat: LuaScript::new(include_str!("../../lua/heartbeat.lua")),
});

/// The source of script `name` as the store sends it with EVAL, helpers included; `"helpers"`
/// for the helpers alone. `None` for a name no script has.
#[cfg(feature = "test-server")]
pub(crate) fn source(name: &str) -> Option<&'static str> {
    let scripts = &*SCRIPTS;
    Some(match name {
        "helpers" => ALL_HELPERS,
        "create" => scripts.create.source,
        "get_and_touch" => scripts.get_and_touch.source,
        "save" => scripts.save.source,
        "save_checked" => scripts.save_checked.source,
        "compact" => scripts.compact.source,
        "regenerate" => scripts.regenerate.source,
        "flash_push" => scripts.flash_push.source,
        "destroy" => scripts.destroy.source,
        "bind" => scripts.bind.source,
        "retire" => scripts.retire.source,
        "rotate" => scripts.rotate.source,
        "list" => scripts.list.source,
        "revoke" => scripts.revoke.source,
        #[cfg(feature = "stateless")]
        "revocation" => scripts.revocation.source,
        #[cfg(feature = "stateless")]
        "cookie_devices" => scripts.cookie_devices.source,
        #[cfg(feature = "stateless")]
        "heartbeat" => scripts.heartbeat.source,
        _ => return None,
    })
}
