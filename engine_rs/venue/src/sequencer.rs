//! The LMAX pattern on the `disruptor` crate. Gateways publish [`InSlot`]s into the input ring
//! (multi-producer); one core thread owns the [`VenueCore`]: it takes what the ring holds (up to
//! the journal's `max_batch`), appends it to the journal and commits (one fsync per batch),
//! then applies each command and publishes the outputs into the output ring (single producer),
//! which two threads read in parallel: the report dispatcher ([`ReportSink`]) and the
//! market-data [`Publisher`].
//!
//! Waiting: every consumer uses [`Backoff`] (spin 64, yield 64, then park up to 1 ms) and every
//! producer unparks its consumer after publishing: on a 2-core machine busy-spinning consumers
//! starve the gateway and the clients, so idle threads sleep, and are woken as soon as there is
//! work (an unpark of a running thread is one atomic swap).

use crate::command::Command;
use crate::core::{Output, Report, VenueCore};
use crate::journal::JournalWriter;
use crate::md::Publisher;
use disruptor::{
    build_multi_producer, build_single_producer, BusySpinWithSpinLoopHint, MultiProducer, Polling,
    Producer, SingleConsumerBarrier,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// One input ring slot: a command and the gateway's receive time (monotonic ns, for latency).
#[derive(Clone, Copy, Debug, Default)]
pub struct InSlot {
    pub command: Command,
    pub stamp_ns: u64,
}

/// One output ring slot.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutSlot {
    pub output: Option<Output>,
    pub stamp_ns: u64,
}

/// Where execution reports go (the FIX sessions, or a benchmark's counter).
pub trait ReportSink: Send + 'static {
    fn on_report(&mut self, report: &Report, stamp_ns: u64);
    /// End of what the output ring held: push anything buffered.
    fn flush(&mut self) {}
}

/// Spin 64 times, yield 64 times, then park (woken by the producer's unpark, or after 1 ms);
/// reset after work.
#[derive(Default)]
pub struct Backoff(u32);

impl Backoff {
    pub fn reset(&mut self) {
        self.0 = 0;
    }

    pub fn wait(&mut self) {
        if self.0 < 64 {
            std::hint::spin_loop();
        } else if self.0 < 128 {
            std::thread::yield_now();
        } else {
            std::thread::park_timeout(Duration::from_millis(1));
        }
        self.0 = self.0.saturating_add(1);
    }
}

/// Counters the threads update (relaxed; read for reports and benchmarks).
#[derive(Debug, Default)]
pub struct Stats {
    pub commands: AtomicU64,
    pub batches: AtomicU64,
    pub fsyncs: AtomicU64,
    pub reports: AtomicU64,
    pub md_packets: AtomicU64,
    pub md_incrementals: AtomicU64,
    pub last_seq: AtomicU64,
}

/// What the core thread leaves when the input ring shuts down.
#[derive(Debug, Clone, Copy)]
pub struct CoreSummary {
    pub last_seq: u64,
    pub state_hash: u64,
}

pub type InputProducer = MultiProducer<InSlot, SingleConsumerBarrier>;

/// The running pipeline. Dropping every clone of `producer` (see [`Running::shutdown`]) drains
/// the rings and stops the threads.
pub struct Running {
    pub producer: InputProducer,
    /// The core thread: unpark it after publishing into the input ring.
    pub core_thread: std::thread::Thread,
    pub stats: Arc<Stats>,
    core: JoinHandle<CoreSummary>,
    others: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting input, lets the core finish what was published (a snapshot is written
    /// if `snapshot_on_exit`), and waits for the output threads.
    pub fn shutdown(self) -> CoreSummary {
        drop(self.producer);
        let summary = self.core.join().expect("core thread");
        for h in self.others {
            h.join().expect("output thread");
        }
        summary
    }
}

pub struct Pipeline {
    pub core: VenueCore,
    pub journal: JournalWriter,
    pub snapshot_every: u64,
    pub snapshot_on_exit: bool,
    pub ring_size: usize,
    pub sink: Box<dyn ReportSink>,
    pub publisher: Option<Publisher>,
}

pub fn start(p: Pipeline) -> Running {
    let stats = Arc::new(Stats::default());
    let (mut in_poller, in_builder) =
        build_multi_producer(p.ring_size, InSlot::default, BusySpinWithSpinLoopHint)
            .new_event_poller();
    let producer = in_builder.build();
    let (mut report_poller, out_builder) =
        build_single_producer(p.ring_size, OutSlot::default, BusySpinWithSpinLoopHint)
            .new_event_poller();
    let (mut md_poller, out_builder) = out_builder.new_event_poller();
    let mut out = out_builder.build();

    let Pipeline {
        mut core,
        mut journal,
        snapshot_every,
        snapshot_on_exit,
        mut sink,
        publisher,
        ..
    } = p;
    let st = Arc::clone(&stats);
    let report_thread = std::thread::Builder::new()
        .name("venue-reports".into())
        .spawn(move || {
            let mut backoff = Backoff::default();
            loop {
                match report_poller.poll() {
                    Ok(mut guard) => {
                        let mut n = 0;
                        for slot in &mut guard {
                            if let Some(Output::Report(r)) = &slot.output {
                                sink.on_report(r, slot.stamp_ns);
                                n += 1;
                            }
                        }
                        drop(guard);
                        sink.flush();
                        st.reports.fetch_add(n, Ordering::Relaxed);
                        backoff.reset();
                    }
                    Err(Polling::NoEvents) => backoff.wait(),
                    Err(Polling::Shutdown) => break,
                }
            }
        })
        .expect("spawn report thread");

    let st = Arc::clone(&stats);
    let md_thread = std::thread::Builder::new()
        .name("venue-md".into())
        .spawn(move || {
            let mut publisher = publisher;
            let mut backoff = Backoff::default();
            loop {
                match md_poller.poll() {
                    Ok(mut guard) => {
                        if let Some(p) = publisher.as_mut() {
                            for slot in &mut guard {
                                if let Some(Output::Level(l)) = &slot.output {
                                    p.on_level(l);
                                }
                            }
                        }
                        drop(guard);
                        if let Some(p) = publisher.as_mut() {
                            p.flush();
                            st.md_packets.store(p.stats.packets, Ordering::Relaxed);
                            st.md_incrementals
                                .store(p.stats.incrementals, Ordering::Relaxed);
                        }
                        backoff.reset();
                    }
                    Err(Polling::NoEvents) => {
                        if let Some(p) = publisher.as_mut() {
                            p.maybe_snapshot(false);
                        }
                        backoff.wait();
                    }
                    Err(Polling::Shutdown) => break,
                }
            }
            if let Some(p) = publisher.as_mut() {
                p.flush();
                p.maybe_snapshot(true);
                st.md_packets.store(p.stats.packets, Ordering::Relaxed);
            }
        })
        .expect("spawn market-data thread");

    let max_batch = journal.policy().max_batch() as u64;
    let st = Arc::clone(&stats);
    let wake = [report_thread.thread().clone(), md_thread.thread().clone()];
    let core_thread = std::thread::Builder::new()
        .name("venue-core".into())
        .spawn(move || {
            let mut batch: Vec<InSlot> = Vec::with_capacity(max_batch as usize);
            let mut outputs: Vec<Output> = Vec::with_capacity(4096);
            let mut backoff = Backoff::default();
            let mut last_snapshot = core.last_seq();
            loop {
                match in_poller.take(max_batch) {
                    Ok(mut guard) => {
                        batch.clear();
                        batch.extend(&mut guard);
                    }
                    Err(Polling::NoEvents) => {
                        backoff.wait();
                        continue;
                    }
                    Err(Polling::Shutdown) => break,
                }
                backoff.reset();
                let first = core.last_seq() + 1;
                for (k, slot) in batch.iter().enumerate() {
                    journal.append(first + k as u64, &slot.command);
                }
                if let Err(e) = journal.commit() {
                    // nothing unjournaled may be matched: stop the venue
                    eprintln!("venue: journal write failed ({e}); stopping before matching");
                    std::process::exit(74);
                }
                for slot in &batch {
                    outputs.clear();
                    core.apply(core.last_seq() + 1, &slot.command, &mut outputs);
                    for o in &outputs {
                        out.publish(|s| {
                            s.output = Some(*o);
                            s.stamp_ns = slot.stamp_ns;
                        });
                    }
                }
                wake.iter().for_each(std::thread::Thread::unpark);
                st.commands.fetch_add(batch.len() as u64, Ordering::Relaxed);
                st.batches.fetch_add(1, Ordering::Relaxed);
                st.fsyncs.store(journal.fsyncs, Ordering::Relaxed);
                st.last_seq.store(core.last_seq(), Ordering::Relaxed);
                if snapshot_every > 0 && core.last_seq() - last_snapshot >= snapshot_every {
                    match journal.snapshot(&core) {
                        Ok(_) => last_snapshot = core.last_seq(),
                        Err(e) => eprintln!("venue: snapshot failed ({e}); the journal goes on"),
                    }
                }
            }
            if snapshot_on_exit && core.last_seq() > last_snapshot {
                if let Err(e) = journal.snapshot(&core) {
                    eprintln!("venue: snapshot at exit failed ({e})");
                }
            }
            drop(out);
            wake.iter().for_each(std::thread::Thread::unpark);
            CoreSummary {
                last_seq: core.last_seq(),
                state_hash: core.state_hash(),
            }
        })
        .expect("spawn core thread");

    Running {
        producer,
        core_thread: core_thread.thread().clone(),
        stats,
        core: core_thread,
        others: vec![report_thread, md_thread],
    }
}

/// Monotonic nanoseconds since the first call in this process (ring stamps and latencies).
pub fn mono_ns() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}
