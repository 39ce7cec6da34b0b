//! Usage per friend, decaying like BOINC's recent average credit, and the
//! order in which friends get free slots.
//!
//! A friend who queued a thousand tasks must not hold up another friend's one
//! task: whenever a slot frees, it goes to the friend with the fewest chunks
//! running, then the least recent usage.

use crate::ids::UserId;
use crate::limits::USAGE_HALF_LIFE_MS;
use crate::sorted_map::SortedMap;

/// Compute-seconds and finished chunks per friend, decayed over time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    per_user: SortedMap<UserId, UserUsage>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UserUsage {
    /// Decayed compute-seconds as of `at_ms`.
    pub recent_seconds: f64,
    /// Chunks finished for this friend, ever.
    pub chunks_done: u64,
    /// Compute-seconds for this friend, ever.
    pub total_seconds: f64,
    pub at_ms: u64,
}

fn decay(value: f64, from_ms: u64, to_ms: u64) -> f64 {
    if to_ms <= from_ms {
        return value;
    }
    value * 0.5f64.powf((to_ms - from_ms) as f64 / USAGE_HALF_LIFE_MS as f64)
}

impl Usage {
    /// Accounts one finished chunk that ran for `seconds` at homeserver time `at_ms`.
    pub fn record(&mut self, user: &UserId, seconds: f64, at_ms: u64) {
        let entry = self.per_user.entry(user.clone()).or_default();
        entry.recent_seconds = decay(entry.recent_seconds, entry.at_ms, at_ms) + seconds;
        entry.at_ms = entry.at_ms.max(at_ms);
        entry.chunks_done += 1;
        entry.total_seconds += seconds;
    }

    /// Recent usage of `user` as of `now_ms`.
    pub fn recent(&self, user: &UserId, now_ms: u64) -> f64 {
        self.per_user
            .get(user)
            .map_or(0.0, |u| decay(u.recent_seconds, u.at_ms, now_ms))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&UserId, &UserUsage)> {
        self.per_user.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_halves_every_half_life() {
        let alice = UserId::parse("@alice:hs").unwrap();
        let mut usage = Usage::default();
        usage.record(&alice, 100.0, 0);
        assert!((usage.recent(&alice, USAGE_HALF_LIFE_MS) - 50.0).abs() < 1e-9);
        usage.record(&alice, 10.0, USAGE_HALF_LIFE_MS);
        assert!((usage.recent(&alice, USAGE_HALF_LIFE_MS) - 60.0).abs() < 1e-9);
        assert_eq!(usage.iter().next().unwrap().1.chunks_done, 2);
    }
}
