//! Differential property tests: random command streams through the fast engine and the
//! reference model must give identical events and book state, and satisfy the ledger invariants
//! (see `engine_rs::fuzzing`). Default: 2,000 cases of up to 200 commands; override with
//! `PROPTEST_CASES=...`.

use engine_rs::fuzzing::{run_commands, Harness};
use engine_rs::*;
use proptest::prelude::*;

/// A dense 8-tick book (constant crossing, small arena so BookFull happens), and a 40-tick one.
const CONFIGS: [BookConfig; 2] = [
    BookConfig {
        min_price: 1000,
        max_price: 1007,
        max_orders: 6,
    },
    BookConfig {
        min_price: -20,
        max_price: 19,
        max_orders: 64,
    },
];

/// Generated operations; the `*Live`/`FokEdge` ones are resolved against the current state so
/// that cancels/modifies hit live orders and FOKs land exactly on the liquidity boundary.
#[derive(Clone, Debug)]
enum Op {
    Submit {
        sym: u32,
        id: u64,
        side: Side,
        ty: OrderType,
        price: i64,
        qty: u64,
    },
    Cancel {
        sym: u32,
        id: u64,
    },
    CancelLive {
        sym: u32,
        k: usize,
    },
    Modify {
        sym: u32,
        id: u64,
        price: i64,
        qty: u64,
    },
    ModifyLive {
        sym: u32,
        k: usize,
        dprice: i64,
        dqty: i64,
    },
    FokEdge {
        sym: u32,
        id: u64,
        side: Side,
        price: i64,
        delta: i64,
    },
}

fn sym() -> impl Strategy<Value = u32> {
    prop_oneof![20 => 0u32..2, 1 => Just(2u32)]
}
fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}
/// Offset inside a band of width 40, occasionally one tick outside it.
fn price_off() -> impl Strategy<Value = i64> {
    prop_oneof![30 => 0i64..40, 1 => Just(-1i64), 1 => Just(40i64)]
}
fn qty() -> impl Strategy<Value = u64> {
    prop_oneof![30 => 1u64..6, 1 => Just(0u64), 3 => 6u64..40]
}
fn id() -> impl Strategy<Value = u64> {
    prop_oneof![20 => 0u64..40, 1 => Just(u64::MAX)]
}
fn order_type() -> impl Strategy<Value = OrderType> {
    prop_oneof![
        8 => Just(OrderType::Limit),
        1 => Just(OrderType::Market),
        2 => Just(OrderType::Ioc),
        2 => Just(OrderType::Fok)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (sym(), id(), side(), order_type(), price_off(), qty())
            .prop_map(|(sym, id, side, ty, price, qty)| Op::Submit { sym, id, side, ty, price, qty }),
        1 => (sym(), id()).prop_map(|(sym, id)| Op::Cancel { sym, id }),
        3 => (sym(), any::<usize>()).prop_map(|(sym, k)| Op::CancelLive { sym, k }),
        1 => (sym(), id(), price_off(), qty()).prop_map(|(sym, id, price, qty)| Op::Modify { sym, id, price, qty }),
        4 => (sym(), any::<usize>(), -2i64..=2, -3i64..=3)
            .prop_map(|(sym, k, dprice, dqty)| Op::ModifyLive { sym, k, dprice, dqty }),
        2 => (sym(), id(), side(), price_off(), -1i64..=1)
            .prop_map(|(sym, id, side, price, delta)| Op::FokEdge { sym, id, side, price, delta }),
    ]
}

/// Maps a 0..40 offset onto the symbol's band (the dense book wraps it into its 8 ticks, keeping
/// the out-of-band offsets -1/40 out of band).
fn price_for(sym: u32, off: i64) -> i64 {
    let c = CONFIGS[(sym & 1) as usize];
    let width = c.max_price - c.min_price + 1;
    match off {
        -1 => c.min_price - 1,
        o if o >= 40 => c.max_price + 1,
        o => c.min_price + o % width,
    }
}

fn resolve(h: &Harness, op: &Op) -> Command {
    match *op {
        Op::Submit {
            sym,
            id,
            side,
            ty,
            price,
            qty,
        } => Command::Submit {
            symbol: sym,
            order: NewOrder {
                id,
                side,
                order_type: ty,
                price: price_for(sym, price),
                qty,
            },
        },
        Op::Cancel { sym, id } => Command::Cancel { symbol: sym, id },
        Op::CancelLive { sym, k } => {
            let live = h.live_ids(sym);
            let id = if live.is_empty() {
                k as u64 % 40
            } else {
                live[k % live.len()]
            };
            Command::Cancel { symbol: sym, id }
        }
        Op::Modify {
            sym,
            id,
            price,
            qty,
        } => Command::Modify {
            symbol: sym,
            id,
            price: price_for(sym, price),
            qty,
        },
        Op::ModifyLive {
            sym,
            k,
            dprice,
            dqty,
        } => {
            let live = h.live_ids(sym);
            match live
                .get(k % live.len().max(1))
                .and_then(|&id| Some((id, h.engine.book(sym)?.order(id)?)))
            {
                Some((id, v)) => Command::Modify {
                    symbol: sym,
                    id,
                    price: v.price + dprice,
                    qty: (v.remaining as i64 + dqty).max(0) as u64,
                },
                None => Command::Modify {
                    symbol: sym,
                    id: k as u64 % 40,
                    price: 0,
                    qty: 1,
                },
            }
        }
        Op::FokEdge {
            sym,
            id,
            side,
            price,
            delta,
        } => {
            let price = price_for(sym, price);
            let mut avail: u64 = 0;
            if let Some(book) = h.engine.book(sym) {
                let mut levels = Vec::new();
                book.depth(side.opposite(), usize::MAX, &mut levels);
                avail = levels
                    .iter()
                    .filter(|l| {
                        if side == Side::Buy {
                            l.price <= price
                        } else {
                            l.price >= price
                        }
                    })
                    .map(|l| l.qty)
                    .sum();
            }
            let qty = (avail as i64 + delta).max(1) as u64;
            Command::Submit {
                symbol: sym,
                order: NewOrder {
                    id,
                    side,
                    order_type: OrderType::Fok,
                    price,
                    qty,
                },
            }
        }
    }
}

fn run_ops(ops: &[Op]) -> Harness {
    let mut h = Harness::new(&CONFIGS);
    for op in ops {
        let cmd = resolve(&h, op);
        h.step(cmd);
    }
    h
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_reference(ops in prop::collection::vec(op(), 1..200)) {
        run_ops(&ops);
    }

    #[test]
    fn engine_is_deterministic(ops in prop::collection::vec(op(), 1..100)) {
        // Same command stream -> same event stream (replay).
        let mut a = Harness::new(&CONFIGS);
        let mut b = Harness::new(&CONFIGS);
        for op in &ops {
            let ca = resolve(&a, op);
            let cb = resolve(&b, op);
            prop_assert_eq!(ca, cb);
            a.step(ca);
            b.step(cb);
            prop_assert_eq!(a.events(), b.events());
        }
    }

    #[test]
    fn fuzz_entry_point_on_random_bytes(data in prop::collection::vec(any::<u8>(), 0..1200)) {
        run_commands(&data);
    }
}

/// Makes sure the generators actually reach the interesting cases (not just "no panic").
#[test]
fn generators_cover_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut fills, mut fok_kill, mut fok_fill, mut book_full, mut kept, mut lost, mut multi_level) =
        (0, 0, 0, 0, 0, 0, 0);
    for _ in 0..200 {
        let ops = prop::collection::vec(op(), 1..200)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let mut h = Harness::new(&CONFIGS);
        for op in &ops {
            let cmd = resolve(&h, op);
            h.step(cmd);
            let ev = h.events();
            let prices: std::collections::BTreeSet<i64> = ev
                .iter()
                .filter_map(|e| {
                    if let Event::Fill { price, .. } = e {
                        Some(*price)
                    } else {
                        None
                    }
                })
                .collect();
            fills += ev
                .iter()
                .filter(|e| matches!(e, Event::Fill { .. }))
                .count();
            multi_level += (prices.len() > 1) as usize;
            for e in ev {
                match e {
                    Event::Rejected {
                        reason: RejectReason::FokNotFillable,
                        ..
                    } => fok_kill += 1,
                    Event::Rejected {
                        reason: RejectReason::BookFull,
                        ..
                    } => book_full += 1,
                    Event::Modified {
                        kept_priority: true,
                        ..
                    } => kept += 1,
                    Event::Modified {
                        kept_priority: false,
                        ..
                    } => lost += 1,
                    _ => {}
                }
            }
            if let Command::Submit { order, .. } = cmd {
                if order.order_type == OrderType::Fok
                    && matches!(ev.last(), Some(Event::Done { .. }))
                {
                    fok_fill += 1;
                }
            }
        }
    }
    let counts = [
        fills,
        fok_kill,
        fok_fill,
        book_full,
        kept,
        lost,
        multi_level,
    ];
    eprintln!("fills, fok_kill, fok_fill, book_full, kept, lost, multi_level = {counts:?}");
    assert!(counts.iter().all(|&c| c >= 20), "{counts:?}");
}
