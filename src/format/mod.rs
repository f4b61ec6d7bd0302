//! The stored format: what Redis holds for a session, and the constants that define it.
//!
//! This file is the one place each tag byte, record header offset and stamp marker is written.
//! Rust uses them here; the Lua scripts get them as `local`s in lua/format.lua, generated from
//! these ([`lua_constants`]; a test fails when the file is out of date, and
//! `REDIS_SESSIONS_REGENERATE=1 cargo test --lib format` rewrites it), prepended to every
//! script with the other helpers (connection/scripts.rs). The golden tests at the end write
//! with one language and read with the other.
//!
//! A session is one hash under a key derived from its token (`keys.rs`), holding (`fields.rs`
//! says how a load tells them apart):
//! - the packed record, `@p`: a header, then the entries (`packed.rs`);
//! - loose attributes, each value stamped with its name as a MessagePack string;
//! - metadata: [`META`], then a letter, then the data.
//!
//! Attribute values are MessagePack (`codec.rs`).

pub(crate) mod bound;
pub(crate) mod codec;
pub(crate) mod fields;
pub(crate) mod keys;
pub(crate) mod packed;

/// The first byte of the packed record: the high byte of its creation time (a u64 of ms, below
/// 2^56 until the year 2,280,000).
pub(crate) const RECORD: u8 = 0x00;
/// The first byte of metadata values: never valid MessagePack, so no stamped value can start
/// with it. In a view sent to the save script, it alone means "not set".
pub(crate) const META: u8 = 0xc1;
/// The letter after [`META`] of the pending flash messages (`@f`).
pub(crate) const FLASH: u8 = b'f';
/// The first byte of a sealed value (seal/envelope.rs): [`META`], never the first byte of
/// MessagePack, so a sealed value is never taken for a plain one.
pub(crate) const SEALED: u8 = META;
/// The letter after [`META`] of the key's expiry (`@t`): a u64 of ms on the server's clock.
pub(crate) const EXPIRY: u8 = b't';
/// The letter after [`META`] of a session's own timeouts (`@i`): idle and threshold, two u64s.
pub(crate) const OWN_TIMEOUTS: u8 = b'i';

/// The letter after [`META`] of a session's binding to a user (`@u`; bound.rs): when it was
/// last rotated (a u64 of ms), its device id, the user id and the app's label.
pub(crate) const BOUND: u8 = b'u';
/// The letter after [`META`] of a retired token's stub (`@r`; bound.rs), the only field of the
/// hash a rotation leaves under the old key: the end of its grace window (a u64 of ms), the
/// device id, the next token sealed with the old one, and the user id.
pub(crate) const RETIRED: u8 = b'r';
/// Where, in `@u` and `@r`, the u64 of ms sits (rotated at; grace until), then the device id.
pub(crate) const BOUND_TIME_AT: usize = 2;
/// Where the device id sits in `@u` and `@r`, and its length in bytes.
pub(crate) const DEVICE_AT: usize = BOUND_TIME_AT + 8;
/// The device id's length: 8 random bytes.
pub(crate) const DEVICE_LEN: usize = 8;

/// The record header's fields, big-endian, at these byte offsets (0-based).
pub(crate) const CREATED_AT: usize = 0;
/// The absolute deadline, a u64 of ms on the server's clock.
pub(crate) const DEADLINE_AT: usize = 8;
/// The number of entries, a u16.
pub(crate) const COUNT_AT: usize = 16;
/// The record's id, a u32: 0 for a new session, then random at each compaction.
pub(crate) const ID_AT: usize = 18;
/// The header's length; the entries follow.
pub(crate) const HEADER_LEN: usize = 22;
/// An entry: its name's length in this many bytes, the name, its value's length in
/// [`VALUE_LEN_BYTES`], the value.
pub(crate) const NAME_LEN_BYTES: usize = 2;
/// The bytes of an entry's value length.
pub(crate) const VALUE_LEN_BYTES: usize = 4;

/// MessagePack string markers, as stamps use them: a fixstr holds up to [`FIXSTR_MAX`] bytes
/// in its marker's low bits; str8, str16 and str32 give the length in 1, 2 and 4 bytes.
pub(crate) const FIXSTR: u8 = 0xa0;
/// The longest string a fixstr holds.
pub(crate) const FIXSTR_MAX: usize = 31;
/// str8's marker.
pub(crate) const STR8: u8 = 0xd9;
/// str16's marker.
pub(crate) const STR16: u8 = 0xda;
/// str32's marker.
pub(crate) const STR32: u8 = 0xdb;

/// The constants as Lua `local`s, 1-based where Lua's string functions count from 1: the
/// content of lua/format.lua.
#[cfg(test)]
fn lua_constants() -> String {
    let lines = [
        "-- Generated from src/format/mod.rs, the one place these are written: edit them there, then"
            .to_owned(),
        "-- run REDIS_SESSIONS_REGENERATE=1 cargo test --lib format.".to_owned(),
        format!("local RECORD = {RECORD}"),
        format!("local META = {META}"),
        format!("local FLASH = {FLASH}"),
        format!("local EXPIRY = {EXPIRY}"),
        format!("local OWN_TIMEOUTS = {OWN_TIMEOUTS}"),
        format!("local BOUND = {BOUND}"),
        format!("local RETIRED = {RETIRED}"),
        format!("local BOUND_TIME_AT = {}", BOUND_TIME_AT + 1),
        format!("local DEVICE_AT = {}", DEVICE_AT + 1),
        format!("local DEVICE_LEN = {DEVICE_LEN}"),
        format!("local CREATED_AT = {}", CREATED_AT + 1),
        format!("local DEADLINE_AT = {}", DEADLINE_AT + 1),
        format!("local COUNT_AT = {}", COUNT_AT + 1),
        format!("local ID_AT = {}", ID_AT + 1),
        format!("local RECORD_HEADER = {HEADER_LEN}"),
        format!("local NAME_LEN_BYTES = {NAME_LEN_BYTES}"),
        format!("local VALUE_LEN_BYTES = {VALUE_LEN_BYTES}"),
        format!("local FIXSTR = {FIXSTR}"),
        format!("local FIXSTR_MAX = {FIXSTR_MAX}"),
        format!("local STR8 = {STR8}"),
        format!("local STR16 = {STR16}"),
        format!("local STR32 = {STR32}"),
    ];
    lines.join("\n") + "\n"
}

// The widths the offsets assume: the header is created, deadline (u64s), count (u16), id (u32).
const _: () = assert!(
    DEADLINE_AT == CREATED_AT + 8
        && COUNT_AT == DEADLINE_AT + 8
        && ID_AT == COUNT_AT + 2
        && HEADER_LEN == ID_AT + 4
        && NAME_LEN_BYTES == 2
        && VALUE_LEN_BYTES == 4
);

#[cfg(test)]
mod tests {
    use crate::format::fields::stamped;

    #[test]
    fn lua_format_is_generated_from_these_constants() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/lua/format.lua");
        let generated = super::lua_constants();
        if std::env::var_os("REDIS_SESSIONS_REGENERATE").is_some() {
            std::fs::write(path, &generated).expect("write lua/format.lua");
            panic!(
                "lua/format.lua regenerated: run the tests again without REDIS_SESSIONS_REGENERATE"
            );
        }
        let written = std::fs::read_to_string(path).expect("lua/format.lua").replace("\r\n", "\n");
        assert!(
            written == generated,
            "lua/format.lua is out of date: run REDIS_SESSIONS_REGENERATE=1 cargo test --lib format"
        );
    }

    /// A stamp is a MessagePack string, as a third-party encoder writes it, in every length
    /// class. (That stored sessions stay readable, the constants unchanged, is
    /// `golden::a_session_stored_before_loads_the_same`'s to show.)
    #[test]
    fn a_stamp_is_a_messagepack_string() {
        for len in [1, 31, 32, 255, 256, 65_535, 65_536] {
            let name = "n".repeat(len);
            let mut messagepack = Vec::new();
            rmp::encode::write_str(&mut messagepack, &name).expect("to a Vec");
            assert_eq!(stamped(&name, b""), messagepack, "a stamp is a MessagePack string: {len}");
        }
    }
}

#[cfg(all(test, feature = "test-server"))]
mod golden {
    //! Each tag, header field and stamp length class, written by one language and read by the
    //! other, on a real Redis.

    use redis::aio::MultiplexedConnection;

    use super::FIXSTR;
    use crate::connection::scripts;
    use crate::format::fields::{stamped, Field};
    use crate::format::packed::Packed;
    use crate::test_server::TestServer;

    async fn conn(redis: &TestServer) -> MultiplexedConnection {
        let client = redis::Client::open(redis.url()).expect("url");
        client.get_multiplexed_async_connection().await.expect("connect")
    }

    /// Runs `body` after the helpers every script gets, on key `k`.
    async fn eval<T: redis::FromRedisValue>(
        conn: &mut MultiplexedConnection,
        body: &str,
        args: &[&[u8]],
    ) -> T {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(format!("{}{body}", scripts::source("helpers").unwrap_or_default()))
            .arg(1)
            .arg("k")
            .arg(args);
        cmd.query_async(conn).await.expect("eval")
    }

    #[tokio::test]
    async fn records_written_by_rust_read_the_same_in_lua_and_back() {
        let redis = TestServer::start().expect("redis-server");
        let mut conn = conn(&redis).await;
        let ada = [FIXSTR + 3, b'a', b'd', b'a']; // "ada", as MessagePack
        let entries = [("a", &b"\x01"[..]), ("name", &ada[..])];
        let rust = Packed::encode(
            (1_800_000_000_123, 1_800_043_200_123),
            0xdead_beef,
            entries.into_iter(),
        );
        let read: Vec<i64> = eval(
            &mut conn,
            "local r = ARGV[1]
             local v = record_values(r)
             return {record_number(r, CREATED_AT, 8), record_deadline(r), record_count(r),
                     record_id(r), #v['a'], #v['name']}",
            &[&rust],
        )
        .await;
        assert_eq!(read, [1_800_000_000_123, 1_800_043_200_123, 2, 0xdead_beef, 1, 4]);

        let header = "return record_header(tonumber(ARGV[1]), tonumber(ARGV[2]))";
        let lua: Vec<u8> = eval(&mut conn, header, &[b"1800000000123", b"1800043200123"]).await;
        let packed = Packed::parse(lua).expect("a record Lua wrote");
        assert_eq!(packed.times(), Some((1_800_000_000_123, 1_800_043_200_123)));
        assert_eq!((packed.count(), packed.record_id()), (0, 0));
    }

    #[tokio::test]
    async fn metadata_fields_written_by_either_language_read_the_same_in_the_other() {
        let redis = TestServer::start().expect("redis-server");
        let mut conn = conn(&redis).await;
        let lua: Vec<Vec<u8>> = eval(
            &mut conn,
            "return {expiry_field(1800000000123), own_timeouts_field(604800000, 60480000),
                     string.char(META, FLASH) .. 'x'}",
            &[],
        )
        .await;
        let parsed: Vec<Field> =
            lua.into_iter().map(|v| Field::parse(v).expect("a field")).collect();
        assert_eq!(
            parsed,
            [
                Field::Expiry(1_800_000_000_123),
                Field::OwnTimeouts { idle: 604_800_000, touch_after: 60_480_000 },
                Field::Flash(b"x".to_vec()),
            ]
        );

        let expiry =
            [crate::format::fields::EXPIRY_TAG, &1_800_000_000_123u64.to_be_bytes()].concat();
        let own = [
            crate::format::fields::OWN_TIMEOUTS_TAG,
            &604_800_000u64.to_be_bytes(),
            &60_480_000u64.to_be_bytes(),
        ]
        .concat();
        let read: Vec<i64> = eval(
            &mut conn,
            "local idle, touch_after = field_own_timeouts(ARGV[2])
             return {field_expiry(ARGV[1]), idle, touch_after,
                     string.byte(ARGV[3], 1) == META and string.byte(ARGV[3], 2) == FLASH and 1 or 0}",
            &[&expiry, &own, crate::format::fields::FLASH_TAG],
        )
        .await;
        assert_eq!(read, [1_800_000_000_123, 604_800_000, 60_480_000, 1]);
    }

    #[tokio::test]
    async fn stamps_of_every_length_class_agree() {
        use redis::AsyncCommands;

        let redis = TestServer::start().expect("redis-server");
        let store = crate::SessionStore::new(redis.config()).expect("store");
        // fixstr at both ends, str8 at both ends, str16 at both ends: a name is at most 65,535
        // bytes, so no stamp is a str32 (lua/entries.lua can write one all the same).
        let names: Vec<String> =
            [1, 31, 32, 255, 256, 65_535].iter().map(|&len| "n".repeat(len - 1) + "x").collect();
        let mut session = store.create().await.expect("create");
        for name in &names {
            session.insert(name, &1).expect("insert"); // six: the save packs them in the record
        }
        store.save(&mut session).await.expect("save");
        // Removed after a partial load, each packed name gets a tombstone, stamped by Lua.
        let token = session.token().expose().to_owned();
        let read: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut partial = store.load_only(&token, &read).await.expect("load").expect("live");
        for name in &names {
            assert!(partial.delete(name));
        }
        store.save(&mut partial).await.expect("a save of tombstones");
        let fields: std::collections::HashMap<String, Vec<u8>> =
            conn(&redis).await.hgetall(&partial.key).await.expect("hgetall");
        for name in &names {
            assert_eq!(fields[name], stamped(name, b""), "the stamp of a {}-byte name", name.len());
            let parsed = Field::parse(fields[name].clone()).expect("a stamp");
            assert_eq!(parsed, Field::Loose(name.clone(), None));
        }
        let loaded = store.load(&token).await.expect("load").expect("live");
        assert!(loaded.is_empty(), "Rust reads every tombstone as removed");
    }

    /// A hash's fields: names and values.
    type Fields = Vec<(Vec<u8>, Vec<u8>)>;

    /// The token, the key and the fields of tests/data/stored_session.txt, the key under
    /// `prefix`.
    fn stored_session(prefix: &str) -> (String, String, Fields) {
        let hex = |text: &str| -> Vec<u8> {
            let digit = |i: usize| u8::from_str_radix(&text[i..i + 2], 16).expect("hex");
            (0..text.len()).step_by(2).map(digit).collect()
        };
        let text = include_str!("../../tests/data/stored_session.txt");
        let (mut token, mut key, mut fields) = (String::new(), String::new(), Vec::new());
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            match line.split(' ').collect::<Vec<_>>()[..] {
                ["token", value] => token = value.to_owned(),
                ["key", value] => key = format!("{prefix}{value}"),
                ["field", name, value] => fields.push((hex(name), hex(value))),
                _ => panic!("an unknown line in the fixture"),
            }
        }
        (token, key, fields)
    }

    #[tokio::test]
    async fn a_session_stored_before_loads_the_same() {
        let redis = TestServer::start().expect("redis-server");
        let store = crate::SessionStore::new(redis.config()).expect("store");
        let (token, key, fields) = stored_session(&store.config().key_prefix);
        let parsed = crate::Token::parse(&token).expect("the token still parses");
        assert_eq!(crate::format::keys::session_key(store.config(), &parsed), key, "same key");
        let mut conn = conn(&redis).await;
        let mut hset = redis::cmd("HSET");
        hset.arg(&key);
        for (name, value) in &fields {
            hset.arg(name).arg(value);
        }
        let () = hset.query_async(&mut conn).await.expect("hset");
        let () =
            redis::cmd("PEXPIRE").arg(&key).arg(60_000).query_async(&mut conn).await.expect("ttl");

        let mut session = store.load_and_pop_flash(&token).await.expect("load").expect("live");
        for i in [1, 3, 4, 5, 6] {
            let value: Option<String> = session.get(&format!("a{i}")).expect("decode");
            assert_eq!(value, Some(format!("packed {i}")), "a{i}, from the record");
        }
        assert_eq!(session.get::<String>("a2").expect("decode"), None, "the tombstone hides a2");
        assert_eq!(session.get::<String>("fresh").expect("decode").as_deref(), Some("loose"));
        assert_eq!(session.get::<u32>(&"m".repeat(40)).expect("decode"), Some(40), "str8 stamp");
        let str16: Option<Vec<u8>> = session.get(&"l".repeat(300)).expect("decode");
        assert_eq!(str16, Some(vec![1, 2, 3]), "str16 stamp");
        assert_eq!(session.names().count(), 8);
        assert_eq!(session.take_flash::<String>().expect("decode"), ["hello"]);
        let meta = session.metadata();
        assert_eq!(meta.idle_timeout_ms, Some(7 * 86_400_000), "@i");
        assert_eq!(meta.deadline_ms - meta.created_ms, 36_500 * 86_400_000, "the header's times");
        session.insert("fresh", "saved").expect("insert");
        store.save(&mut session).await.expect("a stored session saves");
    }
}
