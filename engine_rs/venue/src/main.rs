//! `venue`: the trading venue server. `venue --config engine_rs/venue/venue.toml` (or
//! `make venue`) replays the journal, then accepts FIX 4.4 sessions and publishes L2 market
//! data; `venue --config ... --replay-only` recovers, prints the state hash and exits.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use venue::config::Config;
use venue::gateway::{registry, serve, Gateway, Router, RouterSink};
use venue::journal::recover;
use venue::md::Publisher;
use venue::sequencer::{start, Pipeline};

struct Args {
    config: PathBuf,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    md_destination: Option<String>,
    replay_only: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        config: PathBuf::from("engine_rs/venue/venue.toml"),
        data_dir: None,
        listen: None,
        md_destination: None,
        replay_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--config" => a.config = PathBuf::from(value()?),
            "--data-dir" => a.data_dir = Some(PathBuf::from(value()?)),
            "--listen" => a.listen = Some(value()?),
            "--md-destination" => a.md_destination = Some(value()?),
            "--replay-only" => a.replay_only = true,
            "-h" | "--help" => {
                println!(
                    "venue [--config FILE] [--data-dir DIR] [--listen HOST:PORT] \
                     [--md-destination HOST:PORT] [--replay-only]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(a)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("venue: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let a = args()?;
    let mut config = Config::load(&a.config)?;
    if let Some(d) = a.data_dir {
        config.journal.dir = d;
    }
    if let Some(l) = a.listen {
        config.fix.listen = l.parse().map_err(|e| format!("--listen {l}: {e}"))?;
    }
    if let Some(m) = a.md_destination {
        config.market_data.destination = m
            .parse()
            .map_err(|e| format!("--md-destination {m}: {e}"))?;
    }
    let (listings, pricing) = config.listings()?;
    let policy = config.journal.policy()?;
    let (core, journal, rec) = recover(&config.journal.dir, &listings, policy)?;
    println!(
        "venue: recovered seq {} (snapshot {:?}, {} commands replayed, {} torn bytes cut) in {:.3} s; state hash {:016x}",
        core.last_seq(),
        rec.snapshot_seq,
        rec.replayed,
        rec.torn_tail_bytes,
        rec.seconds,
        rec.state_hash
    );
    if a.replay_only {
        return Ok(());
    }
    let publisher = Publisher::new(
        config.market_data.bind,
        config.market_data.destination,
        pricing.iter().map(|p| (p.symbol, p.tick_nanos)).collect(),
        config.snapshot_interval(),
        config.market_data.multicast_ttl,
    )
    .map_err(|e| format!("market data socket: {e}"))?;
    let router = Router::new(config.sessions.iter().map(|s| s.comp_id.clone()).collect());
    let running = start(Pipeline {
        core,
        journal,
        snapshot_every: config.journal.snapshot_every,
        snapshot_on_exit: true,
        ring_size: config.journal.ring_size.next_power_of_two(),
        sink: Box::new(RouterSink(Arc::clone(&router))),
        publisher: Some(publisher),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let gateway = Arc::new(Gateway::new(
        &config,
        &pricing,
        running.producer.clone(),
        running.core_thread.clone(),
    ));
    let pricing_map: Arc<HashMap<_, _>> =
        Arc::new(pricing.iter().map(|p| (p.symbol, p.tick_nanos)).collect());
    let store_dir = config.journal.dir.join("fix");
    runtime.block_on(async {
        let registry = registry(&config, Arc::clone(&gateway), &store_dir).await?;
        let listener = tokio::net::TcpListener::bind(config.fix.listen)
            .await
            .map_err(|e| format!("listen {}: {e}", config.fix.listen))?;
        println!(
            "venue: ready: FIX 4.4 on {} ({} sessions, {} symbols), L2 market data to {}",
            listener.local_addr().map_err(|e| e.to_string())?,
            config.sessions.len(),
            listings.len(),
            config.market_data.destination
        );
        let server = tokio::spawn(serve(
            listener,
            registry,
            Arc::clone(&gateway),
            Arc::clone(&router),
            pricing_map,
            config.fix.max_pending_reports,
        ));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        server.abort();
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok::<(), String>(())
    })?;
    // the sessions' tasks hold the gateway (and its producer): drop them before draining
    runtime.shutdown_timeout(Duration::from_secs(2));
    let stats = std::sync::Arc::clone(&running.stats);
    let counts = (
        gateway.orders_in.load(Relaxed),
        gateway.session_rejects.load(Relaxed),
        router.undeliverable.load(Relaxed),
        router.disconnected_slow.load(Relaxed),
    );
    drop(gateway);
    let summary = running.shutdown();
    println!(
        "venue: {} requests sequenced in {} batches ({} fsyncs), {} session rejects, {} reports \
         sent, {} undeliverable (member logged out), {} sessions cut for not reading, {} L2 \
         datagrams",
        counts.0,
        stats.batches.load(Relaxed),
        stats.fsyncs.load(Relaxed),
        counts.1,
        stats.reports.load(Relaxed),
        counts.2,
        counts.3,
        stats.md_packets.load(Relaxed)
    );
    println!(
        "venue: stopped at seq {}; state hash {:016x}",
        summary.last_seq, summary.state_hash
    );
    Ok(())
}
