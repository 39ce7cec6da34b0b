//! What the widget shows, derived from the ledger: who contributes and what
//! each node is doing, every task with its progress, and why this node idles.

use manifest::events::NodeCaps;
use manifest::ids::{EventId, NodeId, UserId};
use manifest::ledger::{Ledger, TaskRecord, TaskStatus};
use manifest::private::PrivateOutputs;
use manifest::scheduler::{explain_idle, work_of};
use manifest::task_kind::TaskKind;
use manifest::voice::VoiceMessage;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub id: NodeId,
    pub owner: UserId,
    pub caps: NodeCaps,
    pub is_coordinator: bool,
    /// "chunk 2/4 of task $abc (40%)", one line per chunk it holds.
    pub doing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub id: EventId,
    pub submitter: UserId,
    pub description: String,
    pub status: TaskStatus,
    /// Chunks done and in all, its parts' chunks included.
    pub chunks_done: u32,
    pub chunks_total: u32,
    /// Fraction done, counting what running chunks last reported.
    pub progress: f32,
    /// Which nodes' results were accepted, one per finished chunk.
    pub done_by: Vec<NodeId>,
    /// Friends whose machines answered a replicated chunk differently from
    /// the majority, or failed it: outvoted, and shown.
    pub outvoted: Vec<UserId>,
    /// Finished chunks that are image tiles (`{"x", "y", "size", "pixels"}`),
    /// shown as they arrive, each with the friend whose machine computed it.
    pub tiles: Vec<Tile>,
}

/// One square tile of a picture a task renders, as a chunk's output carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tile {
    pub x: u32,
    pub y: u32,
    pub size: u32,
    /// `size × size` grey levels, row by row, base64.
    pub pixels: String,
    pub by: UserId,
}

impl Tile {
    fn from_output(output: &serde_json::Value, by: &NodeId) -> Option<Self> {
        let number = |key: &str| {
            output
                .get(key)?
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
        };
        Some(Self {
            x: number("x")?,
            y: number("y")?,
            size: number("size").filter(|s| (1..=256).contains(s))?,
            pixels: output.get("pixels")?.as_str()?.to_owned(),
            by: by.owner(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolView {
    pub nodes: Vec<NodeView>,
    /// Newest first.
    pub tasks: Vec<TaskView>,
    /// Why this node has nothing to do, when it contributes and idles.
    pub idle_reason: Option<String>,
}

impl PoolView {
    pub fn build(ledger: &Ledger, me: Option<&NodeId>, now: u64) -> Self {
        let coordinator = ledger.coordinator();
        let nodes = ledger
            .online_nodes()
            .map(|n| NodeView {
                id: n.id.clone(),
                owner: n.id.owner(),
                caps: n.caps.clone(),
                is_coordinator: coordinator == Some(&n.id),
                doing: work_of(ledger, n, now)
                    .into_iter()
                    .map(|(task, chunk)| {
                        let record = ledger.task(&task);
                        let total = record.map_or(0, |t| t.spec.chunks);
                        let progress = record
                            .and_then(|t| t.chunks.get(chunk as usize))
                            .and_then(|c| c.leases.iter().find(|l| l.node == n.id))
                            .map_or(0.0, |l| l.progress);
                        let line =
                            format!("chunk {}/{} of task {}", chunk + 1, total, task.short());
                        if progress > 0.0 {
                            format!("{line} ({:.0}%)", progress * 100.0)
                        } else {
                            line
                        }
                    })
                    .collect(),
            })
            .collect();
        let mut tasks: Vec<TaskView> = ledger
            .tasks()
            .map(|t| {
                let status = ledger.task_status(t, now);
                let own_done = t.chunks.iter().filter(|c| c.done().is_some()).count() as u32;
                let (chunks_done, chunks_total) = match status {
                    TaskStatus::Running { done, total } => (done, total),
                    TaskStatus::Done { .. } => (t.spec.chunks, t.spec.chunks),
                    _ => (own_done, t.spec.chunks),
                };
                TaskView {
                    id: t.id.clone(),
                    submitter: t.submitter.clone(),
                    description: describe(ledger, t),
                    progress: progress(ledger, t, chunks_done, chunks_total, now),
                    status,
                    chunks_done,
                    chunks_total,
                    done_by: t
                        .chunks
                        .iter()
                        .filter_map(|c| c.done().map(|d| d.node.clone()))
                        .collect(),
                    outvoted: {
                        let mut users: Vec<UserId> = t
                            .chunks
                            .iter()
                            .filter_map(|c| c.done())
                            .flat_map(|d| d.dissent.iter().map(NodeId::owner))
                            .collect();
                        users.sort();
                        users.dedup();
                        users
                    },
                    tiles: t
                        .chunks
                        .iter()
                        .filter_map(|c| c.done())
                        .filter_map(|d| Tile::from_output(&d.output, &d.node))
                        .collect(),
                }
            })
            .collect();
        tasks.sort_by_key(|t| std::cmp::Reverse(ledger.task(&t.id).map_or(0, |r| r.submitted_at)));
        let idle_reason = me.and_then(|node| {
            let busy = ledger
                .online_nodes()
                .any(|n| &n.id == node && !work_of(ledger, n, now).is_empty());
            (!busy).then(|| explain_idle(ledger, node, now).describe())
        });
        Self {
            nodes,
            tasks,
            idle_reason,
        }
    }
}

fn describe(ledger: &Ledger, task: &TaskRecord) -> String {
    // A script is best known by the name the room's allowlist gives it.
    let what = match &task.spec.kind {
        TaskKind::Script(script) => match ledger.allowlist().allows(script) {
            Ok(allowed) => format!("Run {}", allowed.name),
            Err(_) => task.spec.kind.describe(),
        },
        kind => kind.describe(),
    };
    let mut text = format!("{what} in {} chunk(s)", task.spec.chunks);
    if task.spec.replication > 1 {
        text += &format!(", each on {} nodes", task.spec.replication);
    }
    if !task.children.is_empty() {
        text += &format!(", split into {} more part(s)", task.children.len());
    }
    if let Some(parent) = &task.spec.parent {
        text += &format!(" (part of task {})", parent.short());
    }
    text
}

/// Done chunks, plus what the running ones of this task reported, over all chunks.
fn progress(ledger: &Ledger, task: &TaskRecord, done: u32, total: u32, now: u64) -> f32 {
    if total == 0 {
        return 0.0;
    }
    let running: f32 = task
        .chunks
        .iter()
        .map(|c| {
            ledger
                .held_leases(c, now)
                .iter()
                .map(|l| l.progress)
                .fold(0.0, f32::max)
        })
        .sum();
    ((done as f32 + running) / total as f32).min(1.0)
}

/// Where a voice message's transcript stands.
#[derive(Debug, Clone, PartialEq)]
pub enum VoiceState {
    NotTranscribed,
    Queued,
    Running { fraction: f32 },
    Done { text: String },
    Failed { reason: String },
}

/// One row of the voice message list.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceRow {
    pub message: VoiceMessage,
    pub state: VoiceState,
    /// The latest transcription asked for this message.
    pub task: Option<EventId>,
}

/// The room's audio messages, newest first, each with its latest
/// transcription's state (a failed one can be asked for again).
pub fn voice_rows<'a>(
    ledger: &Ledger,
    messages: impl Iterator<Item = &'a VoiceMessage>,
    now: u64,
) -> Vec<VoiceRow> {
    let mut latest: BTreeMap<&EventId, &TaskRecord> = BTreeMap::new();
    for task in ledger.tasks() {
        if let TaskKind::Transcribe(t) = &task.spec.kind {
            if t.is_plan() && task.spec.parent.is_none() {
                latest.insert(&t.audio.message, task); // Later tasks replace earlier ones.
            }
        }
    }
    let mut rows: Vec<VoiceRow> = messages
        .map(|message| {
            let task = latest.get(&message.event_id);
            let state = match task.map(|t| ledger.task_status(t, now)) {
                None | Some(TaskStatus::Cancelled { .. }) => VoiceState::NotTranscribed,
                Some(TaskStatus::Queued) => VoiceState::Queued,
                Some(TaskStatus::Running { done, total }) => VoiceState::Running {
                    fraction: done as f32 / total.max(1) as f32,
                },
                Some(TaskStatus::Done { result }) => VoiceState::Done {
                    text: result
                        .get("text")
                        .and_then(|t| t.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                },
                Some(TaskStatus::Failed { reason }) => VoiceState::Failed { reason },
            };
            VoiceRow {
                message: message.clone(),
                state,
                task: task.map(|t| t.id.clone()),
            }
        })
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.message.sent_at));
    rows
}

/// Shows `me` the results only they received: each of their private tasks
/// that the room says is done gets what `PrivateOutputs` holds for it.
pub fn reveal_private(
    outputs: &PrivateOutputs,
    tasks: &mut [TaskView],
    ledger: &Ledger,
    me: &UserId,
) {
    for view in tasks.iter_mut().filter(|t| &t.submitter == me) {
        if let TaskStatus::Done { result } = &mut view.status {
            if let Some(shown) = outputs.shown_result(ledger, &view.id) {
                *result = shown;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use manifest::events::Outgoing;
    use manifest::events::TaskSpec;
    use manifest::ids::MxcUri;
    use manifest::transcription::{AudioRef, WhisperModel};
    use serde_json::{json, Value};

    fn audio(message: &str) -> AudioRef {
        AudioRef {
            message: EventId::parse(message).unwrap(),
            url: Some(MxcUri::parse("mxc://hs/voice").unwrap()),
            file: None,
            mimetype: Some("audio/ogg".into()),
            size: Some(1000),
        }
    }

    fn voice_message(id: &str, sent_at: u64) -> VoiceMessage {
        VoiceMessage {
            event_id: EventId::parse(id).unwrap(),
            sender: UserId::parse("@carol:hs").unwrap(),
            sent_at,
            body: "Voice message".into(),
            duration_ms: Some(5000),
            voice: true,
            size: Some(1000),
            audio: audio(id),
        }
    }

    fn delivered(id: &str, out: &Outgoing, ts: u64) -> Value {
        json!({"type": out.event_type, "event_id": id, "sender": "@alice:hs",
            "origin_server_ts": ts, "content": out.content})
    }

    fn states(
        ledger: &Ledger,
        messages: &[VoiceMessage],
    ) -> Vec<(String, VoiceState, Option<String>)> {
        voice_rows(ledger, messages.iter(), 10_000)
            .into_iter()
            .map(|row| {
                let task = row.task.map(|t| t.as_str().to_owned());
                (row.message.event_id.as_str().to_owned(), row.state, task)
            })
            .collect()
    }

    #[test]
    fn each_voice_message_shows_its_latest_transcription_newest_first() {
        let messages = [
            voice_message("$older", 1_000),
            voice_message("$newer", 2_000),
        ];
        let transcribe = Outgoing::task(&TaskSpec::transcription(
            audio("$older"),
            WhisperModel::TinyEn,
        ));
        let mut ledger = Ledger::new();
        ledger
            .ingest(&delivered("$first", &transcribe, 3_000))
            .unwrap();
        assert_eq!(
            states(&ledger, &messages),
            [
                ("$newer".into(), VoiceState::NotTranscribed, None),
                ("$older".into(), VoiceState::Queued, Some("$first".into())),
            ]
        );

        // Cancelled: it may be transcribed again, and the next request is the one shown.
        let first = EventId::parse("$first").unwrap();
        ledger
            .ingest(&delivered("$stop", &Outgoing::cancel(&first, None), 4_000))
            .unwrap();
        assert_eq!(states(&ledger, &messages)[1].1, VoiceState::NotTranscribed);
        ledger
            .ingest(&delivered("$again", &transcribe, 5_000))
            .unwrap();
        assert_eq!(
            states(&ledger, &messages)[1],
            ("$older".into(), VoiceState::Queued, Some("$again".into()))
        );
    }
}
