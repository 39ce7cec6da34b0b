//! What every node must agree on, as one short fingerprint: each task's
//! submitter and status, and who did each chunk with what output. Nodes that
//! saw the same room print the same fingerprint whatever order their events
//! came in, so a log line is enough to check that a pool agrees (the scale
//! check compares twenty).

use crate::digest::sha256_hex;
use crate::ledger::{Ledger, TaskStatus};
use std::fmt;

/// A ledger's tasks in brief, and their fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    pub tasks: usize,
    pub done: usize,
    /// The first 16 hex digits of a SHA-256 over every task, by event id.
    pub digest: String,
}

impl Agreement {
    pub fn of(ledger: &Ledger, now: u64) -> Self {
        let mut tasks: Vec<_> = ledger.tasks().collect();
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        let mut text = String::new();
        let mut done = 0;
        for task in &tasks {
            let status = ledger.task_status(task, now);
            done += usize::from(matches!(status, TaskStatus::Done { .. }));
            text.push_str(&format!("{} {} {status:?}\n", task.id, task.submitter));
            for chunk in &task.chunks {
                match chunk.done() {
                    Some(d) => text.push_str(&format!(" {} {}\n", d.node, d.output)),
                    None => text.push_str(" -\n"),
                }
            }
        }
        Self {
            tasks: tasks.len(),
            done,
            digest: sha256_hex(text.as_bytes())[..16].to_owned(),
        }
    }
}

impl fmt::Display for Agreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ledger: {} tasks, {} done, digest {}",
            self.tasks, self.done, self.digest
        )
    }
}
