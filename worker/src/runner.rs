//! Runs one job: from a `ToWorker` message to the `FromWorker` messages it produces.

use crate::primes::count_primes;
use manifest::task_kind::TaskKind;
use manifest::worker_protocol::{FromWorker, ToWorker};
use serde_json::json;

/// Progress is reported at most this often (as a fraction of the job), so a
/// fast job does not flood the widget with messages.
const PROGRESS_STEP: f32 = 0.02;

/// Handles one message from the widget, sending replies through `post`.
pub fn handle(message: &str, mut post: impl FnMut(FromWorker)) {
    match ToWorker::read(message) {
        Ok(request) => run(request, post),
        Err(e) => post(FromWorker::Unreadable {
            reason: format!("the worker could not read its job: {e}"),
        }),
    }
}

/// Runs one job already read, sending replies through `post`.
pub fn run(request: ToWorker, mut post: impl FnMut(FromWorker)) {
    match request {
        ToWorker::Run { job, work } => match work {
            TaskKind::Primes { start, end } => {
                let mut reported = 0.0;
                let count = count_primes(start, end, |fraction| {
                    if fraction - reported >= PROGRESS_STEP {
                        reported = fraction;
                        post(FromWorker::Progress { job, fraction });
                    }
                });
                post(FromWorker::Done {
                    job,
                    output: json!({ "count": count }),
                });
            }
            // Friends' scripts never run in Potluck's own worker, which can
            // reach the widget's origin: the widget runs them in a sandbox.
            TaskKind::Script(_) => post(FromWorker::Failed {
                job,
                reason: "script tasks run in the sandbox, not in Potluck's worker".into(),
            }),
            // They need the model and the audio: the wasm entry runs them.
            TaskKind::Transcribe(_) => post(FromWorker::Failed {
                job,
                reason:
                    "a transcription needs its audio and a model, which only the browser worker has"
                        .into(),
            }),
            // Asynchronous (the GPU answers later): the wasm entry runs them.
            TaskKind::Kernel(_) => post(FromWorker::Failed {
                job,
                reason: "a WebGPU kernel runs in the browser worker's GPU queue".into(),
            }),
        },
        // Its samples come beside the message: the wasm entry runs it.
        ToWorker::Transcribe { job, .. } => post(FromWorker::Failed {
            job,
            reason:
                "a span to transcribe comes with its samples, which only the browser worker reads"
                    .into(),
        }),
        // The wasm entry loads it; anywhere else there is no job to answer.
        ToWorker::LoadModel { model, .. } => post(FromWorker::ModelFailed {
            model,
            reason: "only the browser worker loads a model ahead".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_primes_job_reports_progress_then_its_count() {
        let mut replies = vec![];
        let job = serde_json::to_string(&ToWorker::Run {
            job: 7,
            work: TaskKind::Primes {
                start: 0,
                end: 2_000_000,
            },
        })
        .unwrap();
        handle(&job, |reply| replies.push(reply));
        assert!(matches!(replies[0], FromWorker::Progress { job: 7, .. }));
        assert_eq!(
            replies.last(),
            Some(&FromWorker::Done {
                job: 7,
                output: json!({"count": 148_933})
            })
        );
    }

    #[test]
    fn an_unreadable_message_is_a_failure_not_a_crash() {
        let mut replies = vec![];
        handle("{\"type\": \"dance\"}", |reply| replies.push(reply));
        assert!(
            matches!(&replies[..], [FromWorker::Unreadable { reason }] if reason.contains("could not read")),
            "no job id is made up for it: {replies:?}"
        );
    }
}
