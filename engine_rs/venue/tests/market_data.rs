//! The L2 feed end to end on loopback UDP: the subscriber's books equal the publisher's; with
//! datagrams dropped it detects the gap, stops serving the symbol, and recovers at the next
//! snapshot to the exact book.

use engine_rs::Side;
use std::net::UdpSocket;
use std::time::Duration;
use venue::command::Symbol;
use venue::core::LevelChange;
use venue::md::{Publisher, Subscriber};

fn symbols() -> Vec<(Symbol, u64)> {
    vec![
        (Symbol::new("AAA").unwrap(), 10_000_000),
        (Symbol::new("BBB").unwrap(), 10_000_000),
    ]
}

/// Random level changes: (seq, symbol, side, price, qty).
fn changes(n: usize, seed: u64) -> Vec<LevelChange> {
    let mut x = seed | 1;
    (0..n)
        .map(|k| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            LevelChange {
                seq: k as u64 + 1,
                symbol: (x & 1) as u32,
                side: if x >> 1 & 1 == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                },
                price: 100 + (x >> 8 & 31) as i64,
                qty: if x >> 16 & 3 == 0 { 0 } else { x >> 20 & 255 },
                orders: (x >> 32 & 7) as u32,
            }
        })
        .collect()
}

/// A publisher to `rx` that sends snapshots only when told to.
fn publisher_to(rx: &UdpSocket) -> Publisher {
    let (bind, dest) = ("127.0.0.1:0".parse().unwrap(), rx.local_addr().unwrap());
    Publisher::new(bind, dest, symbols(), Duration::from_secs(3600), 1).unwrap()
}

fn receiver() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// Every datagram waiting on `sock`.
fn drain(sock: &UdpSocket) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = sock.recv(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

#[test]
fn the_subscriber_rebuilds_the_publishers_books_and_recovers_from_dropped_datagrams() {
    let rx = receiver();
    let mut p = publisher_to(&rx);
    let all = changes(3000, 42);
    let mut sub = Subscriber::new();
    // before any snapshot nothing is served
    for chunk in all[..1000].chunks(50) {
        chunk.iter().for_each(|c| p.on_level(c));
        p.flush();
    }
    drain(&rx).iter().for_each(|d| sub.on_packet(d));
    assert!(sub.book(&Symbol::new("AAA").unwrap()).is_none());
    p.maybe_snapshot(true);
    for chunk in all[1000..2000].chunks(50) {
        chunk.iter().for_each(|c| p.on_level(c));
        p.flush();
    }
    drain(&rx).iter().for_each(|d| sub.on_packet(d));
    for (s, (sym, _)) in symbols().iter().enumerate() {
        assert_eq!(
            sub.book(sym),
            Some(p.book(s as u32)),
            "in sync after the snapshot"
        );
    }
    assert_eq!(sub.stats.gaps, 0);
    // drop every fifth datagram of the next stretch
    for chunk in all[2000..].chunks(20) {
        chunk.iter().for_each(|c| p.on_level(c));
        p.flush();
    }
    let packets = drain(&rx);
    assert!(packets.len() > 20);
    for (k, d) in packets.iter().enumerate() {
        if k % 5 != 2 {
            sub.on_packet(d);
        }
    }
    assert!(sub.stats.gaps > 0 && sub.stats.packet_gaps > 0);
    assert!(
        sub.book(&Symbol::new("AAA").unwrap()).is_none()
            || sub.book(&Symbol::new("BBB").unwrap()).is_none()
    );
    p.maybe_snapshot(true);
    drain(&rx).iter().for_each(|d| sub.on_packet(d));
    for (s, (sym, _)) in symbols().iter().enumerate() {
        assert_eq!(
            sub.book(sym),
            Some(p.book(s as u32)),
            "recovered at the snapshot"
        );
    }
}

#[test]
fn garbage_datagrams_are_counted_and_never_break_the_books() {
    let mut sub = Subscriber::new();
    let mut x: u64 = 9;
    for n in 0..2000usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes: Vec<u8> = (0..(n % 300)).map(|k| (x >> (k % 8 * 8)) as u8).collect();
        sub.on_packet(&bytes);
    }
    assert!(sub.stats.decode_errors > 1900);
}

#[test]
fn a_deep_book_is_snapshotted_in_chunks_that_reassemble_exactly() {
    let rx = receiver();
    let mut p = publisher_to(&rx);
    for k in 0..500u64 {
        p.on_level(&LevelChange {
            seq: k + 1,
            symbol: 0,
            side: Side::Buy,
            price: 1000 + k as i64,
            qty: k + 1,
            orders: 1,
        });
    }
    p.flush();
    drain(&rx);
    p.maybe_snapshot(true);
    let packets = drain(&rx);
    assert!(packets.len() > 5, "500 levels do not fit one datagram");
    assert!(packets.iter().all(|d| d.len() <= venue::md::MAX_DATAGRAM));
    let mut sub = Subscriber::new();
    packets.iter().rev().for_each(|d| sub.on_packet(d)); // chunks in any order
    assert_eq!(sub.book(&Symbol::new("AAA").unwrap()).unwrap(), p.book(0));
}
