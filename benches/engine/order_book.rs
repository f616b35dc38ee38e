//! Criterion suites of the order book: `cargo bench` (from the repository root), or
//! `cargo bench -p engine_bench --bench order_book -- <filter>`.
//!
//! Every case runs on three books through the adapters of `engine_bench`: this engine
//! (`engine`), the reference model (`reference`) and the `orderbook-rs` crate
//! (`orderbook_rs`). Book construction and the undo of each measured operation (cancelling
//! what an insert added, re-adding what a cancel or a fill removed) happen outside the timed
//! section: `iter_custom` times a batch of K identical-kind operations between two clock
//! reads, then restores the book untimed, so the book stays in the same steady state.
//! After the run, a table of medians (from Criterion's own estimates) is printed beside the
//! seed design's figures and the targets.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use criterion::{measurement::WallTime, BenchmarkGroup, Criterion, Throughput};
use engine_bench::{
    gen_stream, run_ops, Bench, Engine, Peer, Reference, Rng, Stream, StreamSpec, MID,
};
use engine_rs::Side;

/// Room for every book of the suite (`max_orders` of the engine books: sizes the engine's
/// order arena and id table). `ENGINE_BENCH_MAX_ORDERS` overrides it for experiments.
const DEFAULT_MAX_ORDERS: usize = 1 << 16;

fn max_orders() -> usize {
    static M: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *M.get_or_init(|| {
        std::env::var("ENGINE_BENCH_MAX_ORDERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_ORDERS)
    })
}
/// Levels per side of the standard book, 2 ticks apart (the odd gaps are free levels).
const LEVELS: i64 = 100;
/// Orders per level of the standard book.
const PER_LEVEL: usize = 4;
const QTY: u64 = 10;
/// Operations timed per batch (between two clock reads).
const BATCH: usize = 64;

#[derive(Clone, Copy)]
struct Resting {
    id: u64,
    side: Side,
    price: i64,
    qty: u64,
}

/// Fresh order ids for one book.
struct Ids(u64);
impl Ids {
    fn next(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

/// Bids at MID-1, MID-3, ..., asks at MID+1, MID+3, ...: `LEVELS` levels a side,
/// `per_level` orders of `QTY` each (the touch levels get `touch` orders).
fn standard_book<B: Bench>(ids: &mut Ids, touch: usize) -> (B, Vec<Resting>) {
    let mut book = B::create(max_orders());
    let mut resting = Vec::new();
    for i in 0..LEVELS {
        let n = if i == 0 { touch } else { PER_LEVEL };
        for side in [Side::Buy, Side::Sell] {
            let price = if side == Side::Buy {
                MID - 1 - 2 * i
            } else {
                MID + 1 + 2 * i
            };
            for _ in 0..n {
                let r = Resting {
                    id: ids.next(),
                    side,
                    price,
                    qty: QTY,
                };
                book.limit(r.id, r.side, r.price, r.qty);
                resting.push(r);
            }
        }
    }
    (book, resting)
}

/// Passive limit at one of the 10 best existing levels; undo: cancel it.
fn insert_existing<B: Bench>(iters: u64) -> Duration {
    let mut ids = Ids(0);
    let (mut book, _) = standard_book::<B>(&mut ids, PER_LEVEL);
    let mut rng = Rng::new(11);
    let targets: Vec<(Side, i64)> = (0..4096)
        .map(|_| {
            let side = rng.side();
            let i = rng.below(10) as i64;
            (
                side,
                if side == Side::Buy {
                    MID - 1 - 2 * i
                } else {
                    MID + 1 + 2 * i
                },
            )
        })
        .collect();
    let mut cursor = 0usize;
    timed_batches(iters, |k| {
        let first = ids.0 + 1;
        let t0 = Instant::now();
        for j in 0..k {
            let (side, price) = targets[(cursor + j) % targets.len()];
            book.limit(first + j as u64, side, price, QTY);
        }
        let dt = t0.elapsed();
        for _ in 0..k {
            book.cancel(ids.next());
        }
        cursor += k;
        dt
    })
}

/// Passive limit on an empty price between existing levels (creates a level); undo: cancel.
fn insert_new_level<B: Bench>(iters: u64) -> Duration {
    let mut ids = Ids(0);
    let (mut book, _) = standard_book::<B>(&mut ids, PER_LEVEL);
    let mut rng = Rng::new(12);
    // the 32 free prices next to the touch on each side, in a shuffled order
    let mut gaps: Vec<(Side, i64)> = (0..(BATCH as i64 / 2))
        .flat_map(|j| [(Side::Buy, MID - 2 - 2 * j), (Side::Sell, MID + 2 + 2 * j)])
        .collect();
    rng.shuffle(&mut gaps);
    timed_batches(iters, |k| {
        let first = ids.0 + 1;
        let t0 = Instant::now();
        for (j, &(side, price)) in gaps[..k].iter().enumerate() {
            book.limit(first + j as u64, side, price, QTY);
        }
        let dt = t0.elapsed();
        for _ in 0..k {
            book.cancel(ids.next());
        }
        dt
    })
}

/// Cancel of a uniformly chosen resting order; undo: re-add it (fresh id, same price).
fn cancel<B: Bench>(iters: u64) -> Duration {
    let mut ids = Ids(0);
    let (mut book, mut resting) = standard_book::<B>(&mut ids, PER_LEVEL);
    let mut rng = Rng::new(13);
    let mut picks: Vec<usize> = Vec::with_capacity(BATCH);
    let mut victims: Vec<u64> = Vec::with_capacity(BATCH);
    timed_batches(iters, |k| {
        // k distinct positions (partial Fisher-Yates over an index list is overkill: retry)
        picks.clear();
        while picks.len() < k {
            let p = rng.below(resting.len() as u64) as usize;
            if !picks.contains(&p) {
                picks.push(p);
            }
        }
        victims.clear();
        victims.extend(picks.iter().map(|&p| resting[p].id));
        let t0 = Instant::now();
        for &id in &victims {
            book.cancel(id);
        }
        let dt = t0.elapsed();
        for &p in &picks {
            let r = &mut resting[p];
            r.id = ids.next();
            book.limit(r.id, r.side, r.price, r.qty);
        }
        dt
    })
}

/// Crossing limit at the opposite touch for exactly one maker's quantity: one fill, the
/// maker leaves, the level stays (64 makers at each touch). Undo: re-add the makers.
fn aggressive_one_fill<B: Bench>(iters: u64) -> Duration {
    let mut ids = Ids(0);
    let (mut book, _) = standard_book::<B>(&mut ids, BATCH);
    timed_batches(iters, |k| {
        let first = ids.0 + 1;
        let t0 = Instant::now();
        for j in 0..k {
            let (side, price) = if j % 2 == 0 {
                (Side::Buy, MID + 1)
            } else {
                (Side::Sell, MID - 1)
            };
            book.limit(first + j as u64, side, price, QTY);
        }
        let dt = t0.elapsed();
        ids.0 += k as u64;
        for j in 0..k {
            // the buys took asks at MID+1, the sells bids at MID-1
            let (side, price) = if j % 2 == 0 {
                (Side::Sell, MID + 1)
            } else {
                (Side::Buy, MID - 1)
            };
            book.limit(ids.next(), side, price, QTY);
        }
        dt
    })
}

/// Market buy sweeping exactly `levels` ask levels of one order each (levels are 1 tick
/// apart; the book holds `levels * rounds` of them, refilled untimed after `rounds` sweeps).
fn market_through<B: Bench>(iters: u64, levels: usize) -> Duration {
    let rounds = (2048 / levels).clamp(2, 32);
    let mut ids = Ids(0);
    let mut book = B::create(max_orders());
    for i in 0..LEVELS {
        for _ in 0..PER_LEVEL {
            book.limit(ids.next(), Side::Buy, MID - 1 - 2 * i, QTY);
        }
    }
    let fill = |book: &mut B, ids: &mut Ids| {
        for i in 0..(levels * rounds) as i64 {
            book.limit(ids.next(), Side::Sell, MID + 1 + i, QTY);
        }
    };
    fill(&mut book, &mut ids);
    let qty = QTY * levels as u64;
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let k = left.min(rounds as u64);
        let first = ids.0 + 1;
        let t0 = Instant::now();
        for j in 0..k {
            book.market(first + j, Side::Buy, qty);
        }
        total += t0.elapsed();
        ids.0 += k;
        left -= k;
        // top the ask side back up to levels * rounds levels
        if left > 0 || k < rounds as u64 {
            for i in 0..(levels * k as usize) as i64 {
                book.limit(ids.next(), Side::Sell, MID + 1 + i, QTY);
            }
        }
    }
    black_box(book.best_ask());
    total
}

/// The seed's mixed workload: 1000 operations of the mixed stream on a book of 1000 orders.
fn mixed<B: Bench>(iters: u64, stream: &Stream) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut book = B::create(max_orders());
        run_ops(&mut book, &stream.setup);
        let t0 = Instant::now();
        run_ops(&mut book, &stream.ops);
        total += t0.elapsed();
        black_box(book.best_bid());
        drop(book);
    }
    total
}

/// Runs `iters` operations in batches of at most `BATCH`; `batch(k)` returns the time of k.
fn timed_batches(iters: u64, mut batch: impl FnMut(usize) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let k = left.min(BATCH as u64) as usize;
        total += batch(k);
        left -= k as u64;
    }
    total
}

fn all_books(group: &mut BenchmarkGroup<'_, WallTime>, run: impl Fn(&str, u64) -> Duration) {
    for name in [Engine::NAME, Reference::NAME, Peer::NAME] {
        group.bench_function(name, |b| b.iter_custom(|iters| run(name, iters)));
    }
}

macro_rules! per_book {
    ($f:ident $(, $arg:expr)*) => {
        |name: &str, iters: u64| match name {
            n if n == Engine::NAME => $f::<Engine>(iters $(, $arg)*),
            n if n == Reference::NAME => $f::<Reference>(iters $(, $arg)*),
            _ => $f::<Peer>(iters $(, $arg)*),
        }
    };
}

/// (group, seed median ns, target median ns, ops per iteration)
const CASES: &[(&str, Option<f64>, Option<f64>, u64)] = &[
    ("limit_insert_existing_level", Some(132.0), Some(25.0), 1),
    ("limit_insert_new_level", Some(132.0), Some(25.0), 1),
    ("cancel", Some(71.0), Some(15.0), 1),
    ("aggressive_one_fill", None, Some(30.0), 1),
    ("market_10_levels", Some(84.0), Some(100.0), 1),
    ("market_100_levels", Some(231.0), None, 1),
    ("market_1000_levels", Some(1920.0), None, 1),
    ("mixed_1000_orders", Some(249_000.0), Some(30_000.0), 1000),
];

fn main() {
    let started = SystemTime::now();
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .nresamples(20_000)
        .configure_from_args();

    let stream = gen_stream(StreamSpec {
        seed: 42,
        initial_orders: 1000,
        ops: 1000,
        target_live: 1000,
    });

    for &(name, _, _, per_iter) in CASES {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(per_iter));
        match name {
            "limit_insert_existing_level" => all_books(&mut g, per_book!(insert_existing)),
            "limit_insert_new_level" => all_books(&mut g, per_book!(insert_new_level)),
            "cancel" => all_books(&mut g, per_book!(cancel)),
            "aggressive_one_fill" => all_books(&mut g, per_book!(aggressive_one_fill)),
            "market_10_levels" => all_books(&mut g, per_book!(market_through, 10)),
            "market_100_levels" => all_books(&mut g, per_book!(market_through, 100)),
            "market_1000_levels" => {
                g.sample_size(20);
                all_books(&mut g, per_book!(market_through, 1000))
            }
            "mixed_1000_orders" => {
                g.sample_size(20);
                all_books(&mut g, per_book!(mixed, &stream))
            }
            _ => unreachable!(),
        }
        g.finish();
    }
    c.final_summary();

    if std::env::args().any(|a| a == "--bench") {
        summary(started);
    }
}

/// Criterion's output folder, resolved like Criterion does for `cargo bench`.
fn criterion_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(h);
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t).join("criterion");
    }
    // <target>/<profile>/deps/order_book-<hash>
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(|t| t.join("criterion"))
        .unwrap_or_else(|| "target/criterion".into())
}

/// Median point estimate (ns) of one benchmark, if it ran in this process.
fn median_ns(dir: &Path, group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let path = dir
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let meta = std::fs::metadata(&path).ok()?;
    if meta.modified().ok()? < since {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let at = text.find("\"median\"")?;
    let rest = &text[at..];
    let pe = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let num: String = rest[pe..]
        .chars()
        .skip_while(|c| c.is_whitespace())
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        .collect();
    num.parse().ok()
}

fn summary(since: SystemTime) {
    let dir = criterion_dir();
    let books = [Engine::NAME, Reference::NAME, Peer::NAME];
    println!();
    println!("## Criterion medians (per operation; mixed: per 1000 operations)");
    println!();
    println!("| case | engine | reference | orderbook-rs | seed design | target | reference / engine | orderbook-rs / engine | target met |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for &(group, seed, target, _) in CASES {
        let m: Vec<Option<f64>> = books
            .iter()
            .map(|b| median_ns(&dir, group, b, since))
            .collect();
        if m.iter().all(Option::is_none) {
            continue;
        }
        let cell = |v: Option<f64>| v.map(engine_bench::fmt_ns).unwrap_or_else(|| "—".into());
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.1}x", a / b),
            _ => "—".into(),
        };
        let met = match (m[0], target) {
            (Some(e), Some(t)) => {
                let faster_than_peer = m[2].is_none_or(|p| e < p);
                match (e <= t, faster_than_peer) {
                    (true, true) => "yes".to_string(),
                    (false, _) => format!("no (> {})", engine_bench::fmt_ns(t)),
                    (true, false) => "no (peer faster)".to_string(),
                }
            }
            (Some(e), None) => {
                if m[2].is_none_or(|p| e < p) {
                    "— (faster than peer)".into()
                } else {
                    "no (peer faster)".into()
                }
            }
            _ => "—".into(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            group,
            cell(m[0]),
            cell(m[1]),
            cell(m[2]),
            cell(seed),
            target
                .map(|t| format!("≤ {}", engine_bench::fmt_ns(t)))
                .unwrap_or_else(|| "—".into()),
            ratio(m[1], m[0]),
            ratio(m[2], m[0]),
            met
        );
    }
    println!();
}
