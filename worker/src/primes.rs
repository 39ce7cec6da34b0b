//! Counting primes in a range with a segmented sieve of Eratosthenes: memory
//! stays at `sqrt(end)` plus one segment, whatever the range.

/// Bytes per sieve segment: fits the L1/L2 cache of any machine a friend has.
const SEGMENT: u64 = 1 << 16;

/// Primes up to and including `limit`. Products in u64: `usize` is 32 bits
/// in wasm, where `n * n` wrapped past 2^32 and miscounted every range
/// ending above about 10^12 (`sqrt(end)` past 65,536 squared).
fn base_primes(limit: u64) -> Vec<u64> {
    let mut composite = vec![false; limit as usize + 1];
    let mut primes = Vec::new();
    for n in 2..=limit {
        if !composite[n as usize] {
            primes.push(n);
            let mut multiple = n * n;
            while multiple <= limit {
                composite[multiple as usize] = true;
                multiple += n;
            }
        }
    }
    primes
}

fn isqrt(n: u64) -> u64 {
    let mut root = (n as f64).sqrt() as u64;
    while root * root > n {
        root -= 1;
    }
    while (root + 1) * (root + 1) <= n {
        root += 1;
    }
    root
}

/// Counts primes `p` with `start <= p < end`, calling `progress` with the
/// fraction done after each segment.
pub fn count_primes(start: u64, end: u64, mut progress: impl FnMut(f32)) -> u64 {
    if end <= 2 || start >= end {
        return 0;
    }
    let start = start.max(2);
    let primes = base_primes(isqrt(end - 1));
    let mut count = 0;
    let mut sieve = vec![true; SEGMENT as usize];
    let mut low = start;
    while low < end {
        let high = (low + SEGMENT).min(end);
        let len = (high - low) as usize;
        sieve[..len].fill(true);
        for &p in &primes {
            if p * p >= high {
                break;
            }
            // First multiple of p in [low, high) that is not p itself.
            let first = (low.div_ceil(p) * p).max(p * p);
            let mut multiple = first;
            while multiple < high {
                sieve[(multiple - low) as usize] = false;
                multiple += p;
            }
        }
        count += sieve[..len].iter().filter(|&&is_prime| is_prime).count() as u64;
        low = high;
        progress((low - start) as f32 / (end - start) as f32);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(start: u64, end: u64) -> u64 {
        (start..end)
            .filter(|&n| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
            .count() as u64
    }

    #[test]
    fn known_prime_counts() {
        assert_eq!(count_primes(0, 100, |_| {}), 25);
        assert_eq!(count_primes(0, 1_000_000, |_| {}), 78_498);
        assert_eq!(count_primes(0, 10_000_000, |_| {}), 664_579);
    }

    #[test]
    fn arbitrary_ranges_match_trial_division() {
        for (start, end) in [
            (0, 2),
            (2, 3),
            (0, 3),
            (90, 97),
            (90, 98),
            (65_530, 131_090),
            (999_000, 1_001_000),
        ] {
            assert_eq!(
                count_primes(start, end, |_| {}),
                naive(start, end),
                "[{start}, {end})"
            );
        }
    }

    #[test]
    fn chunks_add_up_to_the_whole() {
        let whole = count_primes(1_000, 500_000, |_| {});
        let parts: u64 = [(1_000, 70_001), (70_001, 300_017), (300_017, 500_000)]
            .iter()
            .map(|&(s, e)| count_primes(s, e, |_| {}))
            .sum();
        assert_eq!(parts, whole);
    }

    #[test]
    fn progress_rises_to_one() {
        let mut last = 0.0;
        count_primes(0, 1_000_000, |f| {
            assert!(f >= last);
            last = f;
        });
        assert_eq!(last, 1.0);
    }
}
