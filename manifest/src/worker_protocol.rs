//! Messages between the widget and its Web Workers, as JSON strings over
//! `postMessage`. Both sides compile this file, so they cannot drift apart.

use crate::task_kind::TaskKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Identifies one run of one chunk inside one widget.
pub type JobId = u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    Run { job: JobId, work: TaskKind },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// The worker's wasm is loaded and it takes jobs.
    Ready,
    Progress {
        job: JobId,
        fraction: f32,
    },
    Done {
        job: JobId,
        output: Value,
    },
    Failed {
        job: JobId,
        reason: String,
    },
    /// The worker could not read the message it was sent, so it names no job
    /// (every id is a real job's): the widget fails the one that worker holds.
    Unreadable {
        reason: String,
    },
    /// Something the friend should know while `job` runs, that does not
    /// change its outcome (the browser would not keep the model: it will
    /// download again).
    Notice {
        job: JobId,
        text: String,
    },
}
