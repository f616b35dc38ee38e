//! Focused behaviour tests. Every test runs against both the fast book and the reference model.

use engine_rs::reference::ReferenceBook;
use engine_rs::*;
use Event::*;

const CFG: BookConfig = BookConfig {
    min_price: 90,
    max_price: 110,
    max_orders: 8,
};

fn lim(id: OrderId, side: Side, price: Price, qty: Qty) -> NewOrder {
    NewOrder {
        id,
        side,
        order_type: OrderType::Limit,
        price,
        qty,
    }
}
fn typed(id: OrderId, side: Side, order_type: OrderType, price: Price, qty: Qty) -> NewOrder {
    NewOrder {
        id,
        side,
        order_type,
        price,
        qty,
    }
}

/// Runs `$body` once with `OrderBook` and once with `ReferenceBook` as `$B`.
macro_rules! both {
    ($name:ident, |$b:ident| $body:block) => {
        mod $name {
            use super::*;
            fn run<B: MatchingBook>(mut $b: B) $body
            #[test]
            fn fast() {
                run(OrderBook::new(CFG));
            }
            #[test]
            fn reference() {
                run(ReferenceBook::new(CFG));
            }
        }
    };
}

fn sub<B: MatchingBook>(b: &mut B, o: NewOrder) -> Vec<Event> {
    let mut ev = Vec::new();
    b.submit(o, &mut ev);
    ev
}

fn snapshot<B: MatchingBook>(b: &B) -> (Vec<Level>, Vec<Level>, usize, Vec<Option<OrderView>>) {
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    b.depth(Side::Buy, 100, &mut bids);
    b.depth(Side::Sell, 100, &mut asks);
    (bids, asks, b.len(), (0..20).map(|i| b.order(i)).collect())
}

both!(rests_and_lookup, |b| {
    assert!(b.is_empty());
    assert_eq!(sub(&mut b, lim(1, Side::Buy, 100, 5)), [Accepted { id: 1 }]);
    assert_eq!(b.best_bid(), Some((100, 5)));
    assert_eq!(b.best_ask(), None);
    assert_eq!(
        b.order(1),
        Some(OrderView {
            id: 1,
            side: Side::Buy,
            price: 100,
            remaining: 5,
            filled: 0
        })
    );
    assert_eq!(b.order(2), None);
    assert_eq!(b.len(), 1);
});

both!(partial_fills_and_fifo, |b| {
    sub(&mut b, lim(1, Side::Sell, 101, 3));
    sub(&mut b, lim(2, Side::Sell, 101, 4));
    sub(&mut b, lim(3, Side::Sell, 102, 5));
    let ev = sub(&mut b, lim(10, Side::Buy, 102, 9));
    let f = |seq, maker_id, price, qty| Fill {
        seq,
        maker_id,
        taker_id: 10,
        price,
        qty,
        taker_side: Side::Buy,
    };
    assert_eq!(
        ev,
        [
            Accepted { id: 10 },
            f(1, 1, 101, 3),
            Done { id: 1, filled: 3 },
            f(2, 2, 101, 4),
            Done { id: 2, filled: 4 },
            f(3, 3, 102, 2),
            Done { id: 10, filled: 9 },
        ]
    );
    assert_eq!(b.order(3).unwrap().remaining, 3);
    assert_eq!(b.order(3).unwrap().filled, 2);
    assert_eq!(b.best_ask(), Some((102, 3)));
    // A limit that partially fills rests with its remainder at its own price.
    let ev = sub(&mut b, lim(11, Side::Buy, 102, 5));
    assert_eq!(
        ev,
        [
            Accepted { id: 11 },
            Fill {
                seq: 4,
                maker_id: 3,
                taker_id: 11,
                price: 102,
                qty: 3,
                taker_side: Side::Buy
            },
            Done { id: 3, filled: 5 },
        ]
    );
    assert_eq!(b.best_bid(), Some((102, 2)));
    assert_eq!(b.order(11).unwrap().filled, 3);
});

both!(market_orders, |b| {
    // Market on an empty book: accepted, then the whole quantity cancelled.
    assert_eq!(
        sub(&mut b, typed(1, Side::Buy, OrderType::Market, 0, 5)),
        [
            Accepted { id: 1 },
            Cancelled {
                id: 1,
                remaining: 5
            }
        ]
    );
    for (i, p) in (100..108).enumerate() {
        sub(&mut b, lim(10 + i as u64, Side::Sell, p, 1));
    }
    // Sweeps 8 levels, price ignored (even out of band), remainder cancelled.
    let ev = sub(&mut b, typed(2, Side::Buy, OrderType::Market, -12345, 10));
    assert_eq!(ev.iter().filter(|e| matches!(e, Fill { .. })).count(), 8);
    assert_eq!(
        ev.last(),
        Some(&Cancelled {
            id: 2,
            remaining: 2
        })
    );
    assert!(b.is_empty());
});

both!(ioc_never_rests, |b| {
    sub(&mut b, lim(1, Side::Buy, 100, 2));
    let ev = sub(&mut b, typed(2, Side::Sell, OrderType::Ioc, 100, 5));
    assert_eq!(
        ev.last(),
        Some(&Cancelled {
            id: 2,
            remaining: 3
        })
    );
    assert_eq!(b.order(2), None);
    let ev = sub(&mut b, typed(3, Side::Sell, OrderType::Ioc, 100, 5));
    assert_eq!(
        ev,
        [
            Accepted { id: 3 },
            Cancelled {
                id: 3,
                remaining: 5
            }
        ]
    );
    assert!(b.is_empty());
});

both!(fok_exact_short_and_multilevel, |b| {
    sub(&mut b, lim(1, Side::Sell, 101, 2));
    sub(&mut b, lim(2, Side::Sell, 102, 2));
    sub(&mut b, lim(3, Side::Sell, 104, 2));
    let before = snapshot(&b);
    // One lot short within the limit (104 excluded by the limit 103): killed, book unchanged.
    assert_eq!(
        sub(&mut b, typed(10, Side::Buy, OrderType::Fok, 103, 5)),
        [Rejected {
            id: 10,
            reason: RejectReason::FokNotFillable
        }]
    );
    assert_eq!(snapshot(&b), before);
    // One lot short overall.
    assert_eq!(
        sub(&mut b, typed(11, Side::Buy, OrderType::Fok, 110, 7)),
        [Rejected {
            id: 11,
            reason: RejectReason::FokNotFillable
        }]
    );
    assert_eq!(snapshot(&b), before);
    // Exactly enough across two levels, limit equal to the last level's price.
    let ev = sub(&mut b, typed(12, Side::Buy, OrderType::Fok, 102, 4));
    assert_eq!(ev.iter().filter(|e| matches!(e, Fill { .. })).count(), 2);
    assert_eq!(ev.last(), Some(&Done { id: 12, filled: 4 }));
    assert_eq!(b.len(), 1);
    // FOK never rests even when fully fillable at its own price only.
    let ev = sub(&mut b, typed(13, Side::Buy, OrderType::Fok, 104, 2));
    assert_eq!(ev.last(), Some(&Done { id: 13, filled: 2 }));
    assert!(b.is_empty());
});

both!(cancel, |b| {
    sub(&mut b, lim(1, Side::Buy, 100, 5));
    sub(&mut b, lim(2, Side::Buy, 100, 6));
    let mut ev = Vec::new();
    b.cancel(1, &mut ev);
    assert_eq!(
        ev,
        [Cancelled {
            id: 1,
            remaining: 5
        }]
    );
    assert_eq!(b.best_bid(), Some((100, 6)));
    ev.clear();
    b.cancel(2, &mut ev);
    assert_eq!(b.best_bid(), None);
    // Cancel of a filled order is an unknown id.
    sub(&mut b, lim(3, Side::Sell, 100, 1));
    sub(&mut b, lim(4, Side::Buy, 100, 1));
    ev.clear();
    b.cancel(3, &mut ev);
    assert_eq!(
        ev,
        [Rejected {
            id: 3,
            reason: RejectReason::UnknownOrderId
        }]
    );
});

both!(modify_priority_rules, |b| {
    sub(&mut b, lim(1, Side::Sell, 105, 5));
    sub(&mut b, lim(2, Side::Sell, 105, 5));
    let mut ev = Vec::new();
    // Reduction keeps priority: 1 still trades first.
    b.modify(1, 105, 3, &mut ev);
    assert_eq!(
        ev,
        [Modified {
            id: 1,
            price: 105,
            qty: 3,
            kept_priority: true
        }]
    );
    assert_eq!(b.best_ask(), Some((105, 8)));
    let e = sub(&mut b, lim(10, Side::Buy, 105, 1));
    assert!(matches!(e[1], Fill { maker_id: 1, .. }));
    // Increase loses priority: 2 now trades first.
    ev.clear();
    b.modify(1, 105, 9, &mut ev);
    assert_eq!(
        ev,
        [Modified {
            id: 1,
            price: 105,
            qty: 9,
            kept_priority: false
        }]
    );
    let e = sub(&mut b, lim(11, Side::Buy, 105, 1));
    assert!(matches!(e[1], Fill { maker_id: 2, .. }));
    assert_eq!(b.order(1).unwrap().filled, 1);
    // Price change away and back loses priority too.
    ev.clear();
    b.modify(2, 106, 4, &mut ev);
    assert_eq!(
        ev,
        [Modified {
            id: 2,
            price: 106,
            qty: 4,
            kept_priority: false
        }]
    );
    assert_eq!(b.best_ask(), Some((105, 9)));
    // A price change that crosses matches like a new limit order, then rests the remainder.
    sub(&mut b, lim(20, Side::Buy, 100, 3));
    ev.clear();
    b.modify(20, 105, 12, &mut ev);
    assert_eq!(
        ev,
        [
            Modified {
                id: 20,
                price: 105,
                qty: 12,
                kept_priority: false
            },
            Fill {
                seq: 3,
                maker_id: 1,
                taker_id: 20,
                price: 105,
                qty: 9,
                taker_side: Side::Buy
            },
            Done { id: 1, filled: 10 },
        ]
    );
    assert_eq!(
        b.order(20),
        Some(OrderView {
            id: 20,
            side: Side::Buy,
            price: 105,
            remaining: 3,
            filled: 9
        })
    );
    assert_eq!(b.best_bid(), Some((105, 3)));
    // A crossing modify that fills completely ends with Done (lifetime filled).
    ev.clear();
    b.modify(20, 106, 4, &mut ev);
    assert_eq!(ev.last(), Some(&Done { id: 20, filled: 13 }));
    assert!(b.is_empty());
});

both!(every_reject_leaves_book_unchanged, |b| {
    sub(&mut b, lim(1, Side::Buy, 100, 5));
    sub(&mut b, lim(2, Side::Sell, 102, 5));
    let before = snapshot(&b);
    let r = |id, reason| vec![Rejected { id, reason }];
    use RejectReason::*;
    assert_eq!(sub(&mut b, lim(3, Side::Buy, 100, 0)), r(3, ZeroQuantity));
    assert_eq!(sub(&mut b, lim(3, Side::Buy, 89, 1)), r(3, PriceOutOfBand));
    assert_eq!(sub(&mut b, lim(3, Side::Buy, 111, 1)), r(3, PriceOutOfBand));
    assert_eq!(
        sub(&mut b, typed(3, Side::Buy, OrderType::Ioc, 111, 1)),
        r(3, PriceOutOfBand)
    );
    assert_eq!(
        sub(&mut b, lim(1, Side::Sell, 100, 1)),
        r(1, DuplicateOrderId)
    );
    assert_eq!(
        sub(&mut b, typed(2, Side::Buy, OrderType::Market, 0, 1)),
        r(2, DuplicateOrderId)
    );
    assert_eq!(
        sub(&mut b, typed(3, Side::Buy, OrderType::Fok, 102, 6)),
        r(3, FokNotFillable)
    );
    let mut ev = Vec::new();
    b.cancel(9, &mut ev);
    b.modify(9, 100, 1, &mut ev);
    b.modify(1, 100, 0, &mut ev);
    b.modify(1, 200, 1, &mut ev);
    assert_eq!(
        ev,
        [
            r(9, UnknownOrderId),
            r(9, UnknownOrderId),
            r(1, ZeroQuantity),
            r(1, PriceOutOfBand)
        ]
        .concat()
    );
    assert_eq!(snapshot(&b), before);
    // BookFull: 8 slots.
    for i in 3..9 {
        sub(&mut b, lim(i, Side::Buy, 95, 1));
    }
    assert_eq!(b.len(), 8);
    let before = snapshot(&b);
    assert_eq!(sub(&mut b, lim(9, Side::Buy, 95, 1)), r(9, BookFull));
    assert_eq!(snapshot(&b), before);
    // Non-resting types are still accepted when the arena is full.
    assert_eq!(
        sub(&mut b, typed(9, Side::Buy, OrderType::Ioc, 101, 1)).len(),
        2
    );
});

both!(l2_snapshot, |b| {
    sub(&mut b, lim(1, Side::Buy, 100, 1));
    sub(&mut b, lim(2, Side::Buy, 100, 2));
    sub(&mut b, lim(3, Side::Buy, 98, 3));
    sub(&mut b, lim(4, Side::Buy, 90, 4));
    sub(&mut b, lim(5, Side::Sell, 110, 5));
    sub(&mut b, lim(6, Side::Sell, 103, 6));
    let mut out = vec![Level {
        price: 0,
        qty: 0,
        orders: 0,
    }]; // cleared first
    b.depth(Side::Buy, 2, &mut out);
    assert_eq!(
        out,
        [
            Level {
                price: 100,
                qty: 3,
                orders: 2
            },
            Level {
                price: 98,
                qty: 3,
                orders: 1
            }
        ]
    );
    b.depth(Side::Buy, 10, &mut out);
    assert_eq!(out.len(), 3);
    assert_eq!(
        out[2],
        Level {
            price: 90,
            qty: 4,
            orders: 1
        }
    );
    b.depth(Side::Sell, 10, &mut out);
    assert_eq!(
        out,
        [
            Level {
                price: 103,
                qty: 6,
                orders: 1
            },
            Level {
                price: 110,
                qty: 5,
                orders: 1
            }
        ]
    );
    b.depth(Side::Sell, 0, &mut out);
    assert!(out.is_empty());
});

#[test]
fn engine_routes_and_rejects_unknown_symbol() {
    let mut e = Engine::new();
    let a = e.add_symbol(CFG);
    let c = e.add_symbol(BookConfig {
        min_price: 0,
        max_price: 1_000_000,
        max_orders: 4,
    });
    assert_eq!((a, c), (0, 1));
    let mut ev = Vec::new();
    e.process(
        Command::Submit {
            symbol: 1,
            order: lim(1, Side::Buy, 999_999, 2),
        },
        &mut ev,
    );
    e.process(
        Command::Submit {
            symbol: 0,
            order: lim(1, Side::Sell, 100, 2),
        },
        &mut ev,
    );
    e.process(
        Command::Submit {
            symbol: 2,
            order: lim(5, Side::Sell, 100, 2),
        },
        &mut ev,
    );
    e.process(Command::Cancel { symbol: 9, id: 6 }, &mut ev);
    e.process(
        Command::Modify {
            symbol: 9,
            id: 7,
            price: 1,
            qty: 1,
        },
        &mut ev,
    );
    assert_eq!(
        ev,
        [
            Accepted { id: 1 },
            Accepted { id: 1 },
            Rejected {
                id: 5,
                reason: RejectReason::UnknownSymbol
            },
            Rejected {
                id: 6,
                reason: RejectReason::UnknownSymbol
            },
            Rejected {
                id: 7,
                reason: RejectReason::UnknownSymbol
            },
        ]
    );
    assert_eq!(e.book(1).unwrap().best_bid(), Some((999_999, 2)));
    assert_eq!(e.book(0).unwrap().best_ask(), Some((100, 2)));
    assert!(e.book(2).is_none());
    e.book_mut(0).unwrap().cancel(1, &mut ev);
    assert!(e.book(0).unwrap().is_empty());
}

#[test]
fn sequence_numbers_are_per_book() {
    let mut e = Engine::new();
    e.add_symbol(CFG);
    e.add_symbol(CFG);
    let mut ev = Vec::new();
    for s in 0..2 {
        e.process(
            Command::Submit {
                symbol: s,
                order: lim(1, Side::Sell, 100, 2),
            },
            &mut ev,
        );
        e.process(
            Command::Submit {
                symbol: s,
                order: lim(2, Side::Buy, 100, 1),
            },
            &mut ev,
        );
    }
    let seqs: Vec<SeqNo> = ev
        .iter()
        .filter_map(|e| {
            if let Fill { seq, .. } = e {
                Some(*seq)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(seqs, [1, 1]);
    assert_eq!(e.book(0).unwrap().last_seq(), 1);
}

#[test]
fn extreme_prices_and_wide_band() {
    let cfg = BookConfig {
        min_price: i64::MAX - 70_000,
        max_price: i64::MAX,
        max_orders: 16,
    };
    let mut b = OrderBook::new(cfg);
    let mut ev = Vec::new();
    b.submit(lim(1, Side::Sell, i64::MAX, 1), &mut ev);
    b.submit(lim(2, Side::Buy, i64::MAX - 70_000, 1), &mut ev);
    b.submit(lim(3, Side::Sell, i64::MAX - 5, 1), &mut ev);
    assert_eq!(b.best_ask(), Some((i64::MAX - 5, 1)));
    b.cancel(3, &mut ev);
    assert_eq!(b.best_ask(), Some((i64::MAX, 1)));
    b.cancel(2, &mut ev);
    b.submit(lim(4, Side::Buy, i64::MAX - 69_000, 1), &mut ev);
    assert_eq!(b.best_bid(), Some((i64::MAX - 69_000, 1)));
    b.submit(typed(5, Side::Sell, OrderType::Market, 0, 3), &mut ev);
    assert_eq!(b.best_bid(), None);
    assert_eq!(
        ev.last(),
        Some(&Cancelled {
            id: 5,
            remaining: 2
        })
    );
    b.submit(typed(6, Side::Buy, OrderType::Market, 0, 1), &mut ev);
    assert!(b.is_empty());
}

#[test]
#[should_panic]
fn inverted_band_panics() {
    OrderBook::new(BookConfig {
        min_price: 5,
        max_price: 4,
        max_orders: 1,
    });
}
