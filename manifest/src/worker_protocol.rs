//! Messages between the widget and its Web Workers, as JSON strings over
//! `postMessage`. Both sides compile this file, so they cannot drift apart.
//!
//! One thing does not travel as JSON: a transcription span's samples
//! (megabytes of floats). `ToWorker::Transcribe` is posted as an object,
//! `{"message": <its JSON>, "pcm": <Float32Array>}`, the array's buffer
//! transferred rather than copied.

use crate::events::read::{field, typed};
use crate::task_kind::TaskKind;
use crate::transcription::{TranscribeTask, WhisperModel};
use serde::Serialize;
use serde_json::Value;

/// Identifies one run of one chunk inside one widget.
pub type JobId = u64;

/// Written by the widget with serde, read by the worker with `read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// Load a Whisper model before any span needs it, so that the first
    /// voice message does not wait for its download (see `WorkerPool::warm`).
    LoadModel {
        model: WhisperModel,
        models_url: String,
    },
}

impl ToWorker {
    /// A message from the widget, as its serde wrote it. Read by hand, as
    /// `FromWorker::read` is: serde's derived reader of a tagged enum buffers
    /// the message in its generic content type, and would read every task
    /// kind a second way beside the way room events are read (`Value`).
    pub fn read(text: &str) -> Result<Self, String> {
        let message: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let field = |key: &str| field(&message, key);
        let job = || field("job").and_then(typed::<JobId>);
        let models_url = || field("models_url").and_then(typed::<String>);
        Ok(match field("type")?.as_str().unwrap_or_default() {
            "run" => Self::Run {
                job: job()?,
                work: typed(field("work")?)?,
            },
            "transcribe" => Self::Transcribe {
                job: job()?,
                work: typed(field("work")?)?,
                models_url: models_url()?,
                previous: message.get("previous").map_or(Ok(Vec::new()), typed)?,
            },
            "load_model" => Self::LoadModel {
                model: typed(field("model")?)?,
                models_url: models_url()?,
            },
            other => return Err(format!("unknown variant `{other}`")),
        })
    }

    /// The job this message runs; loading a model is no job.
    pub fn job(&self) -> Option<JobId> {
        match self {
            Self::Run { job, .. } | Self::Transcribe { job, .. } => Some(*job),
            Self::LoadModel { .. } => None,
        }
    }

    /// The Whisper model the worker needs for it, if any.
    pub fn model(&self) -> Option<WhisperModel> {
        match self {
            Self::Transcribe { work, .. } => Some(work.model),
            Self::LoadModel { model, .. } => Some(*model),
            Self::Run { .. } => None,
        }
    }

    /// How long the job may run before its worker is terminated.
    pub fn time_limit_s(&self) -> Option<u32> {
        match self {
            Self::Run { work, .. } => work.time_limit_s(),
            Self::Transcribe { .. } | Self::LoadModel { .. } => None,
        }
    }
}

/// Written by the worker with serde, read by the widget with `read`.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// A model `ToWorker::LoadModel` asked for is loaded.
    ModelLoaded {
        model: WhisperModel,
    },
    /// A model `ToWorker::LoadModel` asked for could not be loaded; a span
    /// that needs it tries again and fails with the reason.
    ModelFailed {
        model: WhisperModel,
        reason: String,
    },
    /// Something the friend should know, that changes no job's outcome (how
    /// far the model's download got; the browser would not keep it).
    Notice {
        text: String,
    },
}

impl FromWorker {
    /// A worker's message, as the worker's serde wrote it. Read by hand: the
    /// derived reader of a tagged enum buffers each message in serde's
    /// generic content type, which was 18 KB of the widget UI's wasm.
    pub fn read(message: &Value) -> Result<Self, String> {
        let field = |key: &str| field(message, key);
        let text = |key: &str| {
            (field(key)?.as_str().map(str::to_owned)).ok_or_else(|| format!("`{key}` is not text"))
        };
        let job = || (field("job")?.as_u64()).ok_or_else(|| "`job` is not a job id".to_owned());
        let model = || {
            let name = text("model")?;
            WhisperModel::parse(&name).ok_or_else(|| format!("unknown model `{name}`"))
        };
        Ok(match field("type")?.as_str().unwrap_or_default() {
            "ready" => Self::Ready,
            "progress" => Self::Progress {
                job: job()?,
                fraction: (field("fraction")?.as_f64())
                    .ok_or_else(|| "`fraction` is not a number".to_owned())?
                    as f32,
            },
            "done" => Self::Done {
                job: job()?,
                output: field("output")?.clone(),
            },
            "failed" => Self::Failed {
                job: job()?,
                reason: text("reason")?,
            },
            "unreadable" => Self::Unreadable {
                reason: text("reason")?,
            },
            "model_loaded" => Self::ModelLoaded { model: model()? },
            "model_failed" => Self::ModelFailed {
                model: model()?,
                reason: text("reason")?,
            },
            "notice" => Self::Notice {
                text: text("text")?,
            },
            other => return Err(format!("unknown variant `{other}`")),
        })
    }
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
        let read = ToWorker::read(&text).unwrap();
        assert_eq!(read, transcribe);
        assert_eq!((read.job(), read.time_limit_s()), (Some(7), None));
        assert_eq!(read.model(), Some(WhisperModel::TinyEn));

        let kernel: KernelTask = serde_json::from_value(json!({
            "wgsl": "@compute @workgroup_size(1) fn main() {}", "entry": "main",
            "workgroups": [1, 1, 1], "output_words": 1, "chunks": [[0]], "max_seconds": 3}))
        .unwrap();
        let run = ToWorker::Run {
            job: 8,
            work: TaskKind::Kernel(Box::new(kernel)),
        };
        assert_eq!((run.job(), run.time_limit_s()), (Some(8), Some(3)));
        assert_eq!(run.model(), None);
    }

    #[test]
    fn loading_a_model_is_no_job_and_reads_back_as_sent() {
        let load = ToWorker::LoadModel {
            model: WhisperModel::TinyEn,
            models_url: "https://huggingface.co".into(),
        };
        let text = serde_json::to_string(&load).unwrap();
        assert!(text.contains(r#""model":"tiny.en""#), "{text}");
        let read = ToWorker::read(&text).unwrap();
        assert_eq!((read.job(), read.time_limit_s()), (None, None));
        assert_eq!(read.model(), Some(WhisperModel::TinyEn));
        assert_eq!(read, load);
    }

    #[test]
    fn a_message_the_worker_cannot_read_says_why() {
        let read = |text: &str| ToWorker::read(text).unwrap_err();
        assert_eq!(read(r#"{"type":"run","job":1}"#), "missing field `work`");
        assert_eq!(read(r#"{"type":"dance"}"#), "unknown variant `dance`");
        let no_model = r#"{"type":"load_model","model":"huge","models_url":"x"}"#;
        assert!(read(no_model).contains("huge"), "{}", read(no_model));
        assert!(read("[1,").contains("EOF"));
    }

    #[test]
    fn every_message_from_a_worker_reads_back_as_the_worker_wrote_it() {
        let messages = [
            FromWorker::Ready,
            FromWorker::Progress {
                job: 3,
                fraction: 0.25,
            },
            FromWorker::Done {
                job: 4,
                output: serde_json::json!({"count": 5, "segments": []}),
            },
            FromWorker::Failed {
                job: 5,
                reason: "out of memory".into(),
            },
            FromWorker::Unreadable {
                reason: "not JSON".into(),
            },
            FromWorker::ModelLoaded {
                model: WhisperModel::Base,
            },
            FromWorker::ModelFailed {
                model: WhisperModel::TinyEn,
                reason: "404".into(),
            },
            FromWorker::Notice {
                text: "Downloading".into(),
            },
        ];
        for message in messages {
            let written = serde_json::to_value(&message).unwrap();
            assert_eq!(FromWorker::read(&written), Ok(message));
        }
    }

    #[test]
    fn a_message_that_is_not_a_workers_says_why() {
        let read = |text: &str| FromWorker::read(&serde_json::from_str(text).unwrap());
        assert_eq!(
            read(r#"{"type": "no such message"}"#),
            Err("unknown variant `no such message`".into())
        );
        assert_eq!(
            read(r#"{"type": "done", "output": 1}"#),
            Err("missing field `job`".into())
        );
        assert_eq!(
            read(r#"{"type": "model_loaded", "model": "huge"}"#),
            Err("unknown model `huge`".into())
        );
        assert_eq!(read("[]"), Err("missing field `type`".into()));
    }
}
