//! A node's own send budget: a token bucket a little under the homeserver's
//! per-account limit, so a node spends its events where they matter instead of
//! collecting `M_LIMIT_EXCEEDED`.

#[derive(Debug, Clone)]
pub struct RateBudget {
    tokens: f64,
    at_ms: u64,
    burst: f64,
    per_second: f64,
}

impl RateBudget {
    /// Full at first: `burst` events at once, then `per_second`.
    pub fn new(burst: f64, per_second: f64) -> Self {
        Self {
            tokens: burst,
            at_ms: 0,
            burst,
            per_second,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        if now_ms > self.at_ms {
            let earned = (now_ms - self.at_ms) as f64 / 1000.0 * self.per_second;
            self.tokens = (self.tokens + earned).min(self.burst);
            self.at_ms = now_ms;
        }
    }

    /// How many events the budget allows now.
    pub fn available(&mut self, now_ms: u64) -> usize {
        self.refill(now_ms);
        self.tokens as usize
    }

    /// Takes one event's worth of budget if there is one.
    pub fn try_take(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The homeserver refused a send: spend nothing until `until_ms`, then
    /// earn budget again from empty.
    pub fn pause_until(&mut self, until_ms: u64) {
        self.tokens = 0.0;
        self.at_ms = self.at_ms.max(until_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{RATE_BURST, RATE_EVENTS_PER_SECOND};

    fn node_budget() -> RateBudget {
        RateBudget::new(RATE_BURST, RATE_EVENTS_PER_SECOND)
    }

    #[test]
    fn a_burst_of_five_then_an_event_every_six_and_a_half_seconds() {
        let mut budget = node_budget();
        assert!((0..5).all(|_| budget.try_take(0)));
        assert!(!budget.try_take(0));
        assert!(!budget.try_take(6_600));
        assert!(budget.try_take(6_700));
        assert!(!budget.try_take(6_701));
    }

    #[test]
    fn a_refusal_pauses_sending_until_the_server_allows_it() {
        let mut budget = node_budget();
        assert!(budget.try_take(1_000));
        budget.pause_until(4_000);
        assert!(!budget.try_take(3_999));
        assert!(!budget.try_take(10_600));
        assert!(budget.try_take(10_700));
    }
}
