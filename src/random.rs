//! The one random source: aws-lc-rs's system generator. Used for ARI window picks, the run
//! jitter, Vault retry jitter, run ids and DNS probe values; none of them is a secret (keys
//! come from rcgen and aws-lc-rs directly).

/// `N` random bytes. Should the system generator ever fail, the clock and pid mixed stand
/// in (every use here only needs values that differ between runs).
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if aws_lc_rs::rand::fill(&mut out).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            ^ u128::from(std::process::id());
        for (i, b) in out.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(37);
        }
    }
    out
}

/// A random number in `[0, n)` (0 when `n` is 0).
pub fn below(n: u64) -> u64 {
    let r = u64::from_le_bytes(bytes::<8>());
    ((u128::from(r) * u128::from(n)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_below_and_varies() {
        let draws: Vec<u64> = (0..200).map(|_| below(10)).collect();
        assert!(draws.iter().all(|&d| d < 10));
        assert!(draws.iter().any(|&d| d != draws[0]));
        assert_eq!(below(0), 0);
        assert_ne!(bytes::<16>(), bytes::<16>());
    }
}
