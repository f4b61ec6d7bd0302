//! The naive baseline: what most session stores do.
//!
//! One MessagePack blob per session; every request pipelines GET and PEXPIRE (sliding the
//! expiry on every read); every write SETs the whole blob; regenerate is GET, SET new, DEL old
//! from the client; flash messages live inside the blob. One redis-rs multiplexed connection
//! (`--baseline-connections` gives it more, taken in turn, as redis-sessions' pool does).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::RedisResult;

use crate::profile::{change_profile, Profile, FLASH};

#[derive(Clone)]
pub struct Naive {
    conns: Arc<[MultiplexedConnection]>,
    next: Arc<AtomicUsize>,
    idle_ms: u64,
}

fn key(id: &str) -> String {
    format!("base:{id}")
}

impl Naive {
    pub async fn new(url: &str, idle: Duration, connections: usize) -> RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let mut conns = Vec::new();
        for _ in 0..connections.max(1) {
            conns.push(client.get_multiplexed_async_connection().await?);
        }
        let next = Arc::default();
        Ok(Naive { conns: conns.into(), next, idle_ms: idle.as_millis() as u64 })
    }

    /// The next connection, round robin.
    fn conn(&self) -> MultiplexedConnection {
        self.conns[self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len()].clone()
    }

    pub async fn create(&self, profile: &Profile) -> RedisResult<String> {
        let id = format!("{:032x}", rand::random::<u128>());
        self.write(&id, profile).await?;
        Ok(id)
    }

    /// GET + PEXPIRE in one pipeline, then decode the whole blob.
    pub async fn load(&self, id: &str) -> RedisResult<Option<Profile>> {
        let (blob, _): (Option<Vec<u8>>, i64) = redis::pipe()
            .get(key(id))
            .pexpire(key(id), self.idle_ms as i64)
            .query_async(&mut self.conn())
            .await?;
        Ok(blob.and_then(|b| rmp_serde::from_slice(&b).ok()))
    }

    async fn write(&self, id: &str, profile: &Profile) -> RedisResult<()> {
        let blob = rmp_serde::to_vec_named(profile)
            .map_err(|e| redis::RedisError::from(std::io::Error::other(e)))?;
        redis::cmd("SET")
            .arg(key(id))
            .arg(blob)
            .arg("PX")
            .arg(self.idle_ms)
            .query_async(&mut self.conn())
            .await
    }

    /// A request that reads the user and the CSRF token.
    pub async fn read_request(&self, id: &str) -> RedisResult<bool> {
        Ok(self.load(id).await?.map(|p| p.user_id > 0 && !p.csrf_token.is_empty()).unwrap_or(false))
    }

    /// A request that changes one attribute: load, change, write the whole blob.
    pub async fn save_request(&self, id: &str, n: u64) -> RedisResult<bool> {
        let Some(mut profile) = self.load(id).await? else { return Ok(false) };
        change_profile(&mut profile, n);
        self.write(id, &profile).await.map(|_| true)
    }

    /// Login: copy the blob to a new id, delete the old one.
    pub async fn regenerate_request(&self, id: &str) -> RedisResult<Option<String>> {
        let Some(profile) = self.load(id).await? else { return Ok(None) };
        let new = format!("{:032x}", rand::random::<u128>());
        let blob = rmp_serde::to_vec_named(&profile)
            .map_err(|e| redis::RedisError::from(std::io::Error::other(e)))?;
        let _: () = redis::pipe()
            .cmd("SET")
            .arg(key(&new))
            .arg(blob)
            .arg("PX")
            .arg(self.idle_ms)
            .ignore()
            .del(key(id))
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(Some(new))
    }

    /// Post/redirect/get: one request pushes a flash, the next shows and clears it.
    pub async fn flash_request(&self, id: &str) -> RedisResult<bool> {
        let Some(mut profile) = self.load(id).await? else { return Ok(false) };
        profile.flash.push(FLASH.into());
        self.write(id, &profile).await?;
        let Some(mut profile) = self.load(id).await? else { return Ok(false) };
        let shown = std::mem::take(&mut profile.flash);
        self.write(id, &profile).await?;
        Ok(!shown.is_empty())
    }
}
