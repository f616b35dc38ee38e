//! Snapshots of the fast book (what the venue writes): `resting_orders` then `restore`.

use engine_rs::*;

#[test]
fn a_book_restored_from_its_resting_orders_behaves_exactly_like_the_original() {
    use engine_rs::{OrderView, Side as S};
    let config = BookConfig {
        min_price: 1,
        max_price: 200,
        max_orders: 256,
    };
    let mut a = OrderBook::new(config);
    let mut ev = Vec::new();
    let mut x: u64 = 17;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for id in 1..400u64 {
        let r = next();
        let side = if r & 1 == 0 { S::Buy } else { S::Sell };
        let price = if side == S::Buy {
            80 + (r >> 8) % 25
        } else {
            100 + (r >> 8) % 25
        } as i64;
        let order_type = if (r >> 16) % 10 == 0 {
            OrderType::Ioc
        } else {
            OrderType::Limit
        };
        a.submit(
            NewOrder {
                id,
                side,
                order_type,
                price,
                qty: 1 + (r >> 24) % 9,
            },
            &mut ev,
        );
        if (r >> 32) % 4 == 0 {
            a.cancel(id / 2, &mut ev);
        }
    }
    let mut orders: Vec<OrderView> = Vec::new();
    a.resting_orders(&mut orders);
    assert_eq!(orders.len(), a.len());
    let mut b = OrderBook::new(config);
    b.restore(&orders, a.last_seq()).unwrap();
    // the same crossing orders now give the same events on both
    for id in 1000..1100u64 {
        let r = next();
        let side = if r & 1 == 0 { S::Buy } else { S::Sell };
        let o = NewOrder {
            id,
            side,
            order_type: OrderType::Limit,
            price: 90 + (r >> 8) as i64 % 25,
            qty: 1 + (r >> 24) % 20,
        };
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        a.submit(o, &mut ea);
        b.submit(o, &mut eb);
        assert_eq!(ea, eb);
    }
    // and a book that is not empty, or orders that cross, are refused
    assert!(b.restore(&orders, 0).is_err());
    let crossing = [
        OrderView {
            id: 1,
            side: S::Buy,
            price: 120,
            remaining: 1,
            filled: 0,
        },
        OrderView {
            id: 2,
            side: S::Sell,
            price: 110,
            remaining: 1,
            filled: 0,
        },
    ];
    assert!(OrderBook::new(config).restore(&crossing, 0).is_err());
}
