//! Order id -> arena slot map: open addressing, Robin Hood linear probing, backward-shift
//! deletion.
//!
//! Sized once for `max_orders` at a load factor <= 1/2, so it never grows (no allocation in
//! steady state) and never accumulates tombstones (deletion shifts the probe run back instead).
//!
//! Hash: `k ^ k>>7 ^ k>>17 ^ k>>32`, an invertible xor-shift that keeps *locality*: exchange ids
//! are mostly sequential, and consecutive ids land in neighbouring buckets, so the inserts of a
//! busy stream touch a sliding, cache-resident window of the table instead of a random cache
//! line per order (a multiplicative hash costs a cache miss per insert on a large book). Strided
//! or random ids are still spread by the folded-in high bits. Robin Hood ordering keeps probe
//! runs sorted by home bucket, which bounds probe lengths under clustering and lets both a miss
//! (the duplicate-id check) and a delete stop early.

use crate::arena::NIL;
use crate::types::OrderId;

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: OrderId,
    /// Arena slot; `NIL` marks an empty bucket (keys can be any u64, so they can't mark it).
    val: u32,
}

const EMPTY: Entry = Entry { key: 0, val: NIL };

#[derive(Debug)]
pub(crate) struct IdMap {
    table: Vec<Entry>,
    mask: usize,
}

impl IdMap {
    pub(crate) fn with_capacity(max_items: usize) -> Self {
        let size = (max_items.max(8) * 2).next_power_of_two();
        IdMap {
            table: vec![EMPTY; size],
            mask: size - 1,
        }
    }

    #[inline]
    fn home(&self, key: OrderId) -> usize {
        (key ^ (key >> 7) ^ (key >> 17) ^ (key >> 32)) as usize & self.mask
    }

    /// Distance of the entry in bucket `i` from its home bucket.
    #[inline]
    fn dist(&self, key: OrderId, i: usize) -> usize {
        i.wrapping_sub(self.home(key)) & self.mask
    }

    /// Bucket holding `key`, if present.
    #[inline]
    fn find(&self, key: OrderId) -> Option<usize> {
        let mut i = self.home(key);
        let mut d = 0;
        loop {
            let e = self.table[i];
            // Robin Hood: once we pass entries closer to their home than we are to ours,
            // `key` cannot be further on.
            if e.val == NIL || self.dist(e.key, i) < d {
                return None;
            }
            if e.key == key {
                return Some(i);
            }
            i = (i + 1) & self.mask;
            d += 1;
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: OrderId) -> Option<u32> {
        self.find(key).map(|i| self.table[i].val)
    }

    /// Inserts a key known to be absent. The caller guarantees fewer than `max_items` entries.
    #[inline]
    pub(crate) fn insert_new(&mut self, key: OrderId, val: u32) {
        let mut cur = Entry { key, val };
        let mut i = self.home(key);
        let mut d = 0;
        loop {
            let e = self.table[i];
            if e.val == NIL {
                self.table[i] = cur;
                return;
            }
            let ed = self.dist(e.key, i);
            if ed < d {
                // Take from the rich: the resident is closer to home, displace it.
                self.table[i] = cur;
                cur = e;
                d = ed;
            }
            i = (i + 1) & self.mask;
            d += 1;
        }
    }

    /// Removes `key` if present.
    #[inline]
    pub(crate) fn remove(&mut self, key: OrderId) {
        let Some(mut i) = self.find(key) else { return };
        // Backward shift until an empty bucket or an entry already at its home.
        loop {
            let j = (i + 1) & self.mask;
            let e = self.table[j];
            if e.val == NIL || self.dist(e.key, j) == 0 {
                self.table[i] = EMPTY;
                return;
            }
            self.table[i] = e;
            i = j;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn matches_std_hashmap_under_churn() {
        let mut m = IdMap::with_capacity(64);
        let mut r: HashMap<u64, u32> = HashMap::new();
        let mut x: u64 = 88172645463325252;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // small key space -> long probe runs and many collisions/deletions
            let k = (x % 97).wrapping_mul(if x & 1 == 0 { 1 } else { 1 << 40 });
            if r.contains_key(&k) {
                m.remove(k);
                r.remove(&k);
            } else if r.len() < 64 {
                m.insert_new(k, step);
                r.insert(k, step);
            }
            for (&k2, &v) in &r {
                assert_eq!(m.get(k2), Some(v));
            }
            assert_eq!(
                m.get(k ^ 0xdead_0000_0000),
                r.get(&(k ^ 0xdead_0000_0000)).copied()
            );
        }
    }
}
