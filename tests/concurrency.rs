//! Races that break other session stores: lost updates, stale overwrites, resurrection after
//! regenerate, and flash messages shown twice or lost.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::future::join_all;
use redis_sessions::{Error, Session, SessionStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_saves_of_different_attributes_all_survive() {
    let redis = support::any_server();
    let (store, session) = racing(&redis).await;
    let token = session.token().expose().to_owned();

    let saves = (0..50).map(|i| {
        let (store, token) = (store.clone(), token.clone());
        tokio::spawn(async move {
            // Every request loads the session as it was before any of the others saved.
            let mut mine = store.load(&token).await.expect("load").expect("live");
            mine.insert(&format!("attr{i}"), &i).expect("insert");
            store.save(&mut mine).await.expect("save");
        })
    });
    for task in join_all(saves).await {
        task.expect("task");
    }

    let loaded = store.load(&token).await.expect("load").expect("live");
    for i in 0..50 {
        assert_eq!(loaded.get::<i32>(&format!("attr{i}")).expect("decode"), Some(i), "attr{i}");
    }
}

#[tokio::test]
async fn a_checked_save_after_another_save_is_refused_and_writes_nothing() {
    let redis = support::any_server();
    let store = redis.store();
    let mut first = store.create().await.expect("create");
    first.insert("balance", &100).expect("insert");
    store.save(&mut first).await.expect("save");
    let token = first.token().expose().to_owned();

    let mut a = store.load(&token).await.expect("load").expect("live");
    let mut b = store.load(&token).await.expect("load").expect("live");
    a.insert("balance", &50).expect("insert");
    // A plain save: it writes no version, and the checked save still sees it.
    store.save(&mut a).await.expect("first writer wins");
    b.insert("balance", &0).expect("insert");
    b.insert("note", &"stale").expect("insert");
    let err = store.save_checked(&mut b).await.expect_err("stale");
    assert!(matches!(err, Error::Conflict), "{err:?}");

    let now = store.load(&token).await.expect("load").expect("live");
    assert_eq!(now.get::<i32>("balance").expect("decode"), Some(50));
    assert_eq!(now.get::<String>("note").expect("decode"), None, "nothing of b was written");
}

#[tokio::test]
async fn a_checked_save_after_this_sessions_own_saves_goes_through() {
    // Its view must follow its own saves exactly, deletes included: Redis drops a loose-only
    // attribute with HDEL, and the view must not keep expecting a tombstone for it.
    let redis = support::any_server();
    let store = redis.store();
    let token = support::saved_with(&store, 2).await.token().expose().to_owned(); // a0, a1 loose
    let mut session = store.load(&token).await.expect("load").expect("live");
    assert!(session.delete("a0"));
    session.insert("c", &3).expect("insert");
    store.save(&mut session).await.expect("save");
    session.insert("a1", &5).expect("insert");
    store.save_checked(&mut session).await.expect("nobody else wrote");
    session.insert("a1", &6).expect("insert");
    store.save_checked(&mut session).await.expect("still nobody else");
    let loaded = store.load(&token).await.expect("load").expect("live");
    assert_eq!(loaded.get::<i32>("a1").expect("decode"), Some(6));
    assert_eq!(loaded.get::<i32>("a0").expect("decode"), None);
}

#[tokio::test]
async fn a_checked_save_after_a_partial_load_checks_what_it_read() {
    let redis = support::any_server();
    let store = redis.store();
    let mut first = store.create().await.expect("create");
    for name in ["a", "b", "c", "d", "e"] {
        first.insert(name, &1).expect("insert");
    }
    store.save(&mut first).await.expect("save: five attributes, folded into the record");
    let token = first.token().expose().to_owned();
    let mut partial = store.load_only(&token, &["a", "b"]).await.expect("load").expect("live");
    let mut other = store.load(&token).await.expect("load").expect("live");
    other.insert("c", &9).expect("insert");
    store.save(&mut other).await.expect("a change to what the partial load did not read");

    assert!(partial.delete("a"), "a tombstone, since the record holds a");
    partial.insert("b", &7).expect("insert");
    store.save_checked(&mut partial).await.expect("c was not read");
    partial.insert("b", &8).expect("insert");
    store.save_checked(&mut partial).await.expect("its own tombstone and b are its view");

    let mut other = store.load(&token).await.expect("load").expect("live");
    other.insert("b", &0).expect("insert");
    store.save(&mut other).await.expect("a change to what it read");
    partial.insert("d", &2).expect("insert");
    let err = store.save_checked(&mut partial).await.expect_err("b changed");
    assert!(matches!(err, Error::Conflict), "{err:?}");
    let now = store.load(&token).await.expect("load").expect("live");
    assert_eq!(now.get::<i32>("d").expect("decode"), Some(1), "nothing written");
    assert_eq!(now.get::<i32>("a").expect("decode"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn saves_racing_a_regenerate_cannot_resurrect_the_old_token() {
    let redis = support::any_server();
    let store = redis.store_with(|c| c.with_pool_max_size(8));
    for round in 0..20 {
        let mut session = store.create().await.expect("create");
        let old = session.token().expose().to_owned();
        let racers = (0..8).map(|i| {
            let (store, old) = (store.clone(), old.clone());
            tokio::spawn(async move {
                let Some(mut stale) = store.load(&old).await.expect("load") else {
                    return false;
                };
                stale.insert(&format!("racer{i}"), &i).expect("insert");
                match store.save(&mut stale).await {
                    Ok(()) => true,
                    Err(Error::SessionGone) => false,
                    Err(other) => panic!("unexpected {other:?}"),
                }
            })
        });
        let racers: Vec<_> = racers.collect();
        let new = store.regenerate(&mut session).await.expect("regenerate");
        let saved: Vec<bool> =
            join_all(racers).await.into_iter().map(|r| r.expect("task")).collect();

        assert!(store.load(&old).await.expect("load").is_none(), "round {round}: old token dead");
        assert_eq!(redis.keys().await.len(), 1, "round {round}: only the new key exists");
        // Saves that landed before the move moved with it.
        let moved = store.load(new.expose()).await.expect("load").expect("live");
        let landed =
            (0..8).filter(|i| moved.get::<i32>(&format!("racer{i}")).expect("decode").is_some());
        assert_eq!(landed.count(), saved.iter().filter(|s| **s).count(), "round {round}");
        store.destroy(&moved).await.expect("clean up");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_pops_deliver_each_of_ten_messages_exactly_once() {
    let redis = support::any_server();
    let (store, session) = racing(&redis).await;
    for i in 0..10 {
        store.push_flash(&session, &format!("message {i}")).await.expect("push");
    }
    let token = session.token().expose().to_owned();

    let pops = (0..20).map(|i| {
        let (store, token) = (store.clone(), token.clone());
        tokio::spawn(async move {
            let mut session = store.load(&token).await.expect("load").expect("live");
            if i % 2 == 0 {
                store.pop_flash::<String>(&mut session).await.expect("pop")
            } else {
                let mut s = store.load_and_pop_flash(&token).await.expect("load").expect("live");
                s.take_flash::<String>().expect("decode")
            }
        })
    });
    let mut seen = BTreeMap::new();
    for messages in join_all(pops).await {
        tally(&mut seen, messages.expect("task"));
    }
    assert_eq!(seen.len(), 10, "none lost: {seen:?}");
    assert!(seen.values().all(|&n| n == 1), "none twice: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_pushed_while_loads_pop_are_each_shown_once() {
    let redis = support::any_server();
    let (store, session) = racing(&redis).await;
    let token = session.token().expose().to_owned();
    let pushing = Arc::new(AtomicUsize::new(4));
    let pushes = (0..4).map(|task| {
        let (store, token, pushing) = (store.clone(), token.clone(), pushing.clone());
        tokio::spawn(async move {
            let session = store.load(&token).await.expect("load").expect("live");
            for i in 0..50 {
                store.push_flash(&session, &format!("{task}-{i}")).await.expect("push");
            }
            pushing.fetch_sub(1, Ordering::SeqCst);
            Vec::new()
        })
    });
    // Pops run until every push is done, so they race the pushes the whole time.
    let pops = (0..4).map(|_| {
        let (store, token, pushing) = (store.clone(), token.clone(), pushing.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while pushing.load(Ordering::SeqCst) > 0 {
                let mut s = store.load_and_pop_flash(&token).await.expect("load").expect("live");
                seen.extend(s.take_flash::<String>().expect("decode"));
            }
            seen
        })
    });
    let mut seen = BTreeMap::new();
    for messages in join_all(pushes.chain(pops)).await {
        tally(&mut seen, messages.expect("task"));
    }
    let popped_while_pushing = seen.len();
    let mut rest = store.load_and_pop_flash(&token).await.expect("load").expect("live");
    tally(&mut seen, rest.take_flash::<String>().expect("decode"));
    assert!(popped_while_pushing > 0, "the pops raced the pushes");
    assert_eq!(seen.len(), 200, "none lost");
    assert!(seen.values().all(|&n| n == 1), "none twice: {seen:?}");
}

/// A store with eight connections, so requests really run at once, and a new session in it.
async fn racing(redis: &support::TestRedis) -> (SessionStore, Session) {
    let store = redis.store_with(|c| c.with_pool_max_size(8));
    let session = store.create().await.expect("create");
    (store, session)
}

/// Counts each message into `seen`.
fn tally(seen: &mut BTreeMap<String, u32>, messages: impl IntoIterator<Item = String>) {
    for message in messages {
        *seen.entry(message).or_insert(0) += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_are_all_kept() {
    let redis = support::any_server();
    let (store, mut session) = racing(&redis).await;
    let pushes = (0..30).map(|i| {
        let (store, token) = (store.clone(), session.token().expose().to_owned());
        tokio::spawn(async move {
            let session = store.load(&token).await.expect("load").expect("live");
            store.push_flash(&session, &i).await.expect("push");
        })
    });
    join_all(pushes).await.into_iter().for_each(|r| r.expect("task"));
    let mut all: Vec<u32> = store.pop_flash(&mut session).await.expect("pop");
    all.sort_unstable();
    assert_eq!(all, (0..30).collect::<Vec<_>>());
}
