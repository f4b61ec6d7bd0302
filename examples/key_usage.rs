//! Whether an encryption key can be retired: counts, over every session in a store, the values
//! each key seals, with a progress bar over the scan.
//!
//! ```sh
//! cargo run --example key_usage -- --url redis://127.0.0.1:6379 --prefix session: --key-id 1
//! ```
//!
//! It needs no key (it reads the key ids stored beside sealed values) and writes nothing. The
//! exit code is 0 when nothing under `--key-id` remains (nor, with `--unsealed`, any unsealed
//! value), 1 when something does or some key under the prefix could not be read (so cannot be
//! counted), 2 on an error. On a Redis Cluster, run it with each primary's URL.

use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use redis_sessions::{Config, SessionStore};

/// Counts the stored values each encryption key seals.
#[derive(Parser)]
struct Args {
    /// The store's Redis (its password never printed).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    url: String,
    /// The store's key prefix.
    #[arg(long, default_value = "session:")]
    prefix: String,
    /// The key id to be retired: exit 1 while anything sealed under it remains.
    #[arg(long)]
    key_id: Option<u16>,
    /// Also exit 1 while any value is stored unsealed (after turning encryption on).
    #[arg(long)]
    unsealed: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("key usage scan failed: {e}");
            ExitCode::from(2)
        }
    }
}

/// Scans and prints the counts; true when nothing asked about remains.
async fn run(args: &Args) -> redis_sessions::Result<bool> {
    let config = Config::from_url(args.url.clone()).with_key_prefix(args.prefix.clone());
    let store = SessionStore::connect(config).await?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let usage = store
        .key_usage(|usage, seen| {
            bar.set_message(format!("{seen} keys, {} sessions read", usage.sessions));
            bar.tick();
        })
        .await?;
    bar.finish_and_clear();
    println!("sessions: {}", usage.sessions);
    for (id, count) in &usage.by_key {
        println!("key {id}: {count} sealed values");
    }
    println!("unsealed: {}", usage.unsealed);
    if usage.unreadable > 0 {
        println!("not readable as sessions (skipped): {}", usage.unreadable);
    }
    let key_clear = args.key_id.is_none_or(|id| usage.uses(id) == 0);
    Ok(key_clear && (!args.unsealed || usage.unsealed == 0) && usage.unreadable == 0)
}
