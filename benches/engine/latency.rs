//! Latency and throughput of the order books over a long deterministic mixed stream.
//!
//! `cargo run --release -p engine_bench --bin latency [-- --ops N --warmup N --peer-ops N
//!  --seed S --no-peer --no-reference]`
//!
//! The stream (see `engine_bench::gen_stream`): about 60% passive limits near the touch, 25%
//! cancels of live orders, 10% market/IOC, 5% FOK, on a book holding about 5,000 orders.
//! For each book:
//! - latency pass: a fresh book, the initial book and the warm-up operations applied
//!   untimed, then every measured operation timed alone with `std::time::Instant` and
//!   recorded in an HDR histogram (ns). The clock's own cost (two back-to-back
//!   `Instant::now()` reads) is measured and printed, never subtracted;
//! - throughput pass (3 runs, median): the same stream with no clock reads inside, one
//!   clock read pair around the whole measured part.

use std::time::Instant;

use engine_bench::{
    fmt_ns, gen_stream, run_ops, thousands, Bench, Engine, Op, Peer, Reference, Stream, StreamSpec,
};
use hdrhistogram::Histogram;

struct Args {
    ops: usize,
    warmup: usize,
    peer_ops: usize,
    seed: u64,
    peer: bool,
    reference: bool,
    engine: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        ops: 10_000_000,
        warmup: 500_000,
        peer_ops: 1_000_000,
        seed: 7,
        peer: true,
        reference: true,
        engine: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> u64 {
            let v = it.next().unwrap_or_else(|| panic!("{name} needs a value"));
            v.replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("bad {name}: {v}"))
        };
        match flag.as_str() {
            "--ops" => a.ops = num("--ops") as usize,
            "--warmup" => a.warmup = num("--warmup") as usize,
            "--peer-ops" => a.peer_ops = num("--peer-ops") as usize,
            "--seed" => a.seed = num("--seed"),
            "--no-peer" => a.peer = false,
            "--no-reference" => a.reference = false,
            // profiling aid: `--only engine|reference|orderbook_rs`
            "--only" => {
                let name = it.next().expect("--only needs a book name");
                a.engine = name == Engine::NAME;
                a.reference = name == Reference::NAME;
                a.peer = name == Peer::NAME;
            }
            "--bench" => {} // passed by `cargo bench`
            "-h" | "--help" => {
                println!(
                    "latency [--ops N (10,000,000)] [--warmup N (500,000)] [--peer-ops N (1,000,000)] \
                     [--seed S (7)] [--no-peer] [--no-reference] [--only engine|reference|orderbook_rs]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a.peer_ops = a.peer_ops.min(a.ops);
    a
}

fn new_hist() -> Histogram<u64> {
    Histogram::<u64>::new(3).expect("histogram")
}

struct Row {
    name: &'static str,
    ops: usize,
    hist: Histogram<u64>,
    by_kind: Vec<Histogram<u64>>,
    ns_per_op: f64,
    state: (usize, Option<i64>, Option<i64>),
}

/// The latency pass then the throughput passes of one book.
#[inline(never)]
fn measure<B: Bench>(stream: &Stream, warmup: usize, ops: usize, throughput_runs: usize) -> Row {
    let (pre, measured) = stream.ops.split_at(warmup);
    let measured = &measured[..ops];
    let max_orders = stream.max_live * 2 + 1024;

    // latency: one op between two clock reads
    let mut hist = new_hist();
    let mut by_kind: Vec<Histogram<u64>> = (0..5).map(|_| new_hist()).collect();
    {
        let mut book = B::create(max_orders);
        run_ops(&mut book, &stream.setup);
        run_ops(&mut book, pre);
        for op in measured {
            let t0 = Instant::now();
            book.apply(op);
            let ns = t0.elapsed().as_nanos() as u64;
            hist.record(ns).expect("record");
            by_kind[op.kind as usize].record(ns).expect("record");
        }
    }

    // throughput: no clock inside the stream
    let mut runs = Vec::new();
    let mut state = (0, None, None);
    for _ in 0..throughput_runs {
        let mut book = B::create(max_orders);
        run_ops(&mut book, &stream.setup);
        run_ops(&mut book, pre);
        let t0 = Instant::now();
        run_ops(&mut book, measured);
        let dt = t0.elapsed();
        runs.push(dt.as_nanos() as f64 / ops as f64);
        state = (book.resting(), book.best_bid(), book.best_ask());
    }
    runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Row {
        name: B::NAME,
        ops,
        hist,
        by_kind,
        ns_per_op: runs[runs.len() / 2],
        state,
    }
}

fn q(h: &Histogram<u64>, quantile: f64) -> u64 {
    h.value_at_quantile(quantile)
}

fn main() {
    let args = parse_args();
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    println!("# order book latency benchmark ({})", date.trim());
    println!();

    let t = Instant::now();
    let stream = gen_stream(StreamSpec {
        seed: args.seed,
        initial_orders: 5_000,
        ops: args.warmup + args.ops,
        target_live: 5_000,
    });
    let mix = stream.mix();
    let total: usize = mix.iter().sum();
    println!(
        "stream: seed {}, initial book {} orders, {} warm-up + {} measured operations, generated in {:.1} s",
        args.seed,
        thousands(stream.setup.len() as u64),
        thousands(args.warmup as u64),
        thousands(args.ops as u64),
        t.elapsed().as_secs_f64()
    );
    let mix_txt: Vec<String> = (0..5)
        .map(|k| {
            format!(
                "{} {:.1}%",
                Op::KIND_NAMES[k],
                100.0 * mix[k] as f64 / total as f64
            )
        })
        .collect();
    println!(
        "mix: {}; most live orders {}; mean spread {:.2} ticks",
        mix_txt.join(", "),
        thousands(stream.max_live as u64),
        stream.mean_spread
    );

    // the clock's own cost: two back-to-back reads, as around each timed op
    let mut clock = new_hist();
    for _ in 0..2_000_000 {
        let t0 = Instant::now();
        let ns = t0.elapsed().as_nanos() as u64;
        clock.record(ns).expect("record");
    }
    println!(
        "timer overhead (Instant::now() + elapsed(), included in every latency figure, not subtracted): \
         p50 {} ns, p99 {} ns, p99.9 {} ns, mean {:.1} ns",
        q(&clock, 0.5),
        q(&clock, 0.99),
        q(&clock, 0.999),
        clock.mean()
    );
    println!();

    let mut rows = Vec::new();
    if args.engine {
        rows.push(measure::<Engine>(&stream, args.warmup, args.ops, 3));
    }
    if args.reference {
        rows.push(measure::<Reference>(&stream, args.warmup, args.ops, 3));
    }
    if args.peer {
        rows.push(measure::<Peer>(&stream, args.warmup, args.peer_ops, 1));
    }

    println!("## per-operation latency (ns, timer included) and amortized throughput");
    println!();
    println!("| book | measured ops | p50 | p95 | p99 | p99.9 | p99.99 | max | mean (timed) | ns/op amortized | ops/s |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {} |",
            r.name,
            thousands(r.ops as u64),
            q(&r.hist, 0.5),
            q(&r.hist, 0.95),
            q(&r.hist, 0.99),
            q(&r.hist, 0.999),
            q(&r.hist, 0.9999),
            r.hist.max(),
            r.hist.mean(),
            r.ns_per_op,
            thousands((1e9 / r.ns_per_op) as u64)
        );
    }
    println!();
    if rows.is_empty() {
        return;
    }
    let ours = &rows[0];
    if rows.len() > 1 && ours.name == Engine::NAME {
        println!("## ratios (other / engine; > 1 means the engine is faster)");
        println!();
        println!("| book | p50 | p99 | p99.9 | p99.99 | ns/op amortized |");
        println!("|---|---:|---:|---:|---:|---:|");
        for r in &rows[1..] {
            let ratio = |quant: f64| q(&r.hist, quant) as f64 / q(&ours.hist, quant).max(1) as f64;
            println!(
                "| {} / engine | {:.1}x | {:.1}x | {:.1}x | {:.1}x | {:.1}x |",
                r.name,
                ratio(0.5),
                ratio(0.99),
                ratio(0.999),
                ratio(0.9999),
                r.ns_per_op / ours.ns_per_op
            );
        }
        println!();
    }

    println!("## latency by operation kind (ns, timer included): p50 / p99 / p99.9");
    println!();
    let head: Vec<&str> = rows.iter().map(|r| r.name).collect();
    println!("| kind | share | {} |", head.join(" | "));
    println!("|---|---:|{}", "---:|".repeat(rows.len()));
    for (k, &count) in mix.iter().enumerate() {
        let cells: Vec<String> = rows
            .iter()
            .map(|r| {
                let h = &r.by_kind[k];
                if h.is_empty() {
                    "—".into()
                } else {
                    format!("{} / {} / {}", q(h, 0.5), q(h, 0.99), q(h, 0.999))
                }
            })
            .collect();
        println!(
            "| {} | {:.1}% | {} |",
            Op::KIND_NAMES[k],
            100.0 * count as f64 / total as f64,
            cells.join(" | ")
        );
    }
    println!();

    println!("final state after the measured stream (resting orders, best bid, best ask):");
    for r in &rows {
        println!(
            "  {:<13} {} ops: {:?}",
            r.name,
            thousands(r.ops as u64),
            r.state
        );
    }
    if rows.len() > 1 && ours.name == Engine::NAME && rows[1].name == Reference::NAME {
        let same = rows[0].state == rows[1].state;
        println!(
            "  engine and reference agree: {}",
            if same { "yes" } else { "NO" }
        );
    }
    if ours.name != Engine::NAME {
        return;
    }
    println!();
    println!(
        "targets: mixed stream ≤ 30 ns/op amortized (≥ 33M ops/s): {} ({:.1} ns/op); p99.9 ≤ 500 ns: {} ({} ns); \
         ≥ 5x faster than the reference: {}",
        if ours.ns_per_op <= 30.0 { "met" } else { "MISSED" },
        ours.ns_per_op,
        if q(&ours.hist, 0.999) <= 500 { "met" } else { "MISSED" },
        q(&ours.hist, 0.999),
        rows.iter()
            .find(|r| r.name == Reference::NAME)
            .map(|r| {
                let x = r.ns_per_op / ours.ns_per_op;
                format!("{} ({:.1}x)", if x >= 5.0 { "met" } else { "MISSED" }, x)
            })
            .unwrap_or_else(|| "not run".into())
    );
    let _ = fmt_ns;
}
