//! Loading sessions: get-and-touch, mostly without a script.
//!
//! A load reads the hash's values with one command (`HVALS`): each value says which field it is
//! (format/fields.rs), so the names need not cross the network. One of them is the key's expiry
//! (`@t`), which every script that sets the TTL records, so the load judges from it and the
//! server's time as estimated here (server_clock.rs) whether the idle expiry is due to slide,
//! without a `PTTL`. Nothing is written, and no script runs, unless something must be written.
//! When the expiry is due (once per touch window), or the hash records none, the get-and-touch
//! script does the read, the checks and the writes atomically, on the server's clock. Reading
//! without a script is safe because the load judges by the expiry the hash records and the
//! deadline in its record, both on the server's clock as estimated here, which is never behind:
//! past either the load goes to the script, which checks the deadline whatever the key's TTL
//! says (one set by hand, or by a `RESTORE`, may run past it). And it is cheap: a plain read
//! costs Redis a fraction of what a script does (docs/performance.md).
//!
//! The way a load reads ([`Way`]) is chosen once, before anything is sent, and recorded in its
//! span with whether get-and-touch ran.

use tracing::debug;

use crate::error::Result;
use crate::format::bound::Bound;
use crate::format::{self, keys};
use crate::seal;
use crate::session::Session;
use crate::store::cached;
use crate::store::core::Core;
use crate::store::flash_pop;
use crate::store::read;
use crate::store::reply::Loaded;
use crate::store::rotation;
use crate::token::Token;

/// How a load reads its session, chosen from what it must do and where. Whichever it is,
/// get-and-touch runs after the read when the read finds a write due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Way {
    /// `HVALS`: a load that pops no flash messages.
    Read,
    /// `HVALS` and `PEXPIRE` in one pipeline: a load that pops nothing, in a store that
    /// touches on every read (`touch_threshold` 0; read.rs).
    ReadAndSlide,
    /// `MULTI`, `HVALS`, `HDEL @f`, `EXEC`: a popping load on one server (flash_pop.rs).
    Transaction,
    /// `HVALS`, then get-and-touch to pop when messages are pending: a popping load on a
    /// Redis Cluster, which gets no transaction, or on a server that refused one for want of
    /// memory (flash_pop.rs).
    ReadThenPop,
}

impl Way {
    fn choose(pop_flash: bool, cluster: bool, slide: bool) -> Way {
        match (pop_flash, cluster) {
            (false, _) if slide => Way::ReadAndSlide,
            (false, _) => Way::Read,
            (true, false) => Way::Transaction,
            (true, true) => Way::ReadThenPop,
        }
    }

    /// Its name in the load's span.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Way::Read => "read",
            Way::ReadAndSlide => "read_and_slide",
            Way::Transaction => "transaction",
            Way::ReadThenPop => "read_then_pop",
        }
    }
}

/// How many stubs of rotated tokens a load follows, one to the next, before it gives up: a
/// token rotated again within the grace window of the one before is the most a client meets.
const MAX_HOPS: usize = 4;

/// Loads the session a cookie names, popping its flash messages when `pop_flash`; with `only`,
/// a session that answers for those attributes alone (`load_only`). A retired token within its
/// grace window leads to the session it was rotated to, whose token the session then holds.
pub(crate) async fn load(
    core: &Core,
    text: &str,
    only: Option<&[&str]>,
    pop_flash: bool,
) -> Result<Option<Session>> {
    let Some(mut token) = Token::parse(text) else {
        debug!("malformed token: no session");
        return Ok(None);
    };
    let span = tracing::Span::current();
    span.record("session", tracing::field::debug(&token));
    let slide = core.config.touch_after_ms() == 0;
    let way = Way::choose(pop_flash, core.pool.is_cluster(), slide);
    span.record("way", way.name());
    for _ in 0..=MAX_HOPS {
        let key = keys::session_key(&core.config, &token);
        let fetched = match (way, &core.cache) {
            (Way::Read, Some(cache)) => cached::read(core, cache, &key).await?,
            (Way::Read, None) => read::read_then_touch(core, &key).await?,
            (Way::ReadAndSlide, _) => read::read_and_slide(core, &key).await?,
            (Way::Transaction, Some(cache)) => cached::popping_read(core, cache, &key).await?,
            (Way::Transaction, None) => flash_pop::transaction(core, &key).await?,
            (Way::ReadThenPop, _) => flash_pop::read_then_pop(core, &key).await?,
        };
        let Some(mut loaded) = fetched else {
            debug!("no live session");
            return Ok(None);
        };
        if let Some(retired) = loaded.retired.take() {
            match rotation::follow(core, &token, &key, retired).await? {
                Some(next) => token = next,
                None => return Ok(None),
            }
            continue;
        }
        return Ok(Some(session(core, token, key, loaded, only, pop_flash)));
    }
    debug!("too many rotations in a row: no session");
    Ok(None)
}

/// The session `loaded` holds, under `token`.
fn session(
    core: &Core,
    token: Token,
    key: String,
    loaded: Loaded,
    only: Option<&[&str]>,
    pop_flash: bool,
) -> Session {
    let seal = core.binding(&key);
    let mut session = Session::new(token, key, loaded.meta, core.config.limits, seal)
        .with_attributes(loaded.packed, loaded.loose);
    session.bound = loaded.bound.and_then(|stored| {
        let who = seal::open_meta(session.seal.as_ref(), format::BOUND, &stored.who)?;
        Bound::from_stored(&stored, &who)
    });
    match pop_flash {
        true => {
            let (messages, unopened) = seal::open_flash(session.seal.as_ref(), loaded.flash);
            (session.flash, session.flash_unopened) = (messages, unopened);
        }
        false => session.flash_pending = !loaded.flash.is_empty(),
    }
    match only {
        Some(names) => session.loaded_only(names),
        None => session,
    }
}
