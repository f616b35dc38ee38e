//! Two-level bitmap of non-empty price levels.
//!
//! `words` holds one bit per price level; `summary` one bit per non-zero word. Finding the next
//! non-empty level after a level empties is then a couple of `trailing_zeros`/`leading_zeros`
//! instructions for any gap up to 4096 ticks, and one summary word per further 4096 ticks, instead
//! of a scan over every empty level in between.

pub(crate) const NONE: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub(crate) struct LevelBits {
    words: Vec<u64>,
    summary: Vec<u64>,
}

impl LevelBits {
    pub(crate) fn new(n: usize) -> Self {
        let nwords = n.div_ceil(64).max(1);
        let nsum = nwords.div_ceil(64);
        LevelBits {
            words: vec![0; nwords],
            summary: vec![0; nsum],
        }
    }

    #[inline]
    pub(crate) fn set(&mut self, i: u32) {
        let w = (i >> 6) as usize;
        self.words[w] |= 1u64 << (i & 63);
        self.summary[w >> 6] |= 1u64 << (w & 63);
    }

    #[inline]
    pub(crate) fn clear(&mut self, i: u32) {
        let w = (i >> 6) as usize;
        self.words[w] &= !(1u64 << (i & 63));
        if self.words[w] == 0 {
            self.summary[w >> 6] &= !(1u64 << (w & 63));
        }
    }

    /// Clears `i`, the best set index of a side (the highest when `BID`, else the lowest),
    /// and returns the new best: the largest set index `< i` (`BID`) or the smallest `> i`.
    ///
    /// Since `i` is the extreme set bit, what is left of its word after the clear lies wholly
    /// on the worse side, so the answer is that word's top/bottom bit, found from the value
    /// just computed in a register (no mask, no store and read back). In a sweep this is the
    /// step from one level to the next, on the critical path of every level.
    #[inline]
    pub(crate) fn clear_best_and_next<const BID: bool>(&mut self, i: u32) -> u32 {
        let w = (i >> 6) as usize;
        let word = self.words[w] & !(1u64 << (i & 63));
        self.words[w] = word;
        debug_assert!(if BID {
            word >> (i & 63) == 0
        } else {
            word & ((1u64 << (i & 63)) - 1) == 0
        });
        if word != 0 {
            let bit = if BID {
                63 - word.leading_zeros()
            } else {
                word.trailing_zeros()
            };
            return ((w as u32) << 6) | bit;
        }
        self.summary[w >> 6] &= !(1u64 << (w & 63));
        if BID {
            if w == 0 {
                NONE
            } else {
                self.next_at_or_below(((w as u32) << 6) - 1)
            }
        } else {
            self.next_at_or_above(((w as u32) + 1) << 6)
        }
    }

    /// Smallest set index `>= i`, or `NONE`.
    #[inline]
    pub(crate) fn next_at_or_above(&self, i: u32) -> u32 {
        let w = (i >> 6) as usize;
        if w >= self.words.len() {
            return NONE;
        }
        let bits = self.words[w] & (!0u64 << (i & 63));
        if bits != 0 {
            return ((w as u32) << 6) | bits.trailing_zeros();
        }
        // Search the summary for the next non-empty word strictly after `w`.
        let w1 = w + 1;
        let mut s = w1 >> 6;
        if s >= self.summary.len() {
            return NONE;
        }
        let mut sbits = if (w1 & 63) == 0 {
            self.summary[s]
        } else {
            self.summary[s] & (!0u64 << (w1 & 63))
        };
        loop {
            if sbits != 0 {
                let wi = (s << 6) | sbits.trailing_zeros() as usize;
                return ((wi as u32) << 6) | self.words[wi].trailing_zeros();
            }
            s += 1;
            if s >= self.summary.len() {
                return NONE;
            }
            sbits = self.summary[s];
        }
    }

    /// Largest set index `<= i`, or `NONE`.
    #[inline]
    pub(crate) fn next_at_or_below(&self, i: u32) -> u32 {
        if i == NONE {
            return NONE;
        }
        let w = (i >> 6) as usize;
        let bits = self.words[w] & (!0u64 >> (63 - (i & 63)));
        if bits != 0 {
            return ((w as u32) << 6) | (63 - bits.leading_zeros());
        }
        if w == 0 {
            return NONE;
        }
        // Search the summary for the previous non-empty word strictly before `w`.
        let w1 = w - 1;
        let mut s = w1 >> 6;
        let mut sbits = self.summary[s] & (!0u64 >> (63 - (w1 & 63)));
        loop {
            if sbits != 0 {
                let wi = (s << 6) | (63 - sbits.leading_zeros()) as usize;
                return ((wi as u32) << 6) | (63 - self.words[wi].leading_zeros());
            }
            if s == 0 {
                return NONE;
            }
            s -= 1;
            sbits = self.summary[s];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_above_and_below_match_a_linear_scan() {
        let n = 64 * 64 * 3 + 17;
        let mut b = LevelBits::new(n);
        let mut set = vec![false; n];
        let mut x: u64 = 0x1234_5678;
        for _ in 0..400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x % n as u64) as usize;
            if set[i] {
                b.clear(i as u32);
            } else {
                b.set(i as u32);
            }
            set[i] = !set[i];
            let q = ((x >> 20) % n as u64) as usize;
            let above = (q..n).find(|&j| set[j]).map_or(NONE, |j| j as u32);
            let below = (0..=q).rev().find(|&j| set[j]).map_or(NONE, |j| j as u32);
            assert_eq!(b.next_at_or_above(q as u32), above);
            assert_eq!(b.next_at_or_below(q as u32), below);
        }
        assert_eq!(b.next_at_or_above(n as u32 + 1000), NONE);
    }

    #[test]
    fn clear_best_and_next_matches_a_linear_scan() {
        // sparse and dense patterns: gaps inside a word, across words and across summary words
        let n = 64 * 64 * 3 + 17;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for density in [1u64, 2, 9, 200, 3000] {
            let mut set = vec![false; n];
            let mut b = LevelBits::new(n);
            for (i, s) in set.iter_mut().enumerate() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x.is_multiple_of(density) {
                    *s = true;
                    b.set(i as u32);
                }
            }
            let live: Vec<u32> = (0..n as u32).filter(|&i| set[i as usize]).collect();
            // asks: clear the lowest set index again and again
            let mut asks = b.clone();
            for (k, &i) in live.iter().enumerate() {
                let expected = live.get(k + 1).copied().unwrap_or(NONE);
                assert_eq!(asks.clear_best_and_next::<false>(i), expected, "ask {i}");
            }
            assert_eq!(asks.next_at_or_above(0), NONE);
            // bids: clear the highest set index again and again
            let mut bids = b.clone();
            for (k, &i) in live.iter().enumerate().rev() {
                let expected = if k == 0 { NONE } else { live[k - 1] };
                assert_eq!(bids.clear_best_and_next::<true>(i), expected, "bid {i}");
            }
            assert_eq!(bids.next_at_or_below(n as u32 - 1), NONE);
        }
    }
}
