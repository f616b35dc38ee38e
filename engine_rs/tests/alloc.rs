//! Proves the hot path is allocation-free: a counting global allocator (counting only on the
//! test's own thread) must see zero allocations over 100k mixed operations after warm-up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use engine_rs::*;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // try_with: the allocator can run during thread teardown, after the TLS is gone.
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        }
    });
}

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note();
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        System.realloc(p, l, n)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    ALLOCS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCS.with(|a| a.get()))
}

/// Deterministic mixed stream: passive and aggressive limits, IOC/FOK/market, cancels and
/// modifies of recent ids, over two symbols plus an unknown one.
fn commands(n: usize, seed: u64) -> Vec<Command> {
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n as u64)
        .map(|i| {
            let r = next();
            let symbol = if r % 97 == 0 { 9 } else { (r >> 8) as u32 & 1 };
            let side = if r & 2 == 0 { Side::Buy } else { Side::Sell };
            // Bids mostly below 500, asks mostly above: a realistic, mostly passive book.
            let off = (next() % 40) as i64;
            let price = match side {
                Side::Buy => 505 - off,
                Side::Sell => 495 + off,
            };
            let qty = 1 + next() % 20;
            let recent = i.saturating_sub(1 + next() % 200);
            match r % 20 {
                0..=8 => Command::Submit {
                    symbol,
                    order: NewOrder {
                        id: i,
                        side,
                        order_type: OrderType::Limit,
                        price,
                        qty,
                    },
                },
                9 => Command::Submit {
                    symbol,
                    order: NewOrder {
                        id: i,
                        side,
                        order_type: OrderType::Ioc,
                        price,
                        qty,
                    },
                },
                10 => Command::Submit {
                    symbol,
                    order: NewOrder {
                        id: i,
                        side,
                        order_type: OrderType::Fok,
                        price,
                        qty,
                    },
                },
                11 => Command::Submit {
                    symbol,
                    order: NewOrder {
                        id: i,
                        side,
                        order_type: OrderType::Market,
                        price: 0,
                        qty,
                    },
                },
                12..=16 => Command::Cancel { symbol, id: recent },
                _ => Command::Modify {
                    symbol,
                    id: recent,
                    price: price + (r % 3) as i64 - 1,
                    qty,
                },
            }
        })
        .collect()
}

#[test]
fn hot_path_does_not_allocate() {
    let cfg = BookConfig {
        min_price: 0,
        max_price: 999,
        max_orders: 50_000,
    };
    let mut engine = Engine::new();
    engine.add_symbol(cfg);
    engine.add_symbol(BookConfig {
        min_price: -100_000,
        max_price: 100_000,
        ..cfg
    });
    let warmup = commands(20_000, 7);
    let run = commands(100_000, 11);
    let mut events: Vec<Event> = Vec::with_capacity(4096);
    let mut depth: Vec<Level> = Vec::with_capacity(64);
    for c in &warmup {
        events.clear();
        engine.process(*c, &mut events);
    }
    let (stats, allocs) = counted(|| {
        let mut n_events = 0usize;
        let mut resting = 0usize;
        for (i, c) in run.iter().enumerate() {
            events.clear();
            engine.process(*c, &mut events);
            n_events += events.len();
            let book = engine.book((i & 1) as u32).unwrap();
            depth.clear();
            book.depth(Side::Buy, 10, &mut depth);
            book.depth(Side::Sell, 10, &mut depth);
            let _ = (book.best_bid(), book.best_ask(), book.order(i as u64));
            resting = book.len();
        }
        // Direct book API too.
        let book = engine.book_mut(0).unwrap();
        for id in 0..1000u64 {
            events.clear();
            book.cancel(id, &mut events);
            book.modify(id + 1000, 500, 1, &mut events);
        }
        (n_events, resting)
    });
    assert!(stats.0 > 100_000, "workload too thin: {stats:?}");
    assert!(stats.1 > 100, "books should hold resting orders: {stats:?}");
    assert_eq!(allocs, 0, "hot path allocated {allocs} times");
    // The counter works (guards against a vacuous pass).
    let (_, n) = counted(|| Vec::<u8>::with_capacity(10));
    assert_eq!(n, 1);
}
