//! Session tokens: 256 bits from the OS CSPRNG, sent as base64url, and
//! stored only as their SHA-256 digest.
//!
//! Keeping the digest rather than the token means a heap dump of the cache
//! holds no usable credential, and a lookup by digest needs no
//! constant-time comparison: an attacker timing the hash table learns
//! about digests, not about tokens.

use std::fmt;
use std::hash::{Hash, Hasher};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The SHA-256 of a token: the cache key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    /// Digest of a presented token (any string; unknown ones simply miss).
    pub fn of(token: &str) -> TokenDigest {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    /// 64 bits for hashing inside a shard.
    #[inline]
    pub(crate) fn hash_bits(&self) -> u64 {
        u64::from_le_bytes(self.0[0..8].try_into().expect("8 bytes"))
    }

    /// 64 bits, independent of [`hash_bits`](Self::hash_bits), that pick the shard.
    #[inline]
    pub(crate) fn shard_bits(&self) -> u64 {
        u64::from_le_bytes(self.0[8..16].try_into().expect("8 bytes"))
    }

    /// The shard of `shards` this session lives in.
    #[inline]
    pub(crate) fn pick<'a, T>(&self, shards: &'a [T]) -> &'a T {
        &shards[self.pick_index(shards.len())]
    }

    /// The index of that shard among `n`.
    #[inline]
    pub(crate) fn pick_index(&self, n: usize) -> usize {
        (self.shard_bits() % n as u64) as usize
    }

    /// 64 bits that name the session in the evicted/expired tombstones.
    #[inline]
    pub(crate) fn tomb_bits(&self) -> u64 {
        u64::from_le_bytes(self.0[16..24].try_into().expect("8 bytes"))
    }
}

impl Hash for TokenDigest {
    /// The digest is already uniformly random: feed 64 of its bits to
    /// [`DigestHasher`] rather than hashing 32 bytes again.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash_bits());
    }
}

impl fmt::Debug for TokenDigest {
    /// Prints a short prefix only: enough to correlate, useless to an attacker.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenDigest({:02x}{:02x}{:02x}{:02x}..)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A pass-through hasher for keys that are already random (digests).
#[derive(Default, Clone, Copy)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for keys other than digests; FNV-1a keeps it correct.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// Builds [`DigestHasher`]s for the cache's maps.
pub(crate) type DigestBuildHasher = std::hash::BuildHasherDefault<DigestHasher>;

/// A fresh token and its digest.
pub fn issue() -> (String, TokenDigest) {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).expect("the OS CSPRNG is available");
    let token = URL_SAFE_NO_PAD.encode(raw);
    let digest = TokenDigest::of(&token);
    (token, digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_base64url_and_unique() {
        let (a, da) = issue();
        let (b, db) = issue();
        assert_eq!(a.len(), 43, "32 bytes base64url without padding");
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, b);
        assert_ne!(da, db);
        assert_eq!(TokenDigest::of(&a), da);
    }

    #[test]
    fn debug_output_hides_the_digest() {
        let (_, d) = issue();
        assert!(format!("{d:?}").len() < 24);
    }
}
