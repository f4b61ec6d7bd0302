//! The Redis the benchmark runs against, and the counters it reads from it.

use std::collections::HashMap;
use std::process::Command;

use redis_sessions::test_server::TestServer;

/// A redis-server of the benchmark's own (appendonly yes, everysec), stopped on drop; with
/// `hash-max-listpack-value 1024` (docs/operations.md) unless `server_defaults`.
pub fn own_server(server_defaults: bool) -> std::io::Result<TestServer> {
    let mut builder = TestServer::builder()
        .args(["--appendonly", "yes", "--appendfsync", "everysec"])
        // An automatic rewrite would shrink the AOF mid-round and spoil AOF bytes per request.
        .args(["--auto-aof-rewrite-percentage", "0"]);
    if !server_defaults {
        builder = builder.args(["--hash-max-listpack-value", "1024"]);
    }
    builder.start()
}

/// The server's counters at one moment.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub commands: f64,
    pub cpu_seconds: f64,
    pub aof_bytes: f64,
    /// AOF rewrites so far: one inside a round makes its AOF byte count meaningless.
    pub aof_rewrites: f64,
    pub used_memory: f64,
    pub usec: HashMap<String, f64>,
}

impl Counters {
    pub async fn read(conn: &mut redis::aio::MultiplexedConnection) -> redis::RedisResult<Self> {
        let info: String = redis::cmd("INFO").arg("everything").query_async(conn).await?;
        let mut counters = Counters::default();
        for line in info.lines() {
            let Some((name, value)) = line.split_once(':') else { continue };
            let number = || value.trim().parse::<f64>().unwrap_or(0.0);
            match name {
                "total_commands_processed" => counters.commands = number(),
                "used_cpu_sys" | "used_cpu_user" => counters.cpu_seconds += number(),
                "aof_current_size" => counters.aof_bytes = number(),
                "aof_rewrites" => counters.aof_rewrites = number(),
                "used_memory" => counters.used_memory = number(),
                _ => {
                    if let Some(command) = name.strip_prefix("cmdstat_") {
                        let usec = value.split(',').find_map(|f| f.strip_prefix("usec="));
                        let usec = usec.and_then(|u| u.parse().ok()).unwrap_or(0.0);
                        counters.usec.insert(command.to_owned(), usec);
                    }
                }
            }
        }
        Ok(counters)
    }

    /// Adds what changed between `before` and `after` to these totals.
    pub fn add_delta(&mut self, before: &Counters, after: &Counters) {
        self.commands += after.commands - before.commands;
        self.cpu_seconds += after.cpu_seconds - before.cpu_seconds;
        self.aof_bytes += after.aof_bytes - before.aof_bytes;
        self.aof_rewrites += after.aof_rewrites - before.aof_rewrites;
        for (name, usec) in &after.usec {
            *self.usec.entry(name.clone()).or_default() +=
                usec - before.usec.get(name).copied().unwrap_or(0.0);
        }
    }

    /// Time Redis spent per command between `earlier` and `self`, largest first (µs).
    pub fn usec_since(&self, earlier: &Counters) -> Vec<(String, f64)> {
        let mut spent: Vec<(String, f64)> = self
            .usec
            .iter()
            .map(|(name, usec)| {
                (name.clone(), usec - earlier.usec.get(name).copied().unwrap_or(0.0))
            })
            .filter(|(_, usec)| *usec > 0.0)
            .collect();
        spent.sort_by(|a, b| b.1.total_cmp(&a.1));
        spent
    }
}

/// This process's CPU time (user + system), from /proc/self/stat.
pub fn client_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0 // utime, stime; USER_HZ is 100 on Linux
}

/// redis-benchmark running `args` with `clients` connections: requests per second.
pub fn redis_benchmark(port: u16, clients: usize, requests: usize, args: &[&str]) -> Option<f64> {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c", &clients.to_string()])
        .args(["-n", &requests.to_string(), "--csv"])
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let row = text.lines().nth(1)?;
    row.split(',').nth(1)?.trim_matches('"').parse().ok()
}
