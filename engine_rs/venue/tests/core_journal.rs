//! The venue core against its own journal and the L2 feed: replay and snapshots reach the same
//! state hash, the level changes rebuild the engine's books exactly, and each request kind gets
//! the report FIX expects.

use engine_rs::{Level, Side};
use proptest::prelude::*;
use std::collections::BTreeMap;
use venue::command::{ClOrdId, Command, Kind, OrdType, Refusal, Symbol, Tif};
use venue::core::{ExecKind, Listing, OrdStatus, Output, Reason, Report, VenueCore};
use venue::journal::{recover, FsyncPolicy};

fn listings() -> Vec<Listing> {
    ["AAA", "BBB"]
        .iter()
        .map(|s| Listing {
            symbol: Symbol::new(s).unwrap(),
            min_price: 90,
            max_price: 110,
            max_orders: 1000,
        })
        .collect()
}

fn cmd(kind: Kind, session: u16, id: &str, side: Side, price: i64, qty: u64) -> Command {
    Command {
        kind,
        session,
        side,
        ord_type: OrdType::Limit,
        tif: Tif::Day,
        price,
        qty,
        symbol: Symbol::new("AAA").unwrap(),
        cl_ord_id: ClOrdId::new(id).unwrap(),
        ..Command::default()
    }
}

fn reports(out: &[Output]) -> Vec<Report> {
    out.iter()
        .filter_map(|o| {
            if let Output::Report(r) = o {
                Some(*r)
            } else {
                None
            }
        })
        .collect()
}

struct Run {
    core: VenueCore,
    out: Vec<Output>,
}

impl Run {
    fn new() -> Self {
        Run {
            core: VenueCore::new(&listings()),
            out: Vec::new(),
        }
    }
    fn send(&mut self, c: Command) -> Vec<Report> {
        self.out.clear();
        let seq = self.core.last_seq() + 1;
        self.core.apply(seq, &c, &mut self.out);
        reports(&self.out)
    }
}

#[test]
fn a_crossing_order_fills_both_sides_and_reports_partial_then_full() {
    let mut r = Run::new();
    let new = r.send(cmd(Kind::New, 0, "s1", Side::Sell, 100, 10));
    assert_eq!(
        (new[0].kind, new[0].status, new[0].leaves_qty),
        (ExecKind::New, OrdStatus::New, 10)
    );
    let rep = r.send(cmd(Kind::New, 1, "b1", Side::Buy, 101, 4));
    let kinds: Vec<_> = rep
        .iter()
        .map(|x| (x.session, x.kind, x.status, x.last_qty, x.last_px))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, ExecKind::New, OrdStatus::New, 0, 0),
            (1, ExecKind::Trade, OrdStatus::Filled, 4, 100),
            (0, ExecKind::Trade, OrdStatus::PartiallyFilled, 4, 100),
        ]
    );
    assert_eq!((rep[2].leaves_qty, rep[2].cum_qty), (6, 4));
    let ids: std::collections::HashSet<_> = rep.iter().map(|x| x.exec_id).collect();
    assert_eq!(ids.len(), 3, "ExecIDs are unique");
}

#[test]
fn ioc_remainder_is_cancelled_and_fok_that_cannot_fill_is_rejected_with_no_trade() {
    let mut r = Run::new();
    r.send(cmd(Kind::New, 0, "s1", Side::Sell, 100, 5));
    let fok = r.send(Command {
        tif: Tif::Fok,
        ..cmd(Kind::New, 1, "f", Side::Buy, 100, 6)
    });
    assert_eq!(fok.len(), 1);
    assert_eq!(
        (fok[0].kind, fok[0].reason),
        (ExecKind::Rejected, Reason::FokNotFillable)
    );
    let ioc = r.send(Command {
        tif: Tif::Ioc,
        ..cmd(Kind::New, 1, "i", Side::Buy, 100, 6)
    });
    let last = ioc.last().unwrap();
    assert_eq!(
        (last.kind, last.status, last.cum_qty, last.leaves_qty),
        (ExecKind::Cancelled, OrdStatus::Cancelled, 5, 0)
    );
}

#[test]
fn a_market_order_sweeps_levels_at_the_makers_prices() {
    let mut r = Run::new();
    for (k, p) in [100, 101, 102].iter().enumerate() {
        r.send(cmd(Kind::New, 0, &format!("s{k}"), Side::Sell, *p, 2));
    }
    let m = r.send(Command {
        ord_type: OrdType::Market,
        price: 0,
        ..cmd(Kind::New, 1, "m", Side::Buy, 0, 5)
    });
    let fills: Vec<_> = m
        .iter()
        .filter(|x| x.session == 1 && x.kind == ExecKind::Trade)
        .map(|x| (x.last_px, x.last_qty))
        .collect();
    assert_eq!(fills, vec![(100, 2), (101, 2), (102, 1)]);
    let done = m.iter().rfind(|x| x.session == 1).unwrap();
    assert_eq!(
        (done.status, done.notional),
        (OrdStatus::Filled, 200 + 202 + 102)
    );
}

#[test]
fn duplicate_ids_unknown_orders_and_bad_replaces_get_the_fix_rejects() {
    let mut r = Run::new();
    r.send(cmd(Kind::New, 0, "a", Side::Buy, 95, 10));
    let dup = r.send(cmd(Kind::New, 0, "a", Side::Buy, 96, 1));
    assert_eq!(
        (dup[0].kind, dup[0].reason),
        (ExecKind::Rejected, Reason::DuplicateClOrdId)
    );
    // the same ClOrdID from another session is another order
    assert_eq!(
        r.send(cmd(Kind::New, 1, "a", Side::Sell, 105, 1))[0].kind,
        ExecKind::New
    );
    let unknown = r.send(Command {
        orig_cl_ord_id: ClOrdId::new("zz").unwrap(),
        ..cmd(Kind::Cancel, 0, "c1", Side::Buy, 0, 0)
    });
    assert_eq!(
        unknown[0].kind,
        ExecKind::CancelReject {
            response_to_replace: false
        }
    );
    assert_eq!(unknown[0].reason, Reason::UnknownOrder);
    let band = r.send(cmd(Kind::New, 0, "b", Side::Buy, 200, 1));
    assert_eq!(band[0].reason, Reason::PriceOutOfBand);
    let tick = r.send(Command {
        refusal: Refusal::PriceOffTick,
        ..cmd(Kind::New, 0, "t", Side::Buy, 0, 1)
    });
    assert_eq!(
        (tick[0].kind, tick[0].reason),
        (ExecKind::Rejected, Reason::PriceOffTick)
    );
    let unk = r.send(Command {
        symbol: Symbol::new("ZZZ").unwrap(),
        ..cmd(Kind::New, 0, "u", Side::Buy, 100, 1)
    });
    assert_eq!(unk[0].reason, Reason::UnknownSymbol);
    // replace: new ClOrdID, lower qty keeps the order, OrigClOrdID echoed
    let rep = r.send(Command {
        orig_cl_ord_id: ClOrdId::new("a").unwrap(),
        ..cmd(Kind::Replace, 0, "a2", Side::Buy, 97, 4)
    });
    assert_eq!(
        (rep[0].kind, rep[0].price, rep[0].order_qty),
        (ExecKind::Replaced, 97, 4)
    );
    assert_eq!(
        (rep[0].cl_ord_id.as_str(), rep[0].orig_cl_ord_id.as_str()),
        ("a2", "a")
    );
    // the old id no longer names a live order it can replace twice
    let again = r.send(Command {
        orig_cl_ord_id: ClOrdId::new("a").unwrap(),
        ..cmd(Kind::Cancel, 0, "c2", Side::Buy, 0, 0)
    });
    assert_eq!(
        again[0].kind,
        ExecKind::Cancelled,
        "OrigClOrdID of the first id still names the order"
    );
    let late = r.send(Command {
        orig_cl_ord_id: ClOrdId::new("a2").unwrap(),
        ..cmd(Kind::Cancel, 0, "c3", Side::Buy, 0, 0)
    });
    assert_eq!(late[0].reason, Reason::TooLateToCancel);
}

/// A stream of random requests over two symbols and three sessions.
fn stream(seed: u64, n: usize) -> Vec<Command> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let r = next();
        let session = (r % 3) as u16;
        let side = if r >> 8 & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let price = 95 + (r >> 16 & 15) as i64;
        let qty = 1 + (r >> 24 & 7);
        let symbol = Symbol::new(if r >> 32 & 1 == 0 { "AAA" } else { "BBB" }).unwrap();
        let orig = ClOrdId::new(&format!("o{}", (r >> 40) as usize % (k + 1))).unwrap();
        let kind = match r >> 48 & 7 {
            0 => Kind::Cancel,
            1 => Kind::Replace,
            _ => Kind::New,
        };
        let (ord_type, tif) = match r >> 52 & 7 {
            0 => (OrdType::Market, Tif::Day),
            1 => (OrdType::Limit, Tif::Ioc),
            2 => (OrdType::Limit, Tif::Fok),
            _ => (OrdType::Limit, Tif::Day),
        };
        out.push(Command {
            kind,
            session,
            side,
            ord_type,
            tif,
            price,
            qty,
            symbol,
            cl_ord_id: ClOrdId::new(&format!("o{k}")).unwrap(),
            orig_cl_ord_id: orig,
            refusal: Refusal::None,
        });
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The L2 feed is only right if every level change is reported: apply them to a replica and
    /// compare with the engine's depth after every command.
    #[test]
    fn level_changes_rebuild_the_engines_books_exactly(seed in any::<u64>()) {
        let mut core = VenueCore::new(&listings());
        let mut replica: Vec<[BTreeMap<i64, (u64, u32)>; 2]> = vec![Default::default(), Default::default()];
        let mut out = Vec::new();
        let mut depth: Vec<Level> = Vec::new();
        for (k, c) in stream(seed, 300).iter().enumerate() {
            out.clear();
            core.apply(k as u64 + 1, c, &mut out);
            for o in &out {
                if let Output::Level(l) = o {
                    let side = &mut replica[l.symbol as usize][l.side as usize];
                    if l.qty == 0 { side.remove(&l.price); } else { side.insert(l.price, (l.qty, l.orders)); }
                }
                if let Output::Report(r) = o {
                    prop_assert!(r.cum_qty <= r.order_qty || r.kind == ExecKind::Rejected);
                }
            }
            for s in 0..2u32 {
                for side in [Side::Buy, Side::Sell] {
                    core.depth(s, side, 1000, &mut depth);
                    let want: BTreeMap<i64, (u64, u32)> = depth.iter().map(|l| (l.price, (l.qty, l.orders))).collect();
                    prop_assert_eq!(&replica[s as usize][side as usize], &want);
                }
            }
        }
    }
}

fn journal_of(dir: &std::path::Path, commands: &[Command], snapshot_at: Option<usize>) -> u64 {
    let policy = FsyncPolicy::Never { max_batch: 64 };
    let (mut core, mut w, _) = recover(dir, &listings(), policy).unwrap();
    let mut out = Vec::new();
    for (k, c) in commands.iter().enumerate() {
        let seq = core.last_seq() + 1;
        w.append(seq, c);
        w.commit().unwrap();
        out.clear();
        core.apply(seq, c, &mut out);
        if Some(k) == snapshot_at {
            w.snapshot(&core).unwrap();
        }
    }
    core.state_hash()
}

#[test]
fn a_restart_replays_the_journal_to_the_same_state_hash_with_or_without_a_snapshot() {
    let commands = stream(7, 2000);
    for snapshot_at in [None, Some(1200)] {
        let dir = tempfile::tempdir().unwrap();
        let live = journal_of(dir.path(), &commands, snapshot_at);
        let (core, _, rec) = recover(
            dir.path(),
            &listings(),
            FsyncPolicy::Never { max_batch: 64 },
        )
        .unwrap();
        assert_eq!(core.last_seq(), 2000);
        assert_eq!(rec.state_hash, live);
        match snapshot_at {
            None => assert_eq!((rec.snapshot_seq, rec.replayed), (None, 2000)),
            Some(k) => assert_eq!(
                (rec.snapshot_seq, rec.replayed),
                (Some(k as u64 + 1), 2000 - k as u64 - 1)
            ),
        }
    }
}

#[test]
fn a_torn_last_record_is_cut_and_the_state_is_that_of_the_commands_before_it() {
    let commands = stream(11, 500);
    let dir = tempfile::tempdir().unwrap();
    journal_of(dir.path(), &commands, None);
    let prefix = tempfile::tempdir().unwrap();
    let want = journal_of(prefix.path(), &commands[..499], None);
    let seg = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 40)
        .unwrap();
    let (core, _, rec) = recover(
        dir.path(),
        &listings(),
        FsyncPolicy::Never { max_batch: 64 },
    )
    .unwrap();
    assert_eq!((core.last_seq(), rec.state_hash), (499, want));
    assert!(rec.torn_tail_bytes > 0);
}

#[test]
fn a_damaged_record_in_the_middle_is_refused_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    journal_of(dir.path(), &stream(3, 100), None);
    let seg = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[24 + 152 * 10 + 30] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();
    let err = recover(
        dir.path(),
        &listings(),
        FsyncPolicy::Never { max_batch: 64 },
    )
    .err()
    .unwrap();
    assert!(err.contains("damaged record"), "{err}");
}

#[test]
fn a_journal_written_under_other_listings_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    journal_of(dir.path(), &stream(5, 10), None);
    let mut other = listings();
    other[0].max_price = 120;
    let err = recover(dir.path(), &other, FsyncPolicy::Never { max_batch: 64 })
        .err()
        .unwrap();
    assert!(err.contains("other listings"), "{err}");
}

#[test]
fn a_status_request_answers_live_finished_and_unknown_orders() {
    let mut r = Run::new();
    r.send(cmd(Kind::New, 0, "s", Side::Sell, 100, 3));
    r.send(cmd(Kind::New, 1, "b", Side::Buy, 100, 3));
    r.send(cmd(Kind::New, 0, "rest", Side::Buy, 95, 2));
    let ask =
        |r: &mut Run, session, id: &str| r.send(cmd(Kind::Status, session, id, Side::Buy, 0, 0))[0];
    let filled = ask(&mut r, 1, "b");
    assert_eq!(
        (filled.kind, filled.status, filled.cum_qty, filled.notional),
        (ExecKind::Status, OrdStatus::Filled, 3, 300)
    );
    assert_eq!(
        filled.cl_ord_id.as_str(),
        "b",
        "the ClOrdID asked about is echoed"
    );
    let live = ask(&mut r, 0, "rest");
    assert_eq!((live.status, live.leaves_qty), (OrdStatus::New, 2));
    let unknown = ask(&mut r, 0, "nope");
    assert_eq!(
        (unknown.status, unknown.reason),
        (OrdStatus::Rejected, Reason::UnknownOrder)
    );
    // another session cannot see it
    assert_eq!(ask(&mut r, 2, "b").status, OrdStatus::Rejected);
}
