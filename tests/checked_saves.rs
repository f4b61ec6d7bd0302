//! Checked saves and compactions compare what the client read with what Redis holds: for a
//! whole session its loose fields and the record's id, for a partial one the values it read.
//! The two model-based tests drive random operations and check every step against a model.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use redis::AsyncCommands;
use redis_sessions::test_server::stored::{COUNT_AT, HEADER_LEN, ID_AT};
use redis_sessions::{Error, Session, SessionStore};

/// DUMP of the only session's key, and a RESTORE that puts it back: a failover or a restore
/// that loses every write in between.
async fn snapshot(redis: &support::TestRedis) -> impl std::future::Future<Output = ()> + '_ {
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let dump: Vec<u8> = redis::cmd("DUMP").arg(&key).query_async(&mut conn).await.expect("dump");
    async move {
        let restore = redis::cmd("RESTORE").arg(&key).arg(60_000).arg(dump).arg("REPLACE").clone();
        let _: () = restore.query_async(&mut conn).await.expect("restore");
    }
}

#[tokio::test]
async fn a_partial_checked_save_ignores_a_compaction_that_kept_what_it_read() {
    let redis = support::any_server();
    let store = redis.store();
    let token = support::saved_with(&store, 6).await.token().expose().to_owned();
    let mut partial = store.load_only(&token, &["a0"]).await.expect("load").expect("live");
    let mut other = store.load(&token).await.expect("load").expect("live");
    assert!(other.delete("a5"), "removing a packed attribute compacts");
    store.save(&mut other).await.expect("compaction, a0 untouched");

    partial.insert("a0", &"mine").expect("insert");
    store.save_checked(&mut partial).await.expect("a0, the only name read, did not change");
    let mut other = store.load(&token).await.expect("load").expect("live");
    other.insert("a0", &"theirs").expect("insert");
    assert!(other.delete("a4"), "compacts again, changing a0");
    store.save(&mut other).await.expect("compaction");
    partial.insert("a1", &"mine").expect("insert");
    let err = store.save_checked(&mut partial).await.expect_err("a0 changed");
    assert!(matches!(err, Error::Conflict), "{err:?}");
}

#[tokio::test]
async fn a_partial_checked_save_does_not_check_a_name_it_wrote_but_never_read() {
    let redis = support::any_server();
    let store = redis.store();
    let token = support::saved_with(&store, 6).await.token().expose().to_owned();
    let mut partial = store.load_only(&token, &["a0"]).await.expect("load").expect("live");
    partial.insert("z", &1).expect("blind write");
    store.save_checked(&mut partial).await.expect("nothing changed");

    let mut other = store.load(&token).await.expect("load").expect("live");
    other.insert("z", &2).expect("insert");
    store.save(&mut other).await.expect("a delta to z, which partial never read");

    partial.insert("a0", &"mine").expect("insert");
    store.save_checked(&mut partial).await.expect("a0, the only name read, did not change");
}

#[tokio::test]
async fn a_lost_compaction_cannot_let_another_compaction_be_folded_over() {
    // A compacts, and a failover loses it; C compacts from the restored state. A still holds
    // the lost record: with a counter for an id, C's record would have A's id, and A's next
    // compaction would fold over C's attributes.
    let redis = support::any_server();
    let store = redis.store();
    let token = support::saved_with(&store, 6).await.token().expose().to_owned();
    let restore = snapshot(&redis).await;
    let mut a = store.load(&token).await.expect("load").expect("live");
    support::insert_numbered(&mut a, "b", 5);
    store.save(&mut a).await.expect("A compacts, about to be lost");
    restore.await;

    let mut c = store.load(&token).await.expect("load").expect("live");
    support::insert_numbered(&mut c, "c", 5);
    store.save(&mut c).await.expect("C compacts");

    assert!(a.delete("a0"), "removing a packed attribute compacts");
    store.save(&mut a).await.expect("save");
    let loaded = store.load(&token).await.expect("load").expect("live");
    assert_eq!(loaded.get::<usize>("c0").expect("decode"), Some(0), "C's change survives");
}

#[tokio::test]
async fn a_checked_save_after_a_partial_load_of_many_names_saves() {
    // Lua's unpack stops at 8,000 values: the script reads the names in chunks.
    let redis = support::any_server();
    let store = redis.store();
    let token = support::saved_with(&store, 2).await.token().expose().to_owned();
    let names: Vec<String> = (0..8000).map(|i| format!("n{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut partial = store.load_only(&token, &names).await.expect("load").expect("live");
    partial.insert("n0", &2).expect("insert");
    store.save_checked(&mut partial).await.expect("nothing read changed");
}

#[tokio::test]
async fn reserved_names_are_never_attributes_of_a_partial_load() {
    let redis = support::any_server();
    let store = redis.store();
    let token = support::saved_with(&store, 2).await.token().expose().to_owned();
    store
        .push_flash(&store.load(&token).await.expect("load").expect("live"), "hi")
        .await
        .expect("push");
    let record = store.load_only(&token, &["@p"]).await.expect("the record read once, not twice");
    assert_eq!(record.expect("live").get::<u8>("@p").expect("get"), None, "not an attribute");
    let mut partial = store.load_only(&token, &["@f", "a0"]).await.expect("load").expect("live");
    assert_eq!(partial.get::<u8>("@f").expect("get"), None, "read, but not an attribute");
    assert!(!partial.delete("@p"), "not read, and not an attribute: nothing to delete");
    assert!(!partial.delete("@f"), "not an attribute");
    partial.insert("a0", &7).expect("insert");
    store.save_checked(&mut partial).await.expect("nobody else wrote");
    let mut loaded = store.load_and_pop_flash(&token).await.expect("load").expect("still there");
    assert_eq!(loaded.get::<i32>("a0").expect("decode"), Some(7));
    assert_eq!(loaded.take_flash::<String>().expect("decode"), ["hi"], "@f left alone");
}

#[tokio::test]
async fn the_compaction_script_never_compacts_from_a_partial_view() {
    // The client compacts only from a whole view; the script must not take a partial one either,
    // since such a view cannot vouch for the loose fields it does not list (here, a1).
    let redis = support::any_server();
    let store = redis.store();
    support::saved_with(&store, 2).await; // a0 = 0 and a1 = 1, loose
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let stored: Vec<u8> = conn.hget(&key, "@p").await.expect("hget");
    let id = ID_AT..ID_AT + 4;
    let stored_id = u32::from_be_bytes(stored[id.clone()].try_into().expect("a header"));
    let mut record = stored[..HEADER_LEN].to_vec();
    record[id].copy_from_slice(&(stored_id ^ 7).to_be_bytes()); // a new id
    record[COUNT_AT..COUNT_AT + 2].copy_from_slice(&1u16.to_be_bytes()); // one attribute: a0 = 0
    record.extend_from_slice(&[0, 2, b'a', b'0', 0, 0, 0, 1, 0]);
    let script = redis_sessions::test_server::lua_source("compact").expect("a script");
    let mut eval = redis::cmd("EVAL");
    eval.arg(script).arg(1).arg(&key).arg(3_600_000).arg(1_000).arg(i64::MAX);
    eval.arg(record).arg(stored_id).arg("a0").arg(&[0u8][..]);
    let reply: Vec<redis::Value> = eval.query_async(&mut conn).await.expect("eval");
    let a1: Option<Vec<u8>> = conn.hget(&key, "a1").await.expect("hget");
    let mut stamped = Vec::new(); // the value 1, stamped with its name (src/format/fields.rs)
    rmp::encode::write_str(&mut stamped, "a1").expect("to a Vec");
    stamped.push(1);
    assert_eq!(reply.first(), Some(&redis::Value::Int(-1)), "refused: the view is partial");
    assert_eq!(a1, Some(stamped), "a1 kept");
}

/// Names that overlap (`a` in `ca`, `xa`, `ab`), and values made of them, so that the substring
/// test deciding tombstones gives false positives.
const NAMES: [&str; 8] = ["a", "b", "ab", "c", "ca", "x", "xa", "bc"];

type State = BTreeMap<String, String>;

fn random_name(rng: &mut impl Rng) -> &'static str {
    NAMES[rng.random_range(0..NAMES.len())]
}

/// One request's session in the model: what it read, what it believes Redis holds, and the
/// changes it has not saved yet (`None`: removed).
struct Actor {
    session: Session,
    read: Option<BTreeSet<String>>,
    believed: State,
    pending: BTreeMap<String, Option<String>>,
}

impl Actor {
    /// Loads the session whole, or only `names` (after a save of anything pending).
    async fn load(
        store: &SessionStore,
        token: &str,
        names: Option<&[&str]>,
        truth: &State,
    ) -> Self {
        let session = match names {
            None => store.load(token).await,
            Some(names) => store.load_only(token, names).await,
        };
        let session = session.expect("load").expect("live");
        let read = names.map(|names| names.iter().map(|n| (*n).to_owned()).collect());
        Actor { session, read, believed: truth.clone(), pending: BTreeMap::new() }
    }

    /// A random insert or remove; returns what it did, for the log.
    fn edit(&mut self, rng: &mut impl Rng) -> String {
        let name = random_name(rng);
        if rng.random_bool(0.6) {
            let value = random_name(rng).repeat(rng.random_range(1..3));
            let known = self.session.get::<String>(name).ok().flatten();
            self.session.insert(name, &value).expect("insert");
            if known.as_ref() != Some(&value) {
                self.pending.insert(name.into(), Some(value.clone()));
            }
            format!("insert {name}={value}")
        } else {
            let known_absent = matches!(self.session.get::<String>(name), Ok(None));
            self.session.delete(name);
            if !known_absent {
                self.pending.insert(name.into(), None);
            }
            format!("remove {name}")
        }
    }

    /// Applies a saved delta to the model.
    fn saved(&mut self, truth: &mut State) {
        for (name, value) in std::mem::take(&mut self.pending) {
            match value {
                Some(value) => {
                    truth.insert(name.clone(), value.clone());
                    self.believed.insert(name, value);
                }
                None => {
                    truth.remove(&name);
                    self.believed.remove(&name);
                }
            }
        }
    }

    /// True when everything this session read still has the value it believes.
    fn reads_current(&self, truth: &State) -> bool {
        let read = |name: &String| self.read.as_ref().is_none_or(|read| read.contains(name));
        let names = truth.keys().chain(self.believed.keys());
        names.filter(|name| read(name)).all(|name| truth.get(name) == self.believed.get(name))
    }
}

async fn assert_holds(store: &SessionStore, token: &str, truth: &State, log: &[String]) {
    let loaded = store.load(token).await.expect("load").expect("live");
    for name in NAMES {
        let stored: Option<String> = loaded.get(name).expect("decode");
        assert_eq!(stored.as_ref(), truth.get(name), "{name}\n{}", log.join("\n"));
    }
}

/// Model-based: one request alone, random inserts, removes, plain and checked saves, and whole
/// and partial reloads. A checked save must never conflict, and Redis must match the model.
#[tokio::test]
async fn random_solo_checked_saves_never_conflict() {
    let redis = support::any_server();
    let store = redis.store();
    for seed in 0..150u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut truth = State::new();
        let token = store.create().await.expect("create").token().expose().to_owned();
        let mut actor = Actor::load(&store, &token, None, &truth).await;
        let mut log = vec![format!("seed {seed}")];
        for _ in 0..60 {
            match rng.random_range(0..10) {
                0..=5 => log.push(actor.edit(&mut rng)),
                6 => {
                    log.push("save_checked".into());
                    let result = store.save_checked(&mut actor.session).await;
                    assert!(result.is_ok(), "{result:?}\n{}", log.join("\n"));
                    actor.saved(&mut truth);
                }
                step => {
                    store.save(&mut actor.session).await.expect("save");
                    actor.saved(&mut truth);
                    let names: Vec<&str> =
                        (0..rng.random_range(1..4)).map(|_| random_name(&mut rng)).collect();
                    let only = (step == 9).then_some(&names[..]);
                    log.push(format!("save; load {only:?}"));
                    actor = Actor::load(&store, &token, only, &truth).await;
                }
            }
        }
        store.save(&mut actor.session).await.expect("save");
        actor.saved(&mut truth);
        assert_holds(&store, &token, &truth, &log).await;
    }
}

/// Model-based, two requests interleaved: every save applies exactly its delta (no lost update,
/// no resurrection: Redis is checked after every step), and a checked save that succeeds read
/// current values. A conflict where the values were current is counted, not failed: a whole
/// session conflicts on any compaction by the other request.
#[tokio::test]
async fn random_two_requests_lose_no_update_and_checks_are_sound() {
    let redis = support::any_server();
    let store = redis.store();
    let mut needless = 0;
    for seed in 0..300u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut truth = State::new();
        let token = store.create().await.expect("create").token().expose().to_owned();
        let mut actors = [
            Actor::load(&store, &token, None, &truth).await,
            Actor::load(&store, &token, None, &truth).await,
        ];
        let mut log = vec![format!("seed {seed}")];
        for _ in 0..80 {
            let i = rng.random_range(0..2);
            let actor = &mut actors[i];
            match rng.random_range(0..12) {
                0..=5 => log.push(format!("{i}: {}", actor.edit(&mut rng))),
                6..=7 => {
                    store.save(&mut actor.session).await.expect("save");
                    actor.saved(&mut truth);
                    log.push(format!("{i}: save"));
                }
                8..=9 => {
                    let current = actor.reads_current(&truth) || !actor.session.is_changed();
                    let result = store.save_checked(&mut actor.session).await;
                    log.push(format!("{i}: save_checked: {result:?}, read current: {current}"));
                    match result {
                        Ok(()) => {
                            assert!(current, "unsound\n{}", log.join("\n"));
                            actor.saved(&mut truth);
                        }
                        Err(Error::Conflict) => {
                            needless += usize::from(current);
                            *actor = Actor::load(&store, &token, None, &truth).await;
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                }
                _ => {
                    store.save(&mut actor.session).await.expect("save");
                    actor.saved(&mut truth);
                    let names: Vec<&str> =
                        (0..rng.random_range(1..4)).map(|_| random_name(&mut rng)).collect();
                    let only = rng.random_bool(0.5).then_some(&names[..]);
                    log.push(format!("{i}: save; load {only:?}"));
                    *actor = Actor::load(&store, &token, only, &truth).await;
                }
            }
            assert_holds(&store, &token, &truth, &log).await;
        }
    }
    eprintln!("conflicts where the values read were current: {needless}");
}
