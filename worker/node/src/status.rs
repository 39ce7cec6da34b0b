//! The node's one-line status, logged every minute and on leaving.

use manifest::agreement::Agreement;
use std::fmt;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Status {
    pub chunks_done: u64,
    pub running: usize,
    /// Events waiting for the homeserver's rate limit.
    pub queued_sends: usize,
    pub models_loaded: Vec<String>,
    /// The tasks as this node's ledger has them: nodes that agree print the
    /// same digest.
    pub ledger: Option<Agreement>,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let models = match self.models_loaded.is_empty() {
            true => "no model loaded".to_owned(),
            false => format!("model {} loaded", self.models_loaded.join(", ")),
        };
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        write!(
            f,
            "{} done, {} running, {} queued, {models}",
            plural(self.chunks_done, "chunk", "chunks"),
            self.running,
            plural(self.queued_sends as u64, "event", "events"),
        )?;
        match &self.ledger {
            Some(ledger) => write!(f, "; {ledger}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_work_done_queue_and_model() {
        let status = Status {
            chunks_done: 12,
            running: 1,
            queued_sends: 3,
            models_loaded: vec!["tiny.en".into()],
            ledger: Some(Agreement {
                tasks: 4,
                done: 3,
                digest: "0123456789abcdef".into(),
            }),
        };
        assert_eq!(
            status.to_string(),
            "12 chunks done, 1 running, 3 events queued, model tiny.en loaded; ledger: 4 tasks, 3 done, digest 0123456789abcdef"
        );
        let idle = Status {
            chunks_done: 1,
            queued_sends: 1,
            ..Status::default()
        };
        assert_eq!(
            idle.to_string(),
            "1 chunk done, 0 running, 1 event queued, no model loaded"
        );
    }
}
