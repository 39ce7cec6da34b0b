//! The homeserver's time, as seen from this browser.
//!
//! Leases and heartbeats are judged against `origin_server_ts`, so the widget
//! needs "now" on the homeserver's clock, not the friend's possibly wrong one.
//! An event is stamped before it reaches us, so `stamp - arrival` is at most the
//! true offset; the largest sample is the best estimate.

#[derive(Debug, Clone, Default)]
pub struct ServerClock {
    offset_ms: Option<i64>,
}

impl ServerClock {
    /// Learns from a live event stamped `origin_server_ts` that arrived at local time `local_ms`.
    pub fn observe(&mut self, origin_server_ts: u64, local_ms: f64) {
        let sample = origin_server_ts as i64 - local_ms as i64;
        self.offset_ms = Some(self.offset_ms.map_or(sample, |o| o.max(sample)));
    }

    pub fn now(&self, local_ms: f64) -> u64 {
        (local_ms as i64 + self.offset_ms.unwrap_or(0)).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_local_clock_is_corrected_by_the_best_sample() {
        let mut clock = ServerClock::default();
        assert_eq!(clock.now(1_000.0), 1_000);
        // The server is 60 s ahead; events take 200 ms and 50 ms to arrive.
        clock.observe(61_000, 1_200.0);
        clock.observe(62_000, 2_050.0);
        assert_eq!(clock.now(3_000.0), 62_950);
    }
}
