//! Messages between the widget and its Web Workers, as JSON strings over
//! `postMessage`. Both sides compile this file, so they cannot drift apart.
//!
//! One thing does not travel as JSON: a transcription span's samples
//! (megabytes of floats). `ToWorker::Transcribe` is posted as an object,
//! `{"message": <its JSON>, "pcm": <Float32Array>}`, the array's buffer
//! transferred rather than copied.

use crate::task_kind::TaskKind;
use crate::transcription::TranscribeTask;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Identifies one run of one chunk inside one widget.
pub type JobId = u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    Run {
        job: JobId,
        work: TaskKind,
    },
    /// A span to transcribe; its samples are the message's `pcm`.
    Transcribe {
        job: JobId,
        work: Box<TranscribeTask>,
        /// The Hugging Face Hub (or a server with its path shape) that the
        /// worker fetches the model from.
        models_url: String,
        /// The span before's prompt (`SpanTranscript::prompt`), if known.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        previous: Vec<u32>,
    },
}

impl ToWorker {
    pub fn job(&self) -> JobId {
        match self {
            Self::Run { job, .. } | Self::Transcribe { job, .. } => *job,
        }
    }

    /// How long the job may run before its worker is terminated.
    pub fn time_limit_s(&self) -> Option<u32> {
        match self {
            Self::Run { work, .. } => work.time_limit_s(),
            Self::Transcribe { .. } => None,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::KernelTask;
    use crate::transcription::{AudioRef, Span, Stage, WhisperModel};
    use serde_json::json;

    #[test]
    fn every_job_names_itself_and_a_kernel_carries_its_time_limit() {
        let audio: AudioRef =
            serde_json::from_value(json!({"message": "$voice", "url": "mxc://hs/a"})).unwrap();
        let span = TranscribeTask {
            stage: Stage::Spans(vec![Span {
                start_ms: 0,
                end_ms: 9_000,
            }]),
            ..TranscribeTask::plan(audio, WhisperModel::TinyEn)
        };
        let transcribe = ToWorker::Transcribe {
            job: 7,
            work: Box::new(span),
            models_url: "https://huggingface.co".into(),
            previous: vec![50363, 440],
        };
        let text = serde_json::to_string(&transcribe).unwrap();
        assert!(text.contains(r#""type":"transcribe""#), "{text}");
        let read: ToWorker = serde_json::from_str(&text).unwrap();
        assert_eq!(read, transcribe);
        assert_eq!((read.job(), read.time_limit_s()), (7, None));

        let kernel: KernelTask = serde_json::from_value(json!({
            "wgsl": "@compute @workgroup_size(1) fn main() {}", "entry": "main",
            "workgroups": [1, 1, 1], "output_words": 1, "chunks": [[0]], "max_seconds": 3}))
        .unwrap();
        let run = ToWorker::Run {
            job: 8,
            work: TaskKind::Kernel(Box::new(kernel)),
        };
        assert_eq!((run.job(), run.time_limit_s()), (8, Some(3)));
    }
}
