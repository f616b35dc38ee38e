//! The venue under load, and the same stream straight into engine_rs beside it.
//!
//! `cargo build --release -p venue && cargo run --release -p engine_bench --bin venue_load
//!  [-- --orders N --latency-orders N --replay N --sessions 1,4]` (or `make bench-venue`)
//!
//! The stream is engine_bench's mixed stream (60% passive limits, 25% cancels, 10% market/IOC,
//! 5% FOK) on one symbol. Over FIX (IronFix initiators on 127.0.0.1 against the release venue
//! binary, group commit on):
//! - round trip: one session, one order at a time, NewOrderSingle sent -> first execution
//!   report for it received, HDR histogram (us);
//! - throughput: 1 and 4 sessions, each keeping up to 512 requests in flight; requests/s until
//!   every request is answered; L2 incrementals received per second by a subscriber.
//!
//! In process: the same stream straight into engine_rs::Engine, through the venue core, and
//! through journal + core (the core thread's work, fsync per batch of 512 and no fsync); then the
//! replay of a journal of `--replay` commands (default 10M) to the same state hash.

use async_trait::async_trait;
use engine_bench::{gen_stream, Op, StreamSpec, MAX_PRICE, MIN_PRICE};
use hdrhistogram::Histogram;
use ironfix_core::message::{MsgType, RawMessage};
use ironfix_core::types::CompId;
use ironfix_engine::application::{Application, RejectReason, SessionId};
use ironfix_engine::{Connection, Initiator, OutboundMessage};
use ironfix_session::SessionConfig;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use venue::command::{ClOrdId, Command, Kind, OrdType, Symbol, Tif};
use venue::config::from_ticks;
use venue::core::{Listing, Output, VenueCore};
use venue::journal::{recover, FsyncPolicy};
use venue::md::Subscriber;

const TICK_NANOS: u64 = 10_000_000;

struct Args {
    orders: usize,
    latency_orders: usize,
    replay: usize,
    sessions: Vec<usize>,
}

fn args() -> Args {
    let mut a = Args {
        orders: 200_000,
        latency_orders: 20_000,
        replay: 10_000_000,
        sessions: vec![1, 4],
    };
    let mut it = std::env::args().skip(1);
    while let Some(f) = it.next() {
        let v = it.next().unwrap_or_default();
        match f.as_str() {
            "--orders" => a.orders = v.parse().expect("--orders N"),
            "--latency-orders" => a.latency_orders = v.parse().expect("--latency-orders N"),
            "--replay" => a.replay = v.parse().expect("--replay N"),
            "--sessions" => a.sessions = v.split(',').map(|s| s.parse().expect("N,N")).collect(),
            _ => panic!("unknown argument {f}"),
        }
    }
    a
}

fn listing(max_orders: usize) -> Listing {
    Listing {
        symbol: Symbol::new("BENCH").unwrap(),
        min_price: MIN_PRICE,
        max_price: MAX_PRICE,
        max_orders,
    }
}

/// The venue command of a stream operation; `k` names it (ClOrdID `k<k>`), orders are `o<id>`.
fn command(op: &Op, k: usize, session: u16) -> Command {
    let side = if op.side == 0 {
        engine_rs::Side::Buy
    } else {
        engine_rs::Side::Sell
    };
    let mut c = Command {
        kind: Kind::New,
        session,
        side,
        price: op.price,
        qty: op.qty as u64,
        symbol: Symbol::new("BENCH").unwrap(),
        cl_ord_id: ClOrdId::new(&format!("o{}", op.id)).unwrap(),
        ..Command::default()
    };
    match op.kind {
        Op::CANCEL => {
            c.kind = Kind::Cancel;
            c.cl_ord_id = ClOrdId::new(&format!("c{k}")).unwrap();
            c.orig_cl_ord_id = ClOrdId::new(&format!("o{}", op.id)).unwrap();
        }
        Op::MARKET => {
            c.ord_type = OrdType::Market;
            c.price = 0;
        }
        Op::IOC => c.tif = Tif::Ioc,
        Op::FOK => c.tif = Tif::Fok,
        _ => {}
    }
    c
}

// ---- in process ----------------------------------------------------------------------------

fn in_process(ops: &[Op], setup: &[Op], max_orders: usize) {
    use engine_rs::MatchingBook;
    let all: Vec<Op> = setup.iter().chain(ops).copied().collect();
    // engine_rs straight
    let mut book = engine_rs::OrderBook::new(engine_rs::BookConfig {
        min_price: MIN_PRICE,
        max_price: MAX_PRICE,
        max_orders,
    });
    let mut ev = Vec::with_capacity(1 << 12);
    let t = Instant::now();
    for op in &all {
        ev.clear();
        let side = if op.side == 0 {
            engine_rs::Side::Buy
        } else {
            engine_rs::Side::Sell
        };
        let order_type = match op.kind {
            Op::MARKET => engine_rs::OrderType::Market,
            Op::IOC => engine_rs::OrderType::Ioc,
            Op::FOK => engine_rs::OrderType::Fok,
            _ => engine_rs::OrderType::Limit,
        };
        if op.kind == Op::CANCEL {
            book.cancel(op.id, &mut ev);
        } else {
            let o = engine_rs::NewOrder {
                id: op.id,
                side,
                order_type,
                price: op.price,
                qty: op.qty as u64,
            };
            book.submit(o, &mut ev);
        }
    }
    let engine_ns = t.elapsed().as_nanos() as f64 / all.len() as f64;
    let commands: Vec<Command> = all
        .iter()
        .enumerate()
        .map(|(k, op)| command(op, k, 0))
        .collect();
    // the venue core (reports, ClOrdID maps, L2 changes)
    let mut core = VenueCore::new(&[listing(max_orders)]);
    let mut out: Vec<Output> = Vec::with_capacity(1 << 12);
    let t = Instant::now();
    for (k, c) in commands.iter().enumerate() {
        out.clear();
        core.apply(k as u64 + 1, c, &mut out);
    }
    let core_ns = t.elapsed().as_nanos() as f64 / commands.len() as f64;
    println!(
        "in process, {} commands of the mixed stream (setup included):",
        commands.len()
    );
    println!("  engine_rs OrderBook straight          {engine_ns:>9.1} ns/command");
    println!(
        "  venue core (reports, ids, L2 changes) {core_ns:>9.1} ns/command ({:.1}x the engine)",
        core_ns / engine_ns
    );
    for (name, policy) in [
        (
            "journal (fsync per batch of 512) + core",
            FsyncPolicy::Batch { max_batch: 512 },
        ),
        (
            "journal (no fsync) + core",
            FsyncPolicy::Never { max_batch: 512 },
        ),
    ] {
        let dir = tempdir("venue-bench-journal");
        let (mut core, mut w, _) = recover(&dir, &[listing(max_orders)], policy).unwrap();
        let t = Instant::now();
        for batch in commands.chunks(512) {
            let first = core.last_seq() + 1;
            for (k, c) in batch.iter().enumerate() {
                w.append(first + k as u64, c);
            }
            w.commit().unwrap();
            for c in batch {
                out.clear();
                core.apply(core.last_seq() + 1, c, &mut out);
            }
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "  {name:<38}{:>9.1} ns/command, {:>10.0} commands/s, {} fsyncs",
            s * 1e9 / commands.len() as f64,
            commands.len() as f64 / s,
            w.fsyncs
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn replay(n: usize) {
    if n == 0 {
        return;
    }
    let stream = gen_stream(StreamSpec {
        seed: 11,
        initial_orders: 5_000,
        ops: n,
        target_live: 5_000,
    });
    let max_orders = stream.max_live * 2 + 1024;
    let dir = tempdir("venue-bench-replay");
    let policy = FsyncPolicy::Never { max_batch: 4096 };
    let (mut core, mut w, _) = recover(&dir, &[listing(max_orders)], policy).unwrap();
    let mut out = Vec::with_capacity(1 << 12);
    let t = Instant::now();
    let total = stream.setup.len() + stream.ops.len();
    for (k, op) in stream.setup.iter().chain(&stream.ops).enumerate() {
        let c = command(op, k, 0);
        let seq = core.last_seq() + 1;
        w.append(seq, &c);
        if k % 4096 == 4095 {
            w.commit().unwrap();
        }
        out.clear();
        core.apply(seq, &c, &mut out);
    }
    w.commit().unwrap();
    let live_hash = core.state_hash();
    let write_s = t.elapsed().as_secs_f64();
    drop((core, w, stream));
    let bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let t = Instant::now();
    let (core, _, rec) = recover(&dir, &[listing(max_orders)], policy).unwrap();
    let replay_s = t.elapsed().as_secs_f64();
    assert_eq!(rec.state_hash, live_hash, "replay reached another state");
    println!(
        "journal of {} commands ({:.2} GB): written and matched in {:.2} s; replayed to the same state hash ({:016x}) in {:.2} s ({:.0} commands/s); {} live orders",
        total,
        bytes as f64 / 1e9,
        write_s,
        rec.state_hash,
        replay_s,
        total as f64 / replay_s,
        core.live_orders()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ---- over FIX --------------------------------------------------------------------------------

struct LoadApp {
    acks: mpsc::UnboundedSender<(usize, Instant)>,
}

#[async_trait]
impl Application for LoadApp {
    async fn on_create(&self, _: &SessionId) {}
    async fn on_logon(&self, _: &SessionId) {}
    async fn on_logout(&self, _: &SessionId) {}
    async fn to_admin(&self, _: &mut OutboundMessage, _: &SessionId) {}
    async fn from_admin(&self, _: &RawMessage<'_>, _: &SessionId) -> Result<(), RejectReason> {
        Ok(())
    }
    async fn to_app(&self, _: &mut OutboundMessage, _: &SessionId) {}
    async fn from_app(&self, m: &RawMessage<'_>, _: &SessionId) -> Result<(), RejectReason> {
        let now = Instant::now();
        if let Some(k) = m
            .get_field_str(11)
            .and_then(|c| c.strip_prefix('k'))
            .and_then(|k| k.parse().ok())
        {
            let _ = self.acks.send((k, now));
        }
        Ok(())
    }
}

/// The FIX message of command `c`, named `k<k>` so its answer can be matched.
fn fix_message(conn: &Connection, c: &Command, k: usize) -> OutboundMessage {
    let (t, side) = (
        match c.kind {
            Kind::Cancel => MsgType::OrderCancelRequest,
            _ => MsgType::NewOrderSingle,
        },
        if c.side == engine_rs::Side::Buy {
            '1'
        } else {
            '2'
        },
    );
    let mut m = conn.acquire(t);
    m.push_str(11, &format!("k{k}"))
        .push_str(55, "BENCH")
        .push_char(54, side);
    if c.kind == Kind::Cancel {
        // the order's ClOrdID is k<index of its NewOrderSingle in this session>
        m.push_str(41, c.orig_cl_ord_id.as_str());
    } else {
        m.push_uint(38, c.qty)
            .push_char(40, c.ord_type as u8 as char)
            .push_char(59, c.tif as u8 as char);
        if c.ord_type == OrdType::Limit {
            m.push_str(44, &from_ticks(c.price as i128, TICK_NANOS));
        }
    }
    m.push_str(60, &venue::gateway::utc_timestamp());
    m
}

struct Server {
    child: Child,
    port: u16,
    md: std::net::UdpSocket,
}

fn start_venue(dir: &Path, sessions: usize, max_orders: usize, fsync: &str) -> Server {
    let store_sync = std::env::var("VENUE_BENCH_STORE_SYNC").unwrap_or_else(|_| "never".into());
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/venue");
    assert!(
        binary.exists(),
        "build the venue first: cargo build --release -p venue"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let md = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut cfg = format!(
        "[fix]\nlisten = \"127.0.0.1:{port}\"\nsession_store_sync = \"{store_sync}\"\nmax_pending_reports = 1000000\n\
         [journal]\ndir = \"{}\"\nfsync = \"{fsync}\"\nmax_batch = 512\nsnapshot_every = 0\n\
         [market_data]\ndestination = \"{}\"\nsnapshot_ms = 1000\n",
        dir.join("data").display(),
        md.local_addr().unwrap()
    );
    for s in 0..sessions {
        cfg += &format!("[[sessions]]\ncomp_id = \"LOAD{s}\"\n");
    }
    cfg += &format!(
        "[[symbols]]\nsymbol = \"BENCH\"\nmin_price = \"{}\"\nmax_price = \"{}\"\nmax_orders = {max_orders}\n",
        from_ticks(MIN_PRICE as i128, TICK_NANOS),
        from_ticks(MAX_PRICE as i128, TICK_NANOS)
    );
    std::fs::write(dir.join("venue.toml"), cfg).unwrap();
    let mut child = Proc::new(binary)
        .args(["--config", dir.join("venue.toml").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("venue: ready") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Server { child, port, md }
}

/// CPU seconds per thread name of the venue process (from /proc), summed by name.
fn thread_cpu(pid: u32) -> Vec<(String, f64)> {
    let tick = 100.0; // USER_HZ
    let mut by: std::collections::BTreeMap<String, f64> = Default::default();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let name = stat[open + 1..close].to_string();
            let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
            let cpu = f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
                + f.get(12).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0);
            *by.entry(name).or_default() += cpu / tick;
        }
    }
    by.into_iter().collect()
}

fn stop_venue(mut s: Server) -> Vec<(String, f64)> {
    let cpu = thread_cpu(s.child.id());
    let _ = Proc::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status();
    let _ = s.child.wait();
    cpu
}

fn cpu_line(cpu: &[(String, f64)], secs: f64) -> String {
    cpu.iter()
        .filter(|(_, c)| *c > 0.0)
        .map(|(n, c)| format!("{n} {:.0}%", 100.0 * c / secs))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn connect(port: u16, s: usize) -> (Connection, mpsc::UnboundedReceiver<(usize, Instant)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let config = SessionConfig::new(
        CompId::new(&format!("LOAD{s}")).unwrap(),
        CompId::new("VENUE").unwrap(),
        "FIX.4.4",
    )
    .with_heartbeat_interval(Duration::from_secs(30))
    .with_reset_on_logon(true);
    let init = Initiator::new(config, Arc::new(LoadApp { acks: tx }));
    let conn = init.connect(("127.0.0.1", port)).await.expect("logon");
    (conn, rx)
}

/// Session `s`'s share of the stream, renamed so cancels name that session's orders.
fn session_commands(ops: &[Op], s: usize, n: usize) -> Vec<Command> {
    let mine: Vec<&Op> = ops.iter().filter(|op| op.id as usize % n == s).collect();
    let mut index_of = std::collections::HashMap::new();
    mine.iter()
        .enumerate()
        .map(|(k, op)| {
            let mut c = command(op, k, 0);
            if op.kind == Op::CANCEL {
                let target = index_of.get(&op.id).copied().unwrap_or(usize::MAX);
                c.orig_cl_ord_id = ClOrdId::new(&format!("k{target}")).unwrap();
            } else {
                index_of.insert(op.id, k);
            }
            c
        })
        .collect()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn over_fix(a: &Args) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = gen_stream(StreamSpec {
        seed: 7,
        initial_orders: 5_000,
        ops: a.orders.max(a.latency_orders),
        target_live: 5_000,
    });
    let max_orders = stream.max_live * 4 + 100_000;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "over FIX on 127.0.0.1 ({cores} cores; load average before: {})",
        loadavg()
    );
    println!("  waits: venue core/report/market-data threads spin 64, yield 64, then park until unparked by their producer; tokio (2 workers) parks; load generator 1 tokio thread");

    // round trip, one at a time
    for fsync in ["batch", "none"] {
        let dir = tempdir("venue-bench-rtt");
        let server = start_venue(&dir, 1, max_orders, fsync);
        let port = server.port;
        let mut hist = Histogram::<u64>::new(3).unwrap();
        rt.block_on(async {
            let (conn, mut rx) = connect(port, 0).await;
            let all: Vec<Op> = stream
                .setup
                .iter()
                .chain(&stream.ops[..a.latency_orders])
                .copied()
                .collect();
            let commands = session_commands(&all, 0, 1);
            let warm = stream.setup.len() + a.latency_orders / 10;
            for (k, c) in commands.iter().enumerate() {
                let t0 = Instant::now();
                conn.send(fix_message(&conn, c, k)).await.unwrap();
                loop {
                    let (j, at) = rx.recv().await.unwrap();
                    if j == k {
                        if k >= warm {
                            hist.record(at.duration_since(t0).as_nanos() as u64)
                                .unwrap();
                        }
                        break;
                    }
                }
            }
            let _ = conn.logout().await;
        });
        stop_venue(server);
        println!(
        "  round trip, journal fsync {fsync:<5} (order -> its first execution report), {} orders after {} warm-up: p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us",
        hist.len(),
        a.latency_orders / 10,
        hist.value_at_quantile(0.5) as f64 / 1e3,
        hist.value_at_quantile(0.99) as f64 / 1e3,
        hist.value_at_quantile(0.999) as f64 / 1e3,
        hist.max() as f64 / 1e3
    );
    }

    for &n in &a.sessions {
        let dir = tempdir("venue-bench-tput");
        let server = start_venue(&dir, n, max_orders, "batch");
        let port = server.port;
        let md = server.md.try_clone().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let incrementals = Arc::new(AtomicU64::new(0));
        let sub = {
            let (stop, inc) = (Arc::clone(&stop), Arc::clone(&incrementals));
            std::thread::spawn(move || {
                let mut s = Subscriber::new();
                s.run(&md, Duration::from_millis(20), |s| {
                    inc.store(s.stats.incrementals, Ordering::Relaxed);
                    stop.load(Ordering::Relaxed)
                })
                .unwrap();
            })
        };
        let all: Vec<Op> = stream
            .setup
            .iter()
            .chain(&stream.ops[..a.orders])
            .copied()
            .collect();
        let ops = &all[..];
        let (total, secs) = rt.block_on(async {
            let mut conns = Vec::new();
            for s in 0..n {
                conns.push(connect(port, s).await);
            }
            let t0 = Instant::now();
            let mut tasks = Vec::new();
            for (s, (conn, mut rx)) in conns.into_iter().enumerate() {
                let commands = session_commands(ops, s, n);
                tasks.push(tokio::spawn(async move {
                    let mut acked = vec![false; commands.len()];
                    let (mut sent, mut done) = (0usize, 0usize);
                    while done < commands.len() {
                        while sent < commands.len() && sent - done < 512 {
                            conn.send(fix_message(&conn, &commands[sent], sent))
                                .await
                                .unwrap();
                            sent += 1;
                        }
                        let (j, _) = rx.recv().await.unwrap();
                        if j < acked.len() && !acked[j] {
                            acked[j] = true;
                            done += 1;
                        }
                        while let Ok((j, _)) = rx.try_recv() {
                            if j < acked.len() && !acked[j] {
                                acked[j] = true;
                                done += 1;
                            }
                        }
                    }
                    let _ = conn.logout().await;
                    commands.len()
                }));
            }
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap();
            }
            (total, t0.elapsed().as_secs_f64())
        });
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        sub.join().unwrap();
        let cpu = stop_venue(server);
        println!(
            "  {n} session(s): {total} requests answered in {secs:.2} s = {:.0} requests/s (group commit on); {:.0} L2 incrementals/s received; load average after: {}",
            total as f64 / secs,
            incrementals.load(Ordering::Relaxed) as f64 / secs,
            loadavg()
        );
        println!(
            "    venue CPU by thread over the run: {}",
            cpu_line(&cpu, secs)
        );
    }
}

fn main() {
    let a = args();
    let stream = gen_stream(StreamSpec {
        seed: 7,
        initial_orders: 5_000,
        ops: a.orders,
        target_live: 5_000,
    });
    in_process(&stream.ops, &stream.setup, stream.max_live * 4 + 100_000);
    over_fix(&a);
    replay(a.replay);
}
