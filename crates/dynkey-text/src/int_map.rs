//! Hash maps keyed by integers the process made itself (key addresses,
//! site indexes): a multiplicative hash instead of SipHash, whose resistance
//! to chosen keys buys nothing here and costs a commit of 100,000 sites
//! several milliseconds.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Fibonacci hashing, folded so both the low bits (the bucket) and the high
/// bits (hashbrown's tag) vary with every bit of the key.
#[derive(Debug, Default, Clone, Copy)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ b as u64);
        }
    }

    fn write_u64(&mut self, n: u64) {
        let h = (n ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 29);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A `HashMap` with [`IntHasher`].
pub type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    #[test]
    fn aligned_addresses_spread_over_low_and_high_bits() {
        let b = BuildHasherDefault::<IntHasher>::default();
        let hashes: Vec<u64> = (0..4096usize)
            .map(|i| b.hash_one(0x5555_0000_0000 + i * 8))
            .collect();
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 0xfff).collect();
        let high: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(low.len() > 2500, "buckets: {} distinct of 4096", low.len());
        assert_eq!(high.len(), 128, "every tag value is used");
        let mut h = IntHasher::default();
        7u32.hash(&mut h);
        assert_ne!(h.finish(), 0);
    }
}
