//! The feed: a RESP3 connection subscribed to the revocations' channel, which keeps this
//! process's [`Mirror`] current.
//!
//! Each time it connects it subscribes first, then reads the whole set over the pool: a
//! revocation added before the subscription is in what it reads, one added after reaches it as a
//! message (revocation.lua adds and publishes in one script), and the mirror takes the union.
//! It pings over the subscribed connection every [`PING_EVERY`]; the reply comes after every
//! message published before the ping was served, so once the messages queued ahead of the reply
//! are applied, the mirror is current as of the ping. A connection that stops answering (a
//! network cut that closed nothing) stops those proofs, and after the bound requests fail closed
//! or open, as configured. A lost connection is opened again, with a fresh read of the set, to
//! the next seed URL on a Cluster (classic pub/sub reaches every node).

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::connection::connector;
use crate::stateless::mirror::Mirror;
use crate::SessionStore;

/// How often the feed pings, to show that its connection still delivers.
pub(crate) const PING_EVERY: Duration = Duration::from_millis(250);

/// The first wait before connecting again after a failure; doubled after each failure in a
/// row, up to [`RETRY_AT_MOST`].
const RETRY_AFTER: Duration = Duration::from_millis(50);
const RETRY_AT_MOST: Duration = Duration::from_secs(2);

/// Why one connection's run ended.
enum Ended {
    /// The sessions were dropped: the feed stops.
    Stopped,
    Lost(String),
}

/// Runs the feed until `stop`'s sender is dropped.
pub(crate) async fn run(store: SessionStore, mirror: Arc<Mirror>, mut stop: watch::Receiver<()>) {
    // One client per seed (a Cluster's nodes: a message published on one reaches them all),
    // tried in turn after a failure. StatelessSessions::new checked the first one.
    let config = store.config();
    let clients: Vec<redis::Client> = (config.seed_urls())
        .filter_map(|url| {
            let config = config.clone().with_url(url);
            connector::single_client(&config, ProtocolVersion::RESP3).ok()
        })
        .collect();
    if clients.is_empty() {
        warn!("the revocation feed has no URL it can use: stateless sessions fail as configured");
        return;
    }
    let mut failures: u32 = 0;
    loop {
        let client = &clients[failures as usize % clients.len()];
        match follow(client, &store, &mirror, &mut stop, &mut failures).await {
            Ended::Stopped => return,
            Ended::Lost(why) => {
                if failures == 0 {
                    warn!(error = %why, "the revocation feed lost its connection: reconnecting");
                } else {
                    debug!(error = %why, failures, "the revocation feed failed to reconnect");
                }
                failures = failures.saturating_add(1);
                let wait = RETRY_AFTER.saturating_mul(1 << failures.min(8)).min(RETRY_AT_MOST);
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// One connection: subscribe, read the set, then apply messages and ping until it is lost.
async fn follow(
    client: &redis::Client,
    store: &SessionStore,
    mirror: &Mirror,
    stop: &mut watch::Receiver<()>,
    failures: &mut u32,
) -> Ended {
    let channel = store.revocations_key();
    let (sender, mut pushes) = mpsc::unbounded_channel();
    let settings = connector::timeouts(store.config()).set_push_sender(sender);
    let connecting = async {
        let mut connection = client.get_multiplexed_async_connection_with_config(&settings).await?;
        connection.subscribe(&channel).await?;
        Ok::<_, redis::RedisError>(connection)
    };
    let mut connection = match connecting.await {
        Ok(connection) => connection,
        Err(e) => return Ended::Lost(e.to_string()),
    };
    let asked = Instant::now();
    match store.read_revocations().await {
        Ok(all) => all.iter().for_each(|(member, until)| mirror.apply(member, *until)),
        Err(e) => return Ended::Lost(e.to_string()),
    }
    mirror.prune(crate::stateless::mirror::now_ms());
    mirror.current_at(asked);
    if *failures > 0 {
        debug!("the revocation feed is back");
    }
    *failures = 0;
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            _ = stop.changed() => return Ended::Stopped,
            push = pushes.recv() => match push {
                Some(push) => {
                    if let Some(ended) = take(mirror, push) {
                        return ended;
                    }
                }
                None => return Ended::Lost("the connection closed".into()),
            },
            _ = ping.tick() => {
                let asked = Instant::now();
                if let Err(e) = redis::cmd("PING").query_async::<Value>(&mut connection).await {
                    return Ended::Lost(e.to_string());
                }
                // The messages published before the ping came ahead of its reply.
                while let Ok(push) = pushes.try_recv() {
                    if let Some(ended) = take(mirror, push) {
                        return ended;
                    }
                }
                mirror.current_at(asked);
                mirror.prune(crate::stateless::mirror::now_ms());
            }
        }
    }
}

/// Applies one push; `Some` when it ends the connection.
fn take(mirror: &Mirror, push: PushInfo) -> Option<Ended> {
    match push.kind {
        PushKind::Message => {
            let payload = push.data.get(1).and_then(|value| match value {
                Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
                _ => None,
            });
            match payload.and_then(|text| text.rsplit_once(' ')) {
                Some((member, until)) => match until.parse::<i64>() {
                    Ok(until) => mirror.apply(member, until),
                    Err(_) => debug!("a revocation message without a score was ignored"),
                },
                None => debug!("a revocation message of another shape was ignored"),
            }
            None
        }
        PushKind::Disconnection => Some(Ended::Lost("the connection closed".into())),
        _ => None,
    }
}
