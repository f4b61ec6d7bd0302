//! With `--web` (feature `stateless`): whole requests through the web layer, sessions in Redis
//! against stateless sessions in signed cookies, in alternating rounds on one Redis. Each
//! request goes through an axum router in this process (no socket), with the cookie a browser
//! would send; a tenth of them change an attribute, the rest read two. Reported: requests/s,
//! latency percentiles, Redis commands and CPU per request, and the bytes of `Set-Cookie` per
//! response and of the cookie the browser sends back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use hdrhistogram::Histogram;
use http::{Request, Response};
use rand::{Rng, SeedableRng};
use redis_sessions::stateless::{JwtKey, StatelessSessions};
use redis_sessions::web::{CookieConfig, SessionLayer, WebSession};
use redis_sessions::{Config, SessionStore};
use tower_service::Service;

use crate::server::Counters;
use crate::Args;

/// The handlers: a page that reads two attributes, and a form that changes one.
fn routes(layer: SessionLayer) -> Router {
    async fn read(session: WebSession) -> String {
        let user: Option<String> = session.get("user").await.expect("get");
        let csrf: Option<String> = session.get("csrf").await.expect("get");
        format!("{user:?} {}", csrf.map_or(0, |c| c.len()))
    }
    async fn change(session: WebSession) -> &'static str {
        let n: u64 = session.get("visits").await.expect("get").unwrap_or(0);
        session.insert("visits", &(n + 1)).await.expect("insert");
        "ok"
    }
    async fn start(session: WebSession) -> &'static str {
        session.insert("user", "user-4711").await.expect("insert");
        session.insert("csrf", &"c".repeat(43)).await.expect("insert");
        session.insert("cart", &["Darjeeling", "Sencha", "Earl Grey"]).await.expect("insert");
        "ok"
    }
    let cookie = CookieConfig::default().with_secure(false);
    let router = Router::new().route("/", get(read)).route("/change", post(change));
    router.route("/start", post(start)).layer(layer.with_cookie(cookie))
}

/// One stack: its router and each simulated browser's cookie.
struct Stack {
    router: Router,
    cookies: Arc<Vec<Mutex<String>>>,
    latency: Histogram<u64>,
    elapsed: Duration,
    redis: Counters,
    set_cookie_bytes: Arc<AtomicU64>,
    cookie_bytes: Arc<AtomicU64>,
}

async fn call(router: &Router, method: &str, path: &str, cookie: &str) -> Response<Body> {
    let mut request = Request::builder().method(method).uri(path);
    if !cookie.is_empty() {
        request = request.header("cookie", format!("session={cookie}"));
    }
    let request = request.body(Body::empty()).expect("request");
    router.clone().call(request).await.expect("infallible")
}

/// The new cookie a response sets, if any.
fn set_cookie(response: &Response<Body>) -> Option<String> {
    let value = response.headers().get("set-cookie")?.to_str().ok()?;
    value.split(';').next()?.split_once('=').map(|(_, v)| v.to_owned())
}

impl Stack {
    async fn new(layer: SessionLayer, browsers: usize) -> Stack {
        let router = routes(layer);
        let mut cookies = Vec::with_capacity(browsers);
        for _ in 0..browsers {
            let response = call(&router, "POST", "/start", "").await;
            cookies.push(Mutex::new(set_cookie(&response).expect("a session cookie")));
        }
        Stack {
            router,
            cookies: Arc::new(cookies),
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram"),
            elapsed: Duration::ZERO,
            redis: Counters::default(),
            set_cookie_bytes: Arc::default(),
            cookie_bytes: Arc::default(),
        }
    }

    /// `requests` requests over `concurrency` tasks, the same plan for every stack.
    async fn round(&mut self, round: u64, requests: u64, args: &Args, conn: &mut Conn) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(round);
        let browsers = self.cookies.len();
        let plan: Arc<[(bool, usize)]> = (0..requests)
            .map(|_| {
                (rng.random_range(0.0..100.0) < args.save_percent, rng.random_range(0..browsers))
            })
            .collect();
        let before = Counters::read(conn).await.expect("INFO");
        let (next, started) = (Arc::new(AtomicU64::new(0)), Instant::now());
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|_| {
                let (router, cookies, plan, next) =
                    (self.router.clone(), self.cookies.clone(), plan.clone(), next.clone());
                let (set_bytes, sent_bytes) =
                    (self.set_cookie_bytes.clone(), self.cookie_bytes.clone());
                tokio::spawn(async move {
                    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
                    while let Some(&(change, slot)) =
                        plan.get(next.fetch_add(1, Ordering::Relaxed) as usize)
                    {
                        let cookie = cookies[slot].lock().expect("cookie").clone();
                        sent_bytes.fetch_add(cookie.len() as u64, Ordering::Relaxed);
                        let (method, path) =
                            if change { ("POST", "/change") } else { ("GET", "/") };
                        let start = Instant::now();
                        let response = call(&router, method, path, &cookie).await;
                        let _ = histogram.record(start.elapsed().as_micros().max(1) as u64);
                        assert!(response.status().is_success(), "{}", response.status());
                        if let Some(new) = set_cookie(&response) {
                            set_bytes.fetch_add(new.len() as u64, Ordering::Relaxed);
                            *cookies[slot].lock().expect("cookie") = new;
                        }
                    }
                    histogram
                })
            })
            .collect();
        for task in tasks {
            self.latency.add(task.await.expect("task")).expect("merge");
        }
        self.elapsed += started.elapsed();
        let after = Counters::read(conn).await.expect("INFO");
        self.redis.add_delta(&before, &after);
    }
}

type Conn = redis::aio::MultiplexedConnection;

/// Runs both stacks in alternating rounds and prints a Markdown table.
pub async fn run(url: &str, args: &Args, conn: &mut Conn) {
    let config = Config::from_url(url).with_pool_max_size(args.pool);
    let store = SessionStore::connect(config.clone().with_key_prefix("web:")).await.expect("store");
    let cookie_store = SessionStore::connect(config.with_key_prefix("jwt:")).await.expect("store");
    let key = JwtKey::hs256("bench", &rand::random::<[u8; 32]>()).expect("key");
    let stateless = StatelessSessions::new(cookie_store, key).expect("stateless");
    stateless.ready().await.expect("the revocation feed");
    let browsers = args.sessions.min(10_000);
    let mut stacks = [
        Stack::new(SessionLayer::new(store), browsers).await,
        Stack::new(SessionLayer::stateless(stateless), browsers).await,
    ];
    let rounds = args.rounds.max(1);
    let per_round = args.cycles / rounds;
    for number in 0..rounds {
        // ABBA, as the store benchmark does.
        let order: [usize; 2] = if number % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            stacks[i].round(number, per_round, args, conn).await;
        }
    }
    let requests = (per_round * rounds) as f64;
    println!(
        "| {} requests, {} browsers, {}% change | in Redis | stateless | stateless / in Redis |",
        per_round * rounds,
        browsers,
        args.save_percent
    );
    println!("|---|---|---|---|");
    let row = |name: &str, f: &dyn Fn(&Stack) -> f64, digits: usize| {
        let (a, b) = (f(&stacks[0]), f(&stacks[1]));
        let ratio = if a > 0.0 { format!("{:.2}x", b / a) } else { "-".to_owned() };
        println!("| {name} | {a:.digits$} | {b:.digits$} | {ratio} |");
    };
    row("requests/s", &|s| requests / s.elapsed.as_secs_f64(), 0);
    row("p50 ms", &|s| s.latency.value_at_quantile(0.5) as f64 / 1000.0, 3);
    row("p99 ms", &|s| s.latency.value_at_quantile(0.99) as f64 / 1000.0, 3);
    row("Redis commands / request", &|s| s.redis.commands / requests, 3);
    row("Redis CPU µs / request", &|s| s.redis.cpu_seconds * 1e6 / requests, 2);
    row(
        "cookie bytes sent / request",
        &|s| s.cookie_bytes.load(Ordering::Relaxed) as f64 / requests,
        0,
    );
    row(
        "Set-Cookie bytes / response",
        &|s| s.set_cookie_bytes.load(Ordering::Relaxed) as f64 / requests,
        1,
    );
}
