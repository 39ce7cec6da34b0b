//! What the node asks its driver to do.

use super::history::HistoryRead;
use crate::allowlist::AllowedScript;
use crate::events::{Input as TaskInput, Outgoing};
use crate::ids::{EventId, NodeId, UserId};
use crate::rejection::Rejection;
use crate::task_kind::TaskKind;
use crate::transcription::{AudioRef, TranscribeTask, WhisperModel};
use crate::worker_protocol::JobId;
use serde_json::Value;

/// Names one `Action::Send`, so that the driver can say how it went
/// (`Input::Sent`, `Input::SendFailed`) and the node knows what it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send `out` to the room, and answer with `Input::Sent` or
    /// `Input::SendFailed` for `request`.
    Send {
        request: RequestId,
        out: Outgoing,
    },
    /// Schedule `node_gone` as a delayed state event, published by the
    /// homeserver if the node stops restarting it.
    ArmDeadManSwitch {
        node: NodeId,
        gone: Outgoing,
    },
    RestartDeadManSwitch,
    /// Publish the node's departure now (the user switched contributing
    /// off); if it cannot fire, answer `Input::LeaveNoticeNotFired`.
    FireDeadManSwitch,
    /// Run chunk `chunk` of `task` (`work` is the chunk's own part of the
    /// task); a script reads the task's input files, which the driver
    /// downloads and checks first. Answered by `Input::WorkerFinished`.
    RunChunk {
        job: JobId,
        task: EventId,
        chunk: u32,
        attempt: u32,
        work: TaskKind,
        inputs: Vec<TaskInput>,
    },
    AbortJob {
        job: JobId,
    },
    /// Download and decode this recording to 16 kHz mono, and hand the
    /// samples back as `Input::AudioDecoded`.
    DecodeAudio {
        audio: AudioRef,
    },
    /// Transcribe a span's samples in a worker (the chunk `job` of an
    /// earlier `RunChunk`), conditioned on `previous`, the span before's
    /// prompt where it is known (`SpanTranscript::prompt`); answered like
    /// any job.
    RunTranscription {
        job: JobId,
        work: TranscribeTask,
        samples: Vec<f32>,
        previous: Vec<u32>,
    },
    /// Load this Whisper model into a worker now, before any span needs it:
    /// a voice message came while this node contributes, and the first
    /// transcript should not wait for the model's download and load.
    PrepareModel {
        model: WhisperModel,
    },
    /// Show the friend a script the room allowed, before their machine first
    /// runs it; they answer with `Input::ScriptConsent`.
    AskConsent {
        script: AllowedScript,
    },
    /// Send a private chunk output to the submitter's devices (see `private`).
    SendToDevice {
        user: UserId,
        content: Value,
    },
    /// Read this part of the room's past and hand it back as
    /// `Input::HistoryRead` (or why it could not be read).
    ReadHistory {
        read: HistoryRead,
    },
    /// Read the replies in this voice message's thread and hand them back as
    /// `Input::ThreadRead`: before a transcript is posted, and after a send
    /// that failed (it may have landed), so that it is never posted twice.
    ReadThread {
        root: EventId,
    },
    /// An event was not accepted; log it, nothing else to do.
    Rejected(Rejection),
}
