//! Order id -> arena slot map: open addressing, Robin Hood linear probing, backward-shift
//! deletion, 8-byte buckets.
//!
//! Sized once for `max_orders` at a load factor <= 1/2, so it never grows (no allocation in
//! steady state) and never accumulates tombstones (deletion shifts the probe run back instead).
//!
//! A bucket holds the low 32 bits of the key's hash (`tag`) and the arena slot, not the key:
//! the key is the `id` of that arena slot. Halving the bucket from 16 to 8 bytes halves the
//! table's cache footprint (a random cancel's first, dependent load). The home bucket is
//! `tag & mask` (the table never exceeds 2^32 buckets), so Robin Hood distances and backward
//! shifts never look at the arena; only a tag match on a lookup by key reads the slot's id to
//! confirm, which is the slot every caller reads next anyway. For ids below 2^32 the tag is a
//! bijection of the id (see [`hash`]), so two live ids never share a tag and a lookup of an
//! absent id (the duplicate check of every submit) never touches the arena.
//!
//! Hash: `k ^ k>>7 ^ k>>17 ^ k>>32`, an invertible xor-shift that keeps *locality*: exchange ids
//! are mostly sequential, and consecutive ids land in neighbouring buckets, so the inserts of a
//! busy stream touch a sliding, cache-resident window of the table instead of a random cache
//! line per order (a multiplicative hash costs a cache miss per insert on a large book). Strided
//! or random ids are still spread by the folded-in high bits. Robin Hood ordering keeps probe
//! runs sorted by home bucket, which bounds probe lengths under clustering and lets a miss (the
//! duplicate-id check) stop early.

use crate::arena::{OrderSlot, NIL};
use crate::types::OrderId;

#[derive(Clone, Copy, Debug)]
#[repr(C, align(8))]
struct Entry {
    /// Low 32 bits of `hash(key)`; `tag & mask` is the home bucket.
    tag: u32,
    /// Arena slot (whose `id` is the key); `NIL` marks an empty bucket.
    val: u32,
}

const EMPTY: Entry = Entry { tag: 0, val: NIL };

/// Outcome of [`IdMap::probe`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Probe {
    /// The key is present: its bucket and arena slot.
    Found { bucket: usize, slot: u32 },
    /// The key is absent; [`IdMap::insert_vacant`] can insert it from here as long as the
    /// table has not changed since the probe.
    Vacant {
        bucket: usize,
        dist: usize,
        tag: u32,
    },
}

#[inline]
fn hash(key: OrderId) -> u32 {
    (key ^ (key >> 7) ^ (key >> 17) ^ (key >> 32)) as u32
}

#[derive(Debug)]
pub(crate) struct IdMap {
    table: Vec<Entry>,
    mask: usize,
}

impl IdMap {
    pub(crate) fn with_capacity(max_items: usize) -> Self {
        // <= 2^32 buckets so that a 32-bit tag determines the home bucket. (Only a book with
        // more than 2^31 orders gets a load factor above 1/2; max_items < 2^32 - 1 still
        // leaves an empty bucket, so probes terminate.)
        let size = (max_items.max(8) * 2).next_power_of_two().min(1 << 32);
        IdMap {
            table: vec![EMPTY; size],
            mask: size - 1,
        }
    }

    /// Distance of an entry with tag `tag` in bucket `i` from its home bucket.
    #[inline(always)]
    fn dist(mask: usize, tag: u32, i: usize) -> usize {
        i.wrapping_sub(tag as usize) & mask
    }

    // Every function below works on `table[..=mask]` and indexes it with `x & mask`: the
    // compiler can then see that every index is in bounds and drops the bounds checks, and the
    // table's pointer and the mask stay in registers (locals cannot be changed by the stores).

    /// Looks `key` up (`slots`: the arena, to confirm a tag match).
    #[inline]
    pub(crate) fn probe(&self, key: OrderId, slots: &[OrderSlot]) -> Probe {
        let mask = self.mask;
        let table = &self.table[..=mask];
        let tag = hash(key);
        let mut i = tag as usize & mask;
        let mut d = 0;
        loop {
            let e = table[i & mask];
            // Robin Hood: once we pass entries closer to their home than we are to ours,
            // `key` cannot be further on.
            if e.val == NIL || Self::dist(mask, e.tag, i) < d {
                return Probe::Vacant {
                    bucket: i,
                    dist: d,
                    tag,
                };
            }
            if e.tag == tag && slots[e.val as usize].id == key {
                return Probe::Found {
                    bucket: i,
                    slot: e.val,
                };
            }
            i = (i + 1) & mask;
            d += 1;
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: OrderId, slots: &[OrderSlot]) -> Option<u32> {
        match self.probe(key, slots) {
            Probe::Found { slot, .. } => Some(slot),
            Probe::Vacant { .. } => None,
        }
    }

    /// Inserts after a [`Probe::Vacant`] answer, with no change to the table in between.
    #[inline]
    pub(crate) fn insert_vacant(&mut self, bucket: usize, dist: usize, tag: u32, val: u32) {
        let mask = self.mask;
        let table = &mut self.table[..=mask];
        let mut cur = Entry { tag, val };
        let mut i = bucket & mask;
        let mut d = dist;
        loop {
            let e = table[i];
            if e.val == NIL {
                table[i] = cur;
                return;
            }
            let ed = Self::dist(mask, e.tag, i);
            if ed < d {
                // Take from the rich: the resident is closer to home, displace it.
                table[i] = cur;
                cur = e;
                d = ed;
            }
            i = (i + 1) & mask;
            d += 1;
        }
    }

    /// Inserts a key known to be absent. The caller guarantees fewer than `max_items` entries.
    #[inline]
    pub(crate) fn insert_new(&mut self, key: OrderId, val: u32) {
        let tag = hash(key);
        self.insert_vacant(tag as usize & self.mask, 0, tag, val);
    }

    /// Removes the entry in `bucket` (from a [`Probe::Found`] with no change since).
    #[inline]
    pub(crate) fn remove_at(&mut self, i: usize) {
        let mask = self.mask;
        Self::shift_back(&mut self.table[..=mask], mask, i & mask);
    }

    /// Backward shift from `i` until an empty bucket or an entry already at its home
    /// (`table` is `table[..=mask]`, `i <= mask`).
    #[inline(always)]
    fn shift_back(table: &mut [Entry], mask: usize, mut i: usize) {
        loop {
            let j = (i + 1) & mask;
            let e = table[j];
            if e.val == NIL || Self::dist(mask, e.tag, j) == 0 {
                table[i & mask] = EMPTY;
                return;
            }
            table[i & mask] = e;
            i = j;
        }
    }

    /// Removes the entry of `key`, known to be present and stored for arena slot `slot`
    /// (matched on the slot, so the arena is not read). Inlined into the sweep, which calls it
    /// once per filled maker.
    #[inline(always)]
    pub(crate) fn remove_present(&mut self, key: OrderId, slot: u32) {
        let mask = self.mask;
        let table = &mut self.table[..=mask];
        let mut i = hash(key) as usize & mask;
        while table[i].val != slot {
            i = (i + 1) & mask;
        }
        Self::shift_back(table, mask, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Side;
    use std::collections::HashMap;

    fn slot(id: OrderId) -> OrderSlot {
        OrderSlot {
            id,
            remaining: 1,
            filled: 0,
            level: 0,
            prev: NIL,
            next: NIL,
            side: Side::Buy,
        }
    }

    /// The key with high half `high` whose hash has low 32 bits `tag`.
    fn key_with_tag(tag: u32, high: u64) -> OrderId {
        let h = high as u32;
        // low ^ low>>7 ^ low>>17 == r: solved by fixed-point iteration (triangular system)
        let r = tag ^ h ^ (h << 25) ^ (h << 15);
        let mut low = r;
        for _ in 0..32 {
            low = r ^ (low >> 7) ^ (low >> 17);
        }
        let k = (high << 32) | low as u64;
        assert_eq!(hash(k), tag);
        k
    }

    #[test]
    fn matches_std_hashmap_under_churn() {
        let mut m = IdMap::with_capacity(64);
        let mut r: HashMap<u64, u32> = HashMap::new();
        // the "arena": slot -> key, with a free list of slots
        let mut slots: Vec<OrderSlot> = (0..64).map(|_| slot(u64::MAX)).collect();
        let mut free: Vec<u32> = (0..64).rev().collect();
        let mut x: u64 = 88172645463325252;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // small key space: 13 tags x 8 high halves, so live keys often share a tag
            // (confirmed through the arena), long probe runs, many collisions/deletions
            let k = key_with_tag((x % 13) as u32 * 5, (x >> 20) % 8);
            if let Some(&s) = r.get(&k) {
                if step % 2 == 0 {
                    match m.probe(k, &slots) {
                        Probe::Found { bucket, slot } => {
                            assert_eq!(slot, s);
                            m.remove_at(bucket);
                        }
                        Probe::Vacant { .. } => panic!("lost {k}"),
                    }
                } else {
                    m.remove_present(k, s);
                }
                r.remove(&k);
                free.push(s);
            } else if r.len() < 64 {
                let s = free.pop().unwrap();
                slots[s as usize] = slot(k);
                if step % 2 == 0 {
                    m.insert_new(k, s);
                } else {
                    match m.probe(k, &slots) {
                        Probe::Vacant { bucket, dist, tag } => {
                            m.insert_vacant(bucket, dist, tag, s)
                        }
                        Probe::Found { .. } => panic!("phantom {k}"),
                    }
                }
                r.insert(k, s);
            }
            for (&k2, &v) in &r {
                assert_eq!(m.get(k2, &slots), Some(v));
            }
            let other = k ^ 0xdead_0000_0000;
            assert_eq!(m.get(other, &slots), r.get(&other).copied());
        }
    }
}
