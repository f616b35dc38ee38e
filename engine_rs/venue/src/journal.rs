//! The journal: every sequenced command is appended (and, by default, fsync'd in a group
//! commit) before the core matches it; snapshots of the core shorten the replay on restart.
//!
//! Files in the venue's data directory:
//! * `journal-<first seq, 20 digits>.log`: a 24-byte header (magic `VJNL0001`, first sequence
//!   number, hash of the listings) then fixed-size records ([`Command::encode`]). A new segment
//!   starts after every snapshot; old segments are kept.
//! * `snapshot-<seq, 20 digits>.bin`: the core state after command `seq`
//!   ([`VenueCore::snapshot`]) with its state hash, written to a temporary file and renamed.
//!
//! Recovery loads the newest snapshot whose hash verifies, replays the records after it in
//! order, stops at a torn tail (a short or checksum-failing last record, cut off and logged),
//! and refuses a gap or a damaged record in the middle.

use crate::command::{ClOrdId, Command, OrdType, Tif, RECORD_LEN};
use crate::core::{CoreSnapshot, Listing, OrdStatus, SnapshotOrder, VenueCore};
use engine_rs::{OrderView, Side};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"VJNL0001";
const SNAP_MAGIC: &[u8; 8] = b"VSNP0001";
const HEADER_LEN: usize = 24;

/// When the journal's writes reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Group commit: one `fdatasync` per batch of at most `max_batch` commands, before any of
    /// them is matched. A batch is what the input ring holds when the core looks, so no command
    /// waits for more than the fsync of the batch before it plus its own.
    Batch { max_batch: usize },
    /// Writes reach the OS before matching but are never fsync'd: a process crash loses
    /// nothing, an OS crash or power loss can lose the tail.
    Never { max_batch: usize },
}

impl FsyncPolicy {
    pub fn max_batch(self) -> usize {
        match self {
            FsyncPolicy::Batch { max_batch } | FsyncPolicy::Never { max_batch } => max_batch,
        }
    }
}

/// Identity of a configuration's listings: a journal written under other listings is refused.
pub fn listings_hash(listings: &[Listing]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h = (h ^ x as u64).wrapping_mul(0x100_0000_01b3);
        }
    };
    for l in listings {
        eat(l.symbol.as_str().as_bytes());
        eat(&[0]);
        eat(&l.min_price.to_le_bytes());
        eat(&l.max_price.to_le_bytes());
        eat(&(l.max_orders as u64).to_le_bytes());
    }
    h
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("journal-{first_seq:020}.log"))
}

fn snapshot_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("snapshot-{seq:020}.bin"))
}

/// Files named `<prefix><20 digits><suffix>` in `dir`, by number.
fn numbered(dir: &Path, prefix: &str, suffix: &str) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(n) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(suffix))
            .and_then(|d| d.parse::<u64>().ok())
        {
            found.push((n, path));
        }
    }
    found.sort();
    Ok(found)
}

/// Appends records to the current segment; [`JournalWriter::commit`] writes and syncs a batch.
pub struct JournalWriter {
    dir: PathBuf,
    file: File,
    buf: Vec<u8>,
    policy: FsyncPolicy,
    listings_hash: u64,
    pub fsyncs: u64,
    pub records: u64,
}

impl JournalWriter {
    fn create(dir: &Path, first_seq: u64, policy: FsyncPolicy, lh: u64) -> io::Result<Self> {
        let path = segment_path(dir, first_seq);
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        if file.metadata()?.len() == 0 {
            let mut header = [0u8; HEADER_LEN];
            header[..8].copy_from_slice(MAGIC);
            header[8..16].copy_from_slice(&first_seq.to_le_bytes());
            header[16..24].copy_from_slice(&lh.to_le_bytes());
            file.write_all(&header)?;
            if matches!(policy, FsyncPolicy::Batch { .. }) {
                file.sync_all()?;
                File::open(dir)?.sync_all()?;
            }
        }
        Ok(JournalWriter {
            dir: dir.to_path_buf(),
            file,
            buf: Vec::with_capacity(policy.max_batch() * RECORD_LEN),
            policy,
            listings_hash: lh,
            fsyncs: 0,
            records: 0,
        })
    }

    pub fn policy(&self) -> FsyncPolicy {
        self.policy
    }

    /// Adds command `seq` to the pending batch (nothing is written yet).
    pub fn append(&mut self, seq: u64, command: &Command) {
        let mut rec = [0u8; RECORD_LEN];
        command.encode(seq, &mut rec);
        self.buf.extend_from_slice(&rec);
        self.records += 1;
    }

    /// Writes the pending batch in one `write` and, under [`FsyncPolicy::Batch`], one
    /// `fdatasync`. Only after this returns may the batch be matched.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf)?;
        self.buf.clear();
        if matches!(self.policy, FsyncPolicy::Batch { .. }) {
            self.file.sync_data()?;
            self.fsyncs += 1;
        }
        Ok(())
    }

    /// Writes a snapshot of `core` (after its last command) and starts a new segment after it.
    pub fn snapshot(&mut self, core: &VenueCore) -> io::Result<PathBuf> {
        self.commit()?;
        let path = write_snapshot(&self.dir, core)?;
        *self = JournalWriter::create(
            &self.dir,
            core.last_seq() + 1,
            self.policy,
            self.listings_hash,
        )?;
        Ok(path)
    }
}

/// What recovery found.
#[derive(Debug, Default, Clone)]
pub struct Recovery {
    pub snapshot_seq: Option<u64>,
    pub replayed: u64,
    pub torn_tail_bytes: u64,
    pub state_hash: u64,
    pub seconds: f64,
}

/// Rebuilds the core from `dir` (created if missing) and opens the journal for appending.
pub fn recover(
    dir: &Path,
    listings: &[Listing],
    policy: FsyncPolicy,
) -> Result<(VenueCore, JournalWriter, Recovery), String> {
    let t0 = std::time::Instant::now();
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let lh = listings_hash(listings);
    let mut rec = Recovery::default();
    let mut core = VenueCore::new(listings);
    let snapshots = numbered(dir, "snapshot-", ".bin").map_err(|e| e.to_string())?;
    for (seq, path) in snapshots.iter().rev() {
        match read_snapshot(path, listings) {
            Ok(c) => {
                core = c;
                rec.snapshot_seq = Some(*seq);
                break;
            }
            Err(e) => eprintln!(
                "venue: snapshot {} unusable ({e}); trying an older one",
                path.display()
            ),
        }
    }
    let segments = numbered(dir, "journal-", ".log").map_err(|e| e.to_string())?;
    let mut outputs = Vec::new();
    for (k, (first, path)) in segments.iter().enumerate() {
        // a segment wholly before the snapshot: skip without reading
        if let Some((next_first, _)) = segments.get(k + 1) {
            if *next_first <= core.last_seq() + 1 {
                continue;
            }
        }
        let last_segment = k + 1 == segments.len();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut header = [0u8; HEADER_LEN];
        file.read_exact(&mut header)
            .map_err(|e| format!("{}: header: {e}", path.display()))?;
        if &header[..8] != MAGIC || u64::from_le_bytes(header[8..16].try_into().unwrap()) != *first
        {
            return Err(format!("{}: not a journal segment", path.display()));
        }
        if u64::from_le_bytes(header[16..24].try_into().unwrap()) != lh {
            return Err(format!(
                "{}: written under other listings (symbols, bands or capacities changed); \
                 move the data directory aside to start a new venue",
                path.display()
            ));
        }
        let mut reader = io::BufReader::with_capacity(1 << 20, &mut file);
        let mut record = [0u8; RECORD_LEN];
        let mut good = HEADER_LEN as u64;
        loop {
            let n = read_full(&mut reader, &mut record).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            match Command::decode(&record[..n]) {
                Ok((seq, command)) => {
                    if seq > core.last_seq() {
                        if seq != core.last_seq() + 1 {
                            return Err(format!(
                                "{}: sequence gap: {} after {}",
                                path.display(),
                                seq,
                                core.last_seq()
                            ));
                        }
                        outputs.clear();
                        core.apply(seq, &command, &mut outputs);
                        rec.replayed += 1;
                    }
                    good += RECORD_LEN as u64;
                }
                Err(e) => {
                    let rest =
                        n as u64 + reader_remaining(&mut reader).map_err(|e| e.to_string())?;
                    if !last_segment || rest >= 2 * RECORD_LEN as u64 {
                        return Err(format!(
                            "{}: damaged record at byte {good} ({e}) with {rest} bytes after it",
                            path.display()
                        ));
                    }
                    rec.torn_tail_bytes = rest;
                    break;
                }
            }
        }
        drop(reader);
        if rec.torn_tail_bytes > 0 {
            eprintln!(
                "venue: cutting a torn tail of {} bytes from {}",
                rec.torn_tail_bytes,
                path.display()
            );
            file.set_len(good).map_err(|e| e.to_string())?;
        }
    }
    let writer = match segments.last() {
        Some((first, _)) if *first <= core.last_seq() + 1 => {
            JournalWriter::create(dir, *first, policy, lh)
        }
        _ => JournalWriter::create(dir, core.last_seq() + 1, policy, lh),
    }
    .map_err(|e| e.to_string())?;
    rec.state_hash = core.state_hash();
    rec.seconds = t0.elapsed().as_secs_f64();
    Ok((core, writer, rec))
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn reader_remaining(r: &mut impl Read) -> io::Result<u64> {
    io::copy(r, &mut io::sink())
}

// ---- snapshot file: magic | body | crc32(body) -------------------------------------------

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn text(&mut self, t: &ClOrdId) {
        let s = t.as_str().as_bytes();
        self.u8(s.len() as u8);
        self.0.extend_from_slice(s);
    }
}

struct R<'a>(&'a [u8]);

impl R<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("snapshot truncated".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn text(&mut self) -> Result<ClOrdId, String> {
        let n = self.u8()? as usize;
        let s = std::str::from_utf8(self.take(n)?).map_err(|e| e.to_string())?;
        ClOrdId::new(s).ok_or_else(|| "bad ClOrdID in snapshot".to_string())
    }
    fn side(&mut self) -> Result<Side, String> {
        match self.u8()? {
            0 => Ok(Side::Buy),
            1 => Ok(Side::Sell),
            _ => Err("bad side in snapshot".into()),
        }
    }
}

fn write_order(w: &mut W, o: &SnapshotOrder) {
    w.u64(o.id);
    w.u64(o.session as u64);
    w.u64(o.symbol as u64);
    w.u8(o.side as u8);
    w.u8(o.ord_type as u8);
    w.u8(o.tif as u8);
    w.u64(o.price as u64);
    w.u64(o.qty);
    w.u64(o.cum);
    w.u64(o.notional as u64);
    w.u64((o.notional >> 64) as u64);
    w.text(&o.cl_ord_id);
}

fn read_order(r: &mut R<'_>) -> Result<SnapshotOrder, String> {
    let id = r.u64()?;
    let session = r.u64()? as u16;
    let symbol = r.u64()? as u32;
    let side = r.side()?;
    let ord_type = match r.u8()? {
        b'1' => OrdType::Market,
        _ => OrdType::Limit,
    };
    let tif = match r.u8()? {
        b'3' => Tif::Ioc,
        b'4' => Tif::Fok,
        _ => Tif::Day,
    };
    Ok(SnapshotOrder {
        id,
        session,
        symbol,
        side,
        ord_type,
        tif,
        price: r.u64()? as i64,
        qty: r.u64()?,
        cum: r.u64()?,
        notional: r.u64()? as u128 | (r.u64()? as u128) << 64,
        cl_ord_id: r.text()?,
    })
}

fn write_snapshot(dir: &Path, core: &VenueCore) -> io::Result<PathBuf> {
    let snap = core.snapshot();
    let mut w = W(Vec::with_capacity(1 << 16));
    w.0.extend_from_slice(SNAP_MAGIC);
    w.u64(listings_hash(core.listings()));
    w.u64(core.state_hash());
    w.u64(snap.last_seq);
    w.u64(snap.books.len() as u64);
    for (last_seq, orders) in &snap.books {
        w.u64(*last_seq);
        w.u64(orders.len() as u64);
        for o in orders {
            w.u64(o.id);
            w.u8(o.side as u8);
            w.u64(o.price as u64);
            w.u64(o.remaining);
            w.u64(o.filled);
        }
    }
    w.u64(snap.live.len() as u64);
    for o in &snap.live {
        write_order(&mut w, o);
    }
    w.u64(snap.finished.len() as u64);
    for (o, st) in &snap.finished {
        write_order(&mut w, o);
        w.u8(*st as u8);
    }
    w.u64(snap.ids.len() as u64);
    for (s, c, id) in &snap.ids {
        w.u64(*s as u64);
        w.text(c);
        w.u64(*id);
    }
    let crc = crc32fast::hash(&w.0[8..]);
    w.0.extend_from_slice(&crc.to_le_bytes());
    let path = snapshot_path(dir, snap.last_seq);
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&w.0)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    File::open(dir)?.sync_all()?;
    Ok(path)
}

fn read_snapshot(path: &Path, listings: &[Listing]) -> Result<VenueCore, String> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() < 12 || &bytes[..8] != SNAP_MAGIC {
        return Err("not a snapshot".into());
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(&body[8..]) != u32::from_le_bytes(crc.try_into().unwrap()) {
        return Err("checksum mismatch".into());
    }
    let mut r = R(&body[8..]);
    if r.u64()? != listings_hash(listings) {
        return Err("written under other listings".into());
    }
    let hash = r.u64()?;
    let last_seq = r.u64()?;
    let mut books = Vec::new();
    for _ in 0..r.u64()? {
        let book_seq = r.u64()?;
        let n = r.u64()? as usize;
        let mut orders = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            orders.push(OrderView {
                id: r.u64()?,
                side: r.side()?,
                price: r.u64()? as i64,
                remaining: r.u64()?,
                filled: r.u64()?,
            });
        }
        books.push((book_seq, orders));
    }
    let mut live = Vec::new();
    for _ in 0..r.u64()? {
        live.push(read_order(&mut r)?);
    }
    let mut finished = Vec::new();
    for _ in 0..r.u64()? {
        let o = read_order(&mut r)?;
        let st = match r.u8()? {
            0 => OrdStatus::New,
            1 => OrdStatus::PartiallyFilled,
            2 => OrdStatus::Filled,
            3 => OrdStatus::Cancelled,
            4 => OrdStatus::Rejected,
            _ => return Err("bad status in snapshot".into()),
        };
        finished.push((o, st));
    }
    let mut ids = Vec::new();
    for _ in 0..r.u64()? {
        ids.push((r.u64()? as u16, r.text()?, r.u64()?));
    }
    let core = VenueCore::restore(
        listings,
        &CoreSnapshot {
            last_seq,
            books,
            live,
            finished,
            ids,
        },
    )?;
    if core.state_hash() != hash {
        return Err("restored state hash differs from the one written".into());
    }
    Ok(core)
}
