//! A Redis Cluster master killed under load: its replica takes over and the workload goes on.
//! (redis-test starts the nodes with cluster-node-timeout 5000 ms, which sets the window.)

mod support;

use std::time::{Duration, Instant};

use redis_sessions::SessionStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_replaced_by_its_replica_and_no_session_is_lost() {
    let mut cluster = support::cluster::start(true);
    let ms = Duration::from_millis;
    let store = SessionStore::new(cluster.config().with_timeouts(ms(200), ms(200), ms(200)))
        .expect("store");
    let mut tokens = Vec::new();
    for i in 0..30 {
        let mut session = store.create().await.expect("create");
        session.insert("n", &i).expect("insert");
        store.save(&mut session).await.expect("save");
        tokens.push(session.token().expose().to_owned());
    }
    let masters = cluster.masters().await;
    assert_eq!(masters.len(), 3);
    for (_, mut conn) in masters.iter().cloned() {
        let synced = support::replicas_caught_up(&mut conn, Duration::from_secs(10)).await;
        assert!(synced, "every master's replica caught up");
    }
    let victim = masters[0].0;
    let index =
        cluster.cluster.servers.iter().position(|s| s.host_and_port().map(|h| h.1) == Some(victim));
    let killed = Instant::now();
    cluster.cluster.servers[index.expect("victim")].stop();

    let (mut slowest_failure, mut recovered) = (Duration::ZERO, None);
    while killed.elapsed() < Duration::from_secs(40) {
        let round = Instant::now();
        let mut all_ok = true;
        for (i, token) in tokens.iter().enumerate() {
            let started = Instant::now();
            match store.load(token).await {
                Ok(Some(session)) => {
                    assert_eq!(session.get::<i32>("n").expect("decode"), Some(i as i32))
                }
                Ok(None) => panic!("session {i} lost in the failover"),
                Err(e) => {
                    assert!(e.is_unavailable(), "typed, retryable error: {e:?}");
                    slowest_failure = slowest_failure.max(started.elapsed());
                    all_ok = false;
                }
            }
        }
        if all_ok {
            recovered = Some(round - killed);
            break;
        }
        tokio::time::sleep(ms(50)).await;
    }
    let window = recovered.expect("the workload recovered within 40 s");
    eprintln!("cluster failover: window {window:?}, slowest failed operation {slowest_failure:?}");
    assert!(slowest_failure < Duration::from_secs(2), "failures are fast: {slowest_failure:?}");

    // Writes work again too, on the promoted replica.
    for token in &tokens {
        let mut session = store.load(token).await.expect("load").expect("live");
        session.insert("after", &true).expect("insert");
        store.save(&mut session).await.expect("save after failover");
    }
}

/// Loads sessions that live on the masters that stay up, from 16 tasks, while another master
/// is killed and its replica takes over: every failure on them, with how long it took.
async fn healthy_masters_under_a_failover(full_coverage: &str) -> Vec<(Duration, String)> {
    let mut cluster = support::cluster::start(true);
    for url in cluster.urls() {
        let client = redis::Client::open(url).expect("url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("node");
        let mut set = redis::cmd("CONFIG");
        set.arg("SET").arg("cluster-require-full-coverage").arg(full_coverage);
        let _: () = set.query_async(&mut conn).await.expect("config");
    }
    let store = SessionStore::new(cluster.config()).expect("store");
    let mut tokens = Vec::new();
    for _ in 0..60 {
        tokens.push(store.create().await.expect("create").token().expose().to_owned());
    }
    let masters = cluster.masters().await;
    for (_, mut conn) in masters.iter().cloned() {
        assert!(support::replicas_caught_up(&mut conn, Duration::from_secs(10)).await);
    }
    // A cluster key carries its token's hash tag, `{tag}`: the victim's keys name its tags.
    let (victim, mut victim_conn) = masters[0].clone();
    let pattern = format!("{}*", cluster.prefix);
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(pattern).query_async(&mut victim_conn).await.expect("keys");
    tokens.retain(|token| !keys.iter().any(|key| key.contains(&format!("{{{}}}", &token[..4]))));
    assert!(tokens.len() >= 20, "sessions on the other masters: {}", tokens.len());

    let index =
        cluster.cluster.servers.iter().position(|s| s.host_and_port().map(|h| h.1) == Some(victim));
    let killed = Instant::now();
    cluster.cluster.servers[index.expect("victim")].stop();
    let tasks = (0..16).map(|task| {
        let (store, tokens) = (store.clone(), tokens.clone());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            // Past the promotion: cluster-node-timeout 5 s, then an election.
            for round in 0.. {
                if killed.elapsed() > Duration::from_secs(11) {
                    break;
                }
                let started = Instant::now();
                match store.load(&tokens[(task + round * 16) % tokens.len()]).await {
                    Ok(loaded) => assert!(loaded.is_some(), "a session lost"),
                    Err(e) => {
                        assert!(e.is_unavailable(), "typed, retryable: {e:?}");
                        failures.push((started.elapsed(), e.to_string()));
                    }
                }
            }
            failures
        })
    });
    let mut failures = Vec::new();
    for task in futures::future::join_all(tasks).await {
        failures.extend(task.expect("loads"));
    }
    let slowest = failures.iter().map(|f| f.0).max().unwrap_or_default();
    eprintln!(
        "failover, cluster-require-full-coverage {full_coverage}: {} failed loads on the healthy \
         masters, slowest {slowest:?}",
        failures.len()
    );
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_a_replica_takes_over_the_healthy_masters_fail_fast() {
    // With Redis' default, every node refuses every slot (CLUSTERDOWN) from the moment the
    // master is marked failed until its replica is promoted, about a second.
    for (took, error) in healthy_masters_under_a_failover("yes").await {
        assert!(
            took < Duration::from_millis(600),
            "a fast failure, not a timeout: {took:?} {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_full_coverage_the_healthy_masters_never_fail() {
    let failures = healthy_masters_under_a_failover("no").await;
    assert!(failures.is_empty(), "{} failed, the first: {:?}", failures.len(), failures.first());
}
