//! The feed: a RESP3 connection subscribed to the revocations' channel, which keeps this
//! process's [`Mirror`] current.
//!
//! Each time it connects it subscribes first, then reads the whole set over the pool: a revocation
//! added before the subscription is in what it reads, one added after reaches it as a message
//! (revocation.lua adds and publishes in one script), and the mirror takes the union. Every
//! [`PING_EVERY`] it pings over the subscribed connection (a connection that does not answer is
//! replaced) and sends itself a heartbeat: heartbeat.lua publishes a number on this connection's
//! own channel from the server that holds the revocations, the one revocation.lua publishes from,
//! so that when the number comes back every revocation published before it has come too (on a
//! Cluster, over the same link between nodes, in order), and the copy is current as of the
//! heartbeat's sending. A feed that stops hearing its heartbeats (a network cut that closed
//! nothing, a Cluster node that no longer hears the others) stops those proofs, and after the bound
//! requests fail closed or open, as configured. A lost connection is opened again, with a fresh
//! read of the set, to the next seed URL on a Cluster (classic pub/sub reaches every node).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::connection::connector;
use crate::stateless::mirror::{now_ms, Mirror};
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

/// One connection: subscribe, read the set, then apply messages, ping and send heartbeats
/// until it is lost.
async fn follow(
    client: &redis::Client,
    store: &SessionStore,
    mirror: &Mirror,
    stop: &mut watch::Receiver<()>,
    failures: &mut u32,
) -> Ended {
    let channel = store.revocations_key();
    let mut own = [0u8; 8];
    if let Err(e) = getrandom::fill(&mut own) {
        return Ended::Lost(e.to_string());
    }
    let beats_channel = format!("{channel}:beat:{}", u64::from_be_bytes(own));
    let (sender, mut pushes) = mpsc::unbounded_channel();
    let settings = connector::timeouts(store.config()).set_push_sender(sender);
    let connecting = async {
        let mut connection = client.get_multiplexed_async_connection_with_config(&settings).await?;
        connection.subscribe(&[&channel, &beats_channel]).await?;
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
    mirror.prune(now_ms());
    mirror.current_at(asked);
    if *failures > 0 {
        debug!("the revocation feed is back");
    }
    *failures = 0;
    let mut feed = Feed { mirror, beats_channel, beats: VecDeque::new(), next_beat: 0 };
    let mut tick = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            _ = stop.changed() => return Ended::Stopped,
            push = pushes.recv() => match push {
                Some(push) => {
                    if let Some(ended) = feed.take(push) {
                        return ended;
                    }
                }
                None => return Ended::Lost("the connection closed".into()),
            },
            _ = tick.tick() => {
                // The connection answers, or is replaced.
                if let Err(e) = redis::cmd("PING").query_async::<Value>(&mut connection).await {
                    return Ended::Lost(e.to_string());
                }
                feed.beat(store).await;
                mirror.prune(now_ms());
            }
        }
    }
}

/// What one connection's run keeps: the heartbeats sent and not yet back.
struct Feed<'a> {
    mirror: &'a Mirror,
    beats_channel: String,
    /// Each heartbeat sent, and when: oldest first, at most [`BEATS_KEPT`].
    beats: VecDeque<(u64, Instant)>,
    next_beat: u64,
}

/// Heartbeats kept while none comes back (a feed that hears nothing goes stale anyway).
const BEATS_KEPT: usize = 64;

impl Feed<'_> {
    /// Publishes the next heartbeat where the revocations are published (heartbeat.lua).
    async fn beat(&mut self, store: &SessionStore) {
        let (beat, asked) = (self.next_beat, Instant::now());
        self.next_beat += 1;
        match store.heartbeat(&self.beats_channel, beat).await {
            Ok(()) => {
                if self.beats.len() == BEATS_KEPT {
                    self.beats.pop_front();
                }
                self.beats.push_back((beat, asked));
            }
            Err(e) => debug!(error = %e, "a heartbeat of the revocation feed failed"),
        }
    }

    /// Applies one push; `Some` when it ends the connection.
    fn take(&mut self, push: PushInfo) -> Option<Ended> {
        match push.kind {
            PushKind::Message => {
                let (channel, payload) = (text(push.data.first()), text(push.data.get(1)));
                match (channel, payload) {
                    (Some(channel), Some(beat)) if channel == self.beats_channel => {
                        self.returned(beat.parse().ok());
                    }
                    (_, Some(payload)) => revocation(self.mirror, payload),
                    _ => debug!("a revocation message of another shape was ignored"),
                }
                None
            }
            PushKind::Disconnection => Some(Ended::Lost("the connection closed".into())),
            _ => None,
        }
    }

    /// Heartbeat `beat` came back: every revocation published before it was sent has come
    /// too, so the copy is current as of its sending.
    fn returned(&mut self, beat: Option<u64>) {
        let Some(beat) = beat else { return };
        while let Some(&(sent, asked)) = self.beats.front() {
            if sent > beat {
                break;
            }
            self.beats.pop_front();
            if sent == beat {
                self.mirror.current_at(asked);
            }
        }
    }
}

/// A message's part as text.
fn text(value: Option<&Value>) -> Option<&str> {
    match value {
        Some(Value::BulkString(bytes)) => std::str::from_utf8(bytes).ok(),
        _ => None,
    }
}

/// Applies a revocation message, `<member> <score>`.
fn revocation(mirror: &Mirror, payload: &str) {
    match payload.rsplit_once(' ') {
        Some((member, until)) => match until.parse::<i64>() {
            Ok(until) => mirror.apply(member, until),
            Err(_) => debug!("a revocation message without a score was ignored"),
        },
        None => debug!("a revocation message of another shape was ignored"),
    }
}
