//! The packed record (src/format/packed.rs): a load reads a few fields whatever the session's size,
//! saves stay deltas, and compaction never loses a concurrent change.

mod support;

use redis::AsyncCommands;
use redis_sessions::{Error, Limits, Session, SessionStore};

/// The names of the fields of the only session's hash, but for the expiry (`@t`), which every
/// session's has.
async fn field_names(redis: &support::TestRedis) -> Vec<String> {
    let keys = redis.keys().await;
    assert_eq!(keys.len(), 1, "one session");
    let mut names: Vec<String> = redis.conn().await.hkeys(&keys[0]).await.expect("hkeys");
    names.retain(|name| name != "@t");
    names.sort_unstable();
    names
}

async fn reload(store: &SessionStore, session: &Session) -> Session {
    store.load(session.token().expose()).await.expect("load").expect("live")
}

fn sorted_names(session: &Session) -> Vec<String> {
    let mut names: Vec<String> = session.names().map(str::to_owned).collect();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn many_attributes_are_packed_into_one_field_and_small_changes_stay_loose() {
    let redis = support::any_server();
    let store = redis.store();
    let session = support::saved_with(&store, 10).await;
    assert_eq!(field_names(&redis).await, ["@p"], "ten attributes, one field");

    let mut session = reload(&store, &session).await;
    session.insert("a3", &"changed").expect("insert");
    session.insert("new", &true).expect("insert");
    store.save(&mut session).await.expect("save");
    assert_eq!(field_names(&redis).await, ["@p", "a3", "new"], "a delta");

    let loaded = reload(&store, &session).await;
    assert_eq!(loaded.get::<String>("a3").expect("decode"), Some("changed".into()), "loose wins");
    assert_eq!(loaded.get::<usize>("a9").expect("decode"), Some(9), "packed still read");
    assert_eq!(loaded.names().count(), 11);
}

#[tokio::test]
async fn loose_fields_past_the_bound_are_folded_into_the_record() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = support::saved_with(&store, 6).await;
    for round in 0..3 {
        for name in ["x", "y", "z"] {
            session.insert(&format!("{name}{round}"), &round).expect("insert");
            store.save(&mut session).await.expect("save");
            let loose = field_names(&redis).await.iter().filter(|n| !n.starts_with('@')).count();
            assert!(loose <= 4, "{loose} loose fields after round {round}");
        }
    }
    let loaded = reload(&store, &session).await;
    assert_eq!(loaded.names().count(), 6 + 9);
    assert_eq!(loaded.get::<i32>("z2").expect("decode"), Some(2));
    assert_eq!(loaded.get::<usize>("a5").expect("decode"), Some(5));
}

#[tokio::test]
async fn a_removal_stays_removed_when_another_request_compacted_it_away_first() {
    // Both requests remove a0 from the record; the second finds the first's new record, which
    // no longer holds a0, so its save deletes the name rather than hiding it with a tombstone.
    let redis = support::any_server();
    let store = redis.store();
    let session = support::saved_with(&store, 6).await; // a0 to a5, folded into the record
    let mut first = reload(&store, &session).await;
    let mut second = reload(&store, &session).await;
    first.delete("a0");
    store.save(&mut first).await.expect("compacts a0 away");
    assert!(second.delete("a0"), "the second request read a0 too");
    store.save(&mut second).await.expect("a delta, after the refused compaction");

    assert_eq!(field_names(&redis).await, ["@p"], "a0 deleted, not tombstoned: nothing held it");
    assert_eq!(second.get::<usize>("a0").expect("decode"), None, "still removed here");
    assert!(!second.names().any(|name| name == "a0"));
    assert!(!second.delete("a0"), "nothing left to delete");
    second.insert("a0", &0usize).expect("insert");
    assert!(second.is_changed(), "the old value is no longer what the session holds");
    store.save(&mut second).await.expect("save");
    let loaded = reload(&store, &session).await;
    assert_eq!(loaded.get::<usize>("a0").expect("decode"), Some(0), "written again");
}

#[tokio::test]
async fn a_compaction_never_drops_a_save_that_raced_it() {
    let redis = support::any_server();
    let store = redis.store();
    let session = support::saved_with(&store, 3).await;
    let mut compacting = reload(&store, &session).await;
    let mut racing = reload(&store, &session).await;
    racing.insert("a0", &"from the racing request").expect("insert");
    store.save(&mut racing).await.expect("save");
    support::insert_numbered(&mut compacting, "b", 6);
    compacting.delete("a1");
    store.save(&mut compacting).await.expect("falls back to a delta");

    let loaded = reload(&store, &session).await;
    assert_eq!(loaded.get::<String>("a0").expect("decode"), Some("from the racing request".into()));
    assert_eq!(loaded.get::<usize>("a1").expect("decode"), None, "removed through a tombstone");
    assert_eq!(loaded.get::<usize>("b5").expect("decode"), Some(5));
    assert_eq!(loaded.names().count(), 2 + 6);

    // The same session object saves again: its view still misses the racing change, so it
    // must not fold that view into a record.
    compacting.delete("a2");
    store.save(&mut compacting).await.expect("a delta again");
    let loaded = reload(&store, &session).await;
    assert_eq!(loaded.get::<String>("a0").expect("decode"), Some("from the racing request".into()));
    assert_eq!(loaded.get::<usize>("a2").expect("decode"), None);

    // The next save by a request that saw everything folds it all, tombstone included.
    let mut next = loaded;
    next.insert("c", &1).expect("insert");
    store.save(&mut next).await.expect("save");
    assert_eq!(field_names(&redis).await, ["@p"]);
    assert_eq!(sorted_names(&reload(&store, &session).await), sorted_names(&next));
}

#[tokio::test]
async fn a_partial_load_removes_a_packed_attribute_with_a_tombstone() {
    let redis = support::any_server();
    let store = redis.store();
    let session = support::saved_with(&store, 6).await;
    let token = session.token().expose().to_owned();
    let mut partial = store.load_only(&token, &["a2"]).await.expect("load").expect("live");
    assert!(matches!(partial.get::<usize>("a3"), Err(Error::NotLoaded(_))), "a3 was not read");
    assert_eq!(partial.names().collect::<Vec<_>>(), ["a2"]);
    partial.delete("a2");
    store.save(&mut partial).await.expect("save");
    let tombstone: Vec<u8> =
        redis.conn().await.hget(&redis.keys().await[0], "a2").await.expect("hget");
    let mut stamp = Vec::new();
    rmp::encode::write_str(&mut stamp, "a2").expect("to a Vec");
    assert_eq!(tombstone, stamp, "the name alone hides the packed value");
    let loaded = store.load(&token).await.expect("load").expect("live");
    assert_eq!(loaded.get::<usize>("a2").expect("decode"), None);
    assert_eq!(loaded.names().count(), 5);
}

#[tokio::test]
async fn a_partial_load_writes_a_name_it_did_not_read_even_if_the_record_agrees() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    session.insert("role", &"user").expect("insert");
    support::insert_numbered(&mut session, "a", 5);
    store.save(&mut session).await.expect("packed, role = user");
    let token = session.token().expose().to_owned();
    let mut promote = store.load(&token).await.expect("load").expect("live");
    promote.insert("role", &"admin").expect("insert");
    store.save(&mut promote).await.expect("loose role = admin");

    let mut demote = store.load_only(&token, &["a0"]).await.expect("load").expect("live");
    demote.insert("role", &"user").expect("insert");
    store.save(&mut demote).await.expect("save");
    let loaded = store.load(&token).await.expect("load").expect("live");
    assert_eq!(loaded.get::<String>("role").expect("decode"), Some("user".into()));

    let mut partial = store.load_only(&token, &["a0"]).await.expect("load").expect("live");
    assert!(!partial.delete("a1"), "not read, so not known to be set");
    store.save(&mut partial).await.expect("save");
    let loaded = store.load(&token).await.expect("load").expect("live");
    assert_eq!(loaded.get::<usize>("a1").expect("decode"), None, "but deleted all the same");
}

#[tokio::test]
async fn the_attribute_limit_counts_packed_and_loose_attributes() {
    let redis = support::any_server();
    let store = redis.store_with(|c| c.with_limits(Limits::default().with_max_attributes(8)));
    let session = support::saved_with(&store, 7).await;
    let mut a = reload(&store, &session).await;
    let mut b = reload(&store, &session).await;
    a.insert("one", &1).expect("insert");
    store.save(&mut a).await.expect("eight fit");
    b.insert("a0", &"overwrite").expect("insert");
    store.save(&mut b).await.expect("overwriting a packed attribute adds none");
    b.insert("two", &2).expect("fits in b's own view");
    let err = store.save(&mut b).await.expect_err("the script counts what Redis holds");
    assert!(matches!(err, Error::TooLarge { limit: "attributes", size: 9, max: 8 }), "{err:?}");
}

#[tokio::test]
async fn a_tombstone_is_not_counted_as_an_attribute() {
    // A tombstone holds its name and no value (src/format/fields.rs): the script's exact count must
    // read it as a removed attribute, or a session at its limit could never take a new one.
    let redis = support::any_server();
    let session = support::saved_with(&redis.store(), 5).await; // a0 .. a4, packed
    let token = session.token().expose().to_owned();
    let store = redis.store_with(|c| c.with_limits(Limits::default().with_max_attributes(5)));
    let mut partial = store.load_only(&token, &["a0"]).await.expect("load").expect("live");
    partial.delete("a0");
    store.save(&mut partial).await.expect("a tombstone hides the packed a0");
    let mut loaded = reload(&store, &session).await;
    loaded.insert("new", &1).expect("four attributes and one more");
    store.save(&mut loaded).await.expect("five fit");
    assert_eq!(sorted_names(&reload(&store, &session).await), ["a1", "a2", "a3", "a4", "new"]);
}

#[tokio::test]
async fn a_malformed_packed_record_is_corrupt_and_nothing_is_written() {
    let redis = support::any_server();
    let mut session = support::saved_with(&redis.store(), 6).await;
    // A tight limit makes the save read the whole record to count, when the record is long
    // enough to hold that many attributes (the first two below are); the last three are
    // shorter than a header, which the save checks first.
    let store = redis.store_with(|c| c.with_limits(Limits::default().with_max_attributes(6)));
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    // Bodies after a well-formed header's times (created, deadline), each with its count and
    // id: a count of 9 with a truncated name, and a count of 7 with a truncated value; and
    // records too short for a header.
    let times = [1_000u64.to_be_bytes(), 4_000_000_000_000u64.to_be_bytes()].concat();
    let id = [0u8, 0, 0, 1];
    let truncated_name = [&[0, 9][..], &id, &[0, 0xff], &[b'x'; 60]].concat();
    let whole_entry = [&[0, 1, b'a', 0, 0, 0, 40][..], &[b'v'; 40]].concat();
    let truncated_value = [&[0, 1, b'b', 0, 0, 0, 100][..], &[b'w'; 10]].concat();
    let truncated_value = [&[0, 7][..], &id, &whole_entry, &truncated_value].concat();
    let bodies = [truncated_name, truncated_value];
    let mut records: Vec<Vec<u8>> = bodies.iter().map(|b| [&times[..], b].concat()).collect();
    records.extend([vec![], vec![0], times.clone()]);
    for record in records {
        let _: () = conn.hset(&key, "@p", record).await.expect("hset");
        let err = store.load(session.token().expose()).await.expect_err("corrupt");
        assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
        session.insert("more", &1).expect("the session was loaded under a looser limit");
        let err = store.save(&mut session).await.expect_err("the count cannot be made");
        assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
        let more: Option<Vec<u8>> = conn.hget(&key, "more").await.expect("hget");
        assert_eq!(more, None, "nothing written");
    }
}

#[tokio::test]
async fn a_lost_write_cannot_lift_the_attribute_limit() {
    // A lost write (a failover to a replica that missed it, a restore): here DUMP + RESTORE
    // drops A's save, then B saves from the restored state. A's view then holds an attribute
    // Redis lost and misses B's, so the script must count loose fields itself.
    let redis = support::any_server();
    let store = redis.store_with(|c| c.with_limits(Limits::default().with_max_attributes(3)));
    let token = store.create().await.expect("create").token().expose().to_owned();
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let mut a = store.load(&token).await.expect("load").expect("live");
    let mut b = store.load(&token).await.expect("load").expect("live");
    let dump: Vec<u8> = redis::cmd("DUMP").arg(&key).query_async(&mut conn).await.expect("dump");
    a.insert("a1", &1).expect("insert");
    store.save(&mut a).await.expect("save, about to be lost");
    let restore = redis::cmd("RESTORE").arg(&key).arg(60_000).arg(dump).arg("REPLACE").clone();
    let _: () = restore.query_async(&mut conn).await.expect("restore");
    for name in ["b1", "b2", "b3"] {
        b.insert(name, &1).expect("insert");
    }
    store.save(&mut b).await.expect("B's save takes the version A's save had");
    a.insert("a2", &1).expect("A's view holds two attributes");
    let err = store.save(&mut a).await.expect_err("Redis holds three already");
    assert!(matches!(err, Error::TooLarge { limit: "attributes", .. }), "{err:?}");
    let loaded = store.load(&token).await.expect("load").expect("live");
    assert_eq!(loaded.names().count(), 3);
}

#[tokio::test]
async fn removing_a_loose_attribute_deletes_it_even_when_the_header_bytes_spell_its_name() {
    // The record's header holds times, whose bytes can be any letter: the tombstone test must
    // look at the entries only, or it would keep an empty field where a plain delete belongs.
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    session.insert("a", &1).expect("insert");
    store.save(&mut session).await.expect("save");
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let mut record: Vec<u8> = conn.hget(&key, "@p").await.expect("record");
    record[..8].copy_from_slice(b"aaaaaaaa"); // the creation time
    let _: () = conn.hset(&key, "@p", record).await.expect("hset");

    assert!(session.delete("a"));
    store.save(&mut session).await.expect("save");
    assert_eq!(field_names(&redis).await, ["@p"], "deleted, not tombstoned");
}

#[tokio::test]
async fn saves_and_flash_pushes_copy_the_record_into_lua_only_when_they_need_it() {
    // Copying the record (about 800 bytes in the benchmark) is the largest part of a save that
    // reads it (lua/write.lua): a delta that removes nothing and is far from the limit reads
    // only the record's length.
    let redis = support::own_server(&[]);
    let store = redis.store();
    let mut session = reload(&store, &support::saved_with(&store, 6).await).await;
    redis.reset_stats().await;
    session.insert("a0", &"changed").expect("insert");
    store.save(&mut session).await.expect("a delta");
    assert_eq!(redis.command_calls("hget").await, 0, "a delta reads no record");
    assert_eq!(redis.command_calls("hstrlen").await, 1, "but the record's length");
    session.delete("a1");
    store.save(&mut session).await.expect("a removal");
    assert_eq!(redis.command_calls("hget").await, 1, "the record may hold a removed name");
    redis.reset_stats().await;
    store.push_flash(&session, "hello").await.expect("push");
    assert_eq!(redis.command_calls("hmget").await, 0, "a push reads no record");
    assert_eq!(redis.command_calls("hget").await, 1, "only the pending messages");
    let session = reload(&store, &session).await;
    assert_eq!(session.get::<String>("a0").expect("decode").as_deref(), Some("changed"));
    assert_eq!(session.get::<u32>("a1").expect("decode"), None, "removed");
}

#[tokio::test]
async fn stamps_agree_between_the_scripts_and_the_client_at_every_length_marker() {
    // A stamp's MessagePack length marker grows at 32 and 256 bytes. lua/entries.lua writes the
    // tombstone's stamp and measures stamps where it compares; the client writes the values'
    // stamps and reads both: a disagreement loses the tombstone or makes a checked save conflict.
    let redis = support::any_server();
    let store = redis.store();
    for len in [1, 31, 32, 255, 256, 65_535] {
        let name = "n".repeat(len);
        let mut session = support::saved_with(&store, 4).await;
        session.insert(&name, &1).expect("insert");
        store.save(&mut session).await.expect("five loose fields: compacted");
        let token = session.token().expose().to_owned();
        let mut partial = store.load_only(&token, &[&name]).await.expect("load").expect("live");
        assert!(partial.delete(&name));
        store.save(&mut partial).await.expect("the script's tombstone");
        let mut loaded = store.load(&token).await.expect("load").expect("live");
        assert_eq!(loaded.get::<u8>(&name).expect("decode"), None, "{len}: removed");
        loaded.insert(&name, &2).expect("insert");
        store.save(&mut loaded).await.expect("the client's stamp");
        loaded.insert("a0", &9).expect("insert");
        store.save_checked(&mut loaded).await.expect("the script reads the client's stamp");
        let loaded = store.load(&token).await.expect("load").expect("live");
        assert_eq!(loaded.get::<u8>(&name).expect("decode"), Some(2), "{len}");
    }
}
