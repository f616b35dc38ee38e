//! L2 market data: the publisher keeps a replica of every book's levels from the core's
//! [`LevelChange`]s, sends one SBE incremental per symbol per command (rptSeq +1 per message,
//! per symbol) and full snapshots of every symbol periodically, over UDP; the [`Subscriber`]
//! rebuilds the books, detects gaps and recovers from the next snapshot.

use crate::command::Symbol;
use crate::core::LevelChange;
use crate::sbe::{self, Entry, Message};
use engine_rs::Side;
use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Datagrams stay under a typical Ethernet MTU.
pub const MAX_DATAGRAM: usize = 1400;
/// Levels per snapshot message (a deeper book is sent in several chunks).
const SNAPSHOT_CHUNK: usize = (MAX_DATAGRAM - sbe::PACKET_HEADER - 64) / 24;

/// One side of an L2 book: price -> (qty, orders).
pub type Levels = BTreeMap<i64, (u64, u32)>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct L2Book {
    pub bids: Levels,
    pub asks: Levels,
}

impl L2Book {
    fn side_mut(&mut self, side: Side) -> &mut Levels {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    pub fn apply(&mut self, e: &Entry) {
        if e.qty == 0 {
            self.side_mut(e.side).remove(&e.price);
        } else {
            self.side_mut(e.side).insert(e.price, (e.qty, e.orders));
        }
    }

    /// Every level, bids best first then asks best first (the snapshot's order).
    pub fn entries(&self) -> Vec<Entry> {
        let bid = self.bids.iter().rev().map(|(&p, &(q, o))| Entry {
            side: Side::Buy,
            price: p,
            qty: q,
            orders: o,
        });
        let ask = self.asks.iter().map(|(&p, &(q, o))| Entry {
            side: Side::Sell,
            price: p,
            qty: q,
            orders: o,
        });
        bid.chain(ask).collect()
    }

    pub fn best_bid(&self) -> Option<(i64, u64)> {
        self.bids.iter().next_back().map(|(&p, &(q, _))| (p, q))
    }

    pub fn best_ask(&self) -> Option<(i64, u64)> {
        self.asks.iter().next().map(|(&p, &(q, _))| (p, q))
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Publisher statistics.
#[derive(Clone, Copy, Debug, Default)]
pub struct PublisherStats {
    pub packets: u64,
    pub incrementals: u64,
    pub snapshots: u64,
    pub send_errors: u64,
}

pub struct Publisher {
    socket: UdpSocket,
    dest: SocketAddr,
    symbols: Vec<Symbol>,
    tick_nanos: Vec<u64>,
    books: Vec<L2Book>,
    rpt_seq: Vec<u64>,
    last_transact: u64,
    packet_seq: u64,
    packet: Vec<u8>,
    pending: Vec<Entry>,
    pending_symbol: Option<(u32, u64)>,
    snapshot_every: Duration,
    last_snapshot: Instant,
    pub stats: PublisherStats,
}

impl Publisher {
    /// Sends from `bind` to `dest`. A multicast `dest` gets `ttl` (deployments only: nothing
    /// here sends to multicast; tests and benchmarks use 127.0.0.1).
    pub fn new(
        bind: SocketAddr,
        dest: SocketAddr,
        symbols: Vec<(Symbol, u64)>,
        snapshot_every: Duration,
        multicast_ttl: u32,
    ) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(bind)?;
        if dest.ip().is_multicast() {
            socket.set_multicast_ttl_v4(multicast_ttl)?;
        }
        let n = symbols.len();
        Ok(Publisher {
            socket,
            dest,
            tick_nanos: symbols.iter().map(|s| s.1).collect(),
            symbols: symbols.into_iter().map(|s| s.0).collect(),
            books: vec![L2Book::default(); n],
            rpt_seq: vec![0; n],
            last_transact: 0,
            packet_seq: 0,
            packet: Vec::with_capacity(MAX_DATAGRAM),
            pending: Vec::with_capacity(64),
            pending_symbol: None,
            snapshot_every,
            last_snapshot: Instant::now(),
            stats: PublisherStats::default(),
        })
    }

    /// Adds one level change; changes of one (command, symbol) become one message.
    pub fn on_level(&mut self, c: &LevelChange) {
        if self.pending_symbol != Some((c.symbol, c.seq)) {
            self.close_message();
            self.pending_symbol = Some((c.symbol, c.seq));
        }
        let e = Entry {
            side: c.side,
            price: c.price,
            qty: c.qty,
            orders: c.orders,
        };
        self.books[c.symbol as usize].apply(&e);
        self.pending.push(e);
        self.last_transact = c.seq;
    }

    fn close_message(&mut self) {
        let Some((symbol, seq)) = self.pending_symbol.take() else {
            return;
        };
        let s = symbol as usize;
        self.rpt_seq[s] += 1;
        let entries = std::mem::take(&mut self.pending);
        let mut start = 0;
        // a command that touches more levels than a datagram holds spans several messages
        while start < entries.len() || start == 0 {
            let end = (start + SNAPSHOT_CHUNK).min(entries.len());
            self.room_for(sbe::message_len(false, end - start));
            let (sym, rpt, tick) = (self.symbols[s], self.rpt_seq[s], self.tick_nanos[s]);
            sbe::put_incremental(&mut self.packet, &sym, rpt, seq, tick, &entries[start..end]);
            self.stats.incrementals += 1;
            if end == entries.len() {
                break;
            }
            self.rpt_seq[s] += 1;
            start = end;
        }
        self.pending = entries;
        self.pending.clear();
    }

    fn room_for(&mut self, len: usize) {
        if !self.packet.is_empty() && self.packet.len() + len > MAX_DATAGRAM {
            self.send();
        }
        if self.packet.is_empty() {
            self.packet_seq += 1;
            sbe::begin_packet(&mut self.packet, self.packet_seq, now_ns());
        }
    }

    fn send(&mut self) {
        if self.packet.len() > sbe::PACKET_HEADER {
            match self.socket.send_to(&self.packet, self.dest) {
                Ok(_) => self.stats.packets += 1,
                Err(_) => self.stats.send_errors += 1,
            }
        }
        self.packet.clear();
    }

    /// Sends what is buffered (end of a batch of commands).
    pub fn flush(&mut self) {
        self.close_message();
        self.send();
    }

    /// Full snapshots of every symbol when `snapshot_every` has passed (or `force`).
    pub fn maybe_snapshot(&mut self, force: bool) {
        if !force && self.last_snapshot.elapsed() < self.snapshot_every {
            return;
        }
        self.close_message();
        self.last_snapshot = Instant::now();
        for s in 0..self.symbols.len() {
            let entries = self.books[s].entries();
            let chunks = entries.len().div_ceil(SNAPSHOT_CHUNK).max(1);
            for k in 0..chunks {
                let part = &entries[(k * SNAPSHOT_CHUNK).min(entries.len())
                    ..((k + 1) * SNAPSHOT_CHUNK).min(entries.len())];
                self.room_for(sbe::message_len(true, part.len()));
                let (sym, rpt, tick) = (self.symbols[s], self.rpt_seq[s], self.tick_nanos[s]);
                sbe::put_snapshot(
                    &mut self.packet,
                    &sym,
                    rpt,
                    self.last_transact,
                    tick,
                    k as u16,
                    chunks as u16,
                    part,
                );
            }
            self.stats.snapshots += 1;
        }
        self.send();
    }

    pub fn book(&self, symbol: u32) -> &L2Book {
        &self.books[symbol as usize]
    }
}

/// Subscriber statistics: what a consumer of the feed needs to trust it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubscriberStats {
    pub packets: u64,
    pub decode_errors: u64,
    pub packet_gaps: u64,
    pub gaps: u64,
    pub recoveries: u64,
    pub incrementals: u64,
}

#[derive(Default)]
struct SymbolState {
    book: L2Book,
    rpt_seq: u64,
    synced: bool,
    /// Incrementals that arrived while out of sync, applied after the snapshot they follow.
    buffered: BTreeMap<u64, Vec<Entry>>,
    /// Chunks of the snapshot being assembled: (last_rpt_seq, chunks, received parts).
    assembling: Option<(u64, u16, BTreeMap<u16, Vec<Entry>>)>,
}

/// Rebuilds L2 books from the feed. A symbol is usable ([`Subscriber::book`] returns it) only
/// while in sync: from its first complete snapshot on, until an incremental is missing; then it
/// waits for the next snapshot, applies the incrementals buffered after it, and is usable again.
#[derive(Default)]
pub struct Subscriber {
    symbols: BTreeMap<Symbol, SymbolState>,
    last_packet: Option<u64>,
    pub stats: SubscriberStats,
}

const MAX_BUFFERED: usize = 100_000;

impl Subscriber {
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles one datagram. Never panics on any input (fuzzed).
    pub fn on_packet(&mut self, buf: &[u8]) {
        let (seq, _, messages) = match sbe::decode_packet(buf) {
            Ok(p) => p,
            Err(_) => {
                self.stats.decode_errors += 1;
                return;
            }
        };
        self.stats.packets += 1;
        if let Some(last) = self.last_packet {
            if seq > last + 1 {
                self.stats.packet_gaps += 1;
            }
        }
        self.last_packet = Some(self.last_packet.map_or(seq, |l| l.max(seq)));
        for m in messages {
            self.on_message(m);
        }
    }

    fn on_message(&mut self, m: Message) {
        match m {
            Message::Incremental {
                symbol,
                rpt_seq,
                entries,
                ..
            } => {
                self.stats.incrementals += 1;
                let st = self.symbols.entry(symbol).or_default();
                if st.synced {
                    if rpt_seq <= st.rpt_seq {
                        return; // a duplicate
                    }
                    if rpt_seq != st.rpt_seq + 1 {
                        st.synced = false;
                        self.stats.gaps += 1;
                    } else {
                        entries.iter().for_each(|e| st.book.apply(e));
                        st.rpt_seq = rpt_seq;
                        return;
                    }
                }
                if st.buffered.len() < MAX_BUFFERED {
                    st.buffered.insert(rpt_seq, entries);
                }
            }
            Message::Snapshot {
                symbol,
                last_rpt_seq,
                chunk,
                chunks,
                entries,
                ..
            } => {
                let st = self.symbols.entry(symbol).or_default();
                if st.synced && last_rpt_seq <= st.rpt_seq {
                    return; // nothing new
                }
                let fresh = !matches!(&st.assembling, Some((r, c, _)) if *r == last_rpt_seq && *c == chunks);
                if fresh {
                    st.assembling = Some((last_rpt_seq, chunks, BTreeMap::new()));
                }
                let Some((_, _, parts)) = st.assembling.as_mut() else {
                    return;
                };
                parts.insert(chunk, entries);
                if parts.len() == chunks as usize {
                    let (_, _, parts) = st.assembling.take().expect("assembling");
                    let mut book = L2Book::default();
                    parts.values().flatten().for_each(|e| book.apply(e));
                    st.book = book;
                    st.rpt_seq = last_rpt_seq;
                    st.synced = true;
                    self.stats.recoveries += 1;
                    // replay what arrived after the snapshot, as far as it is contiguous
                    let buffered = std::mem::take(&mut st.buffered);
                    for (r, es) in buffered.range(last_rpt_seq + 1..) {
                        if *r != st.rpt_seq + 1 {
                            st.synced = false;
                            self.stats.gaps += 1;
                            break;
                        }
                        es.iter().for_each(|e| st.book.apply(e));
                        st.rpt_seq = *r;
                    }
                }
            }
        }
    }

    /// The book of `symbol`, if it is in sync.
    pub fn book(&self, symbol: &Symbol) -> Option<&L2Book> {
        self.symbols
            .get(symbol)
            .filter(|s| s.synced)
            .map(|s| &s.book)
    }

    pub fn rpt_seq(&self, symbol: &Symbol) -> Option<u64> {
        self.symbols.get(symbol).map(|s| s.rpt_seq)
    }

    /// Receives datagrams on `socket` until `until` returns true (checked after each datagram
    /// or every `poll` of silence).
    pub fn run(
        &mut self,
        socket: &UdpSocket,
        poll: Duration,
        mut until: impl FnMut(&Subscriber) -> bool,
    ) -> std::io::Result<()> {
        socket.set_read_timeout(Some(poll))?;
        let mut buf = vec![0u8; 65536];
        loop {
            match socket.recv(&mut buf) {
                Ok(n) => self.on_packet(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
            if until(self) {
                return Ok(());
            }
        }
    }
}
