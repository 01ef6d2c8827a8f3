//! A tiny per-virtual-user PRNG (SplitMix64).
//!
//! Load generation needs randomness that is cheap, reproducible from
//! `--seed` and independent between virtual users, not randomness that is
//! secure: two runs with the same seed pick the same flows, users and
//! `{random_hex:N}` values, which makes runs comparable.

use std::cell::Cell;

/// SplitMix64 state behind a `Cell`, so templates can draw from it through a
/// shared `&RenderCtx` without the engine juggling `&mut` borrows. Not `Sync`
/// on purpose: each virtual user owns one.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: Cell<u64>,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// The generator of virtual user `vu` in a run seeded with `seed`.
    /// Different users get unrelated streams even for adjacent numbers.
    pub(crate) fn for_vu(seed: u64, vu: u32) -> Rng {
        Rng {
            state: Cell::new(mix(
                seed ^ mix(u64::from(vu).wrapping_add(1).wrapping_mul(GOLDEN))
            )),
        }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&self) -> u64 {
        let s = self.state.get().wrapping_add(GOLDEN);
        self.state.set(s);
        mix(s)
    }

    /// A value in `0..n` (Lemire's multiply-shift; the tiny bias is
    /// irrelevant for load shaping). Returns 0 when `n` is 0.
    pub(crate) fn below(&self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_vu_give_the_same_stream() {
        let a = Rng::for_vu(42, 7);
        let b = Rng::for_vu(42, 7);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
    }

    #[test]
    fn different_vus_or_seeds_diverge() {
        let base = Rng::for_vu(42, 7).next_u64();
        assert_ne!(base, Rng::for_vu(42, 8).next_u64());
        assert_ne!(base, Rng::for_vu(43, 7).next_u64());
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let r = Rng::for_vu(1, 0);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let v = r.below(10);
            assert!(v < 10);
            seen[v as usize] += 1;
        }
        // Each bucket expects 1000; a broken generator would starve some.
        assert!(seen.iter().all(|&c| (850..1150).contains(&c)), "{seen:?}");
        assert_eq!(r.below(0), 0);
    }
}
