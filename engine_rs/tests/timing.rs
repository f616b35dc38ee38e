//! Rough single-shot timings (not the Criterion suite): run with
//! `cargo test --release --test timing -- --ignored --nocapture`.

use std::hint::black_box;
use std::time::Instant;

use engine_rs::reference::ReferenceBook;
use engine_rs::*;

const CFG: BookConfig = BookConfig {
    min_price: 0,
    max_price: 9_999,
    max_orders: 1 << 20,
};

fn lim(id: u64, side: Side, price: i64, qty: u64) -> NewOrder {
    NewOrder {
        id,
        side,
        order_type: OrderType::Limit,
        price,
        qty,
    }
}

fn ns(t: Instant, n: usize) -> f64 {
    t.elapsed().as_nanos() as f64 / n as f64
}

fn mixed<B: MatchingBook>(mut b: B, n: usize) -> f64 {
    let mut x = 0x9E37_79B9u64;
    let mut cmds = Vec::with_capacity(n);
    for i in 0..n as u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let side = if x & 1 == 0 { Side::Buy } else { Side::Sell };
        let off = ((x >> 8) % 30) as i64;
        let price = if side == Side::Buy {
            5_002 - off
        } else {
            4_998 + off
        };
        cmds.push(match (x >> 40) % 10 {
            0..=5 => (0, lim(i, side, price, 1 + (x >> 20) % 10)),
            6 => (
                0,
                NewOrder {
                    order_type: OrderType::Ioc,
                    ..lim(i, side, price, 1 + (x >> 20) % 10)
                },
            ),
            _ => (1, lim(i.saturating_sub(1 + (x >> 24) % 50), side, price, 0)),
        });
    }
    let mut ev = Vec::with_capacity(1024);
    let t = Instant::now();
    for &(k, o) in &cmds {
        ev.clear();
        if k == 0 {
            b.submit(o, &mut ev);
        } else {
            b.cancel(o.id, &mut ev);
        }
        black_box(&ev);
    }
    ns(t, n)
}

#[test]
#[ignore]
fn rough_timing() {
    // Book of up to N resting orders (cache-resident), repeated ROUNDS times.
    const N: usize = 4096;
    const ROUNDS: usize = 50;
    let mut ev = Vec::with_capacity(1024);
    let mut b = OrderBook::new(CFG);
    let (mut insert, mut cancel, mut one_fill) = (f64::MAX, f64::MAX, f64::MAX);
    // min over rounds: this machine is shared, the minimum filters out preempted rounds.
    for _ in 0..ROUNDS {
        // Passive inserts spread over 100 levels per side.
        let t = Instant::now();
        for i in 0..N as u64 {
            let side = if i & 1 == 0 { Side::Buy } else { Side::Sell };
            let p = if side == Side::Buy {
                4_999 - (i % 100) as i64
            } else {
                5_000 + (i % 100) as i64
            };
            ev.clear();
            b.submit(lim(i, side, p, 10), &mut ev);
        }
        insert = insert.min(ns(t, N));
        // Cancels in a scattered order.
        let t = Instant::now();
        for i in 0..N as u64 {
            ev.clear();
            b.cancel((i * 7919) % N as u64, &mut ev);
        }
        cancel = cancel.min(ns(t, N));
        assert!(b.is_empty());
        // Aggressive IOC with exactly one fill (makers of qty 1 on one level).
        for i in 0..N as u64 {
            b.submit(lim(i, Side::Sell, 5_000, 1), &mut ev);
        }
        ev.clear();
        let t = Instant::now();
        for i in 0..N as u64 {
            ev.clear();
            b.submit(
                NewOrder {
                    order_type: OrderType::Ioc,
                    ..lim(N as u64 + i, Side::Buy, 5_000, 1)
                },
                &mut ev,
            );
        }
        one_fill = one_fill.min(ns(t, N));
        assert!(b.is_empty());
    }
    // Market order sweeping 10 levels: time (10 inserts + sweep) and (10 inserts + cancel all),
    // the difference is the sweep minus 10 cancels' worth of unlinking.
    const M: u64 = 500;
    let (mut sweep, mut refill) = (f64::MAX, f64::MAX);
    let mut id = 10_000_000u64;
    for _ in 0..100 {
        let t = Instant::now();
        for _ in 0..M {
            for l in 0..10 {
                id += 1;
                b.submit(lim(id, Side::Sell, 5_000 + l as i64, 1), &mut ev);
            }
            ev.clear();
            id += 1;
            b.submit(
                NewOrder {
                    order_type: OrderType::Market,
                    ..lim(id, Side::Buy, 0, 10)
                },
                &mut ev,
            );
            ev.clear();
        }
        sweep = sweep.min(ns(t, M as usize));
        let t = Instant::now();
        for _ in 0..M {
            for l in 0..10 {
                id += 1;
                b.submit(lim(id, Side::Sell, 5_000 + l as i64, 1), &mut ev);
            }
            ev.clear();
        }
        refill = refill.min(ns(t, M as usize));
        for l in 0..(10 * M) {
            b.cancel(id - l, &mut ev);
            ev.clear();
        }
        assert!(b.is_empty());
    }
    let fast = mixed(OrderBook::new(CFG), 300_000);
    let slow = mixed(ReferenceBook::new(CFG), 300_000);
    eprintln!("passive insert      {insert:7.1} ns");
    eprintln!("cancel              {cancel:7.1} ns");
    eprintln!("IOC, one fill       {one_fill:7.1} ns");
    eprintln!("market 10 levels    {:7.1} ns (10 inserts + sweep {sweep:.1} minus 10 inserts {refill:.1})", sweep - refill);
    eprintln!(
        "mixed stream        {fast:7.1} ns/op   reference {slow:7.1} ns/op   ratio {:.1}x",
        slow / fast
    );
}
