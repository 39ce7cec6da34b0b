//! The hostile member: mallory's account sends crafted events, well-formed
//! and malformed, of every type a member can send, as fast as the
//! homeserver's rate limit lets it (`Config::hostile_member`), and changes
//! her display name now and then (a membership event).
//!
//! What she does not do here: make her own node answer wrongly (with one
//! replica a friend's machine is trusted; the lying friend has its own test),
//! or claim seniority with a forged `since` (docs/security.md says what a
//! member who takes the coordinator's role can do).

use super::{Homeserver, Rng};
use manifest::events::{
    event_type, Assignment, ChunkOutcome, ChunkProgress, Outcome, Outgoing, TaskSpec, MEMBER,
};
use manifest::ids::{EventId, NodeId, UserId};
use manifest::limits::MAX_SLOTS;
use manifest::task_kind::TaskKind;
use manifest::transcription::WhisperModel;
use manifest::voice;
use serde_json::{json, Value};

pub const MALLORY: &str = "@mallory:hs";

/// Offsets that broke span arithmetic once, and their neighbours.
const EVIL_MS: [u64; 8] = [
    0,
    1,
    7_200_000,
    7_200_001,
    268_435_456,
    268_455_456,
    u64::MAX / 16_000,
    u64::MAX,
];

/// Counts of what she sent, for the test to show she tried everything.
#[derive(Debug, Default, Clone)]
pub struct Moves {
    pub sent: u64,
    pub refused_by_rate_limit: u64,
    pub redactions_refused: u64,
}

#[derive(Default)]
pub struct Mallory {
    pub moves: Moves,
}

impl Mallory {
    /// One crafted event, if her rate limit lets it through.
    pub(super) fn act(&mut self, hs: &mut Homeserver, now: u64, rng: &mut Rng) {
        let sent = match rng.below(13) {
            0 | 1 => hs.send(MALLORY, &garbage_event(rng), now),
            2 => hs.send(MALLORY, &crafted_transcription(hs, rng), now),
            3 => match overwrite_node(hs, rng) {
                Some(out) => hs.send(MALLORY, &out, now),
                None => return,
            },
            4 => match hs.random_event_id(rng) {
                Some(target) => match hs.redact(MALLORY, &target, now) {
                    Ok(sent) => sent,
                    Err(()) => {
                        self.moves.redactions_refused += 1;
                        return;
                    }
                },
                None => return,
            },
            5 => match forged_transcript(hs, rng) {
                Some(out) => hs.send(MALLORY, &out, now),
                None => return,
            },
            6..=9 => match out_of_turn(hs, rng) {
                Some(out) => hs.send(MALLORY, &out, now),
                None => return,
            },
            10 => hs.send(MALLORY, &new_display_name(rng), now),
            _ => hs.send(MALLORY, &Outgoing::task(&small_task(rng)), now),
        };
        if sent {
            self.moves.sent += 1;
        } else {
            self.moves.refused_by_rate_limit += 1;
        }
    }
}

/// Random JSON: the shapes a careless or malicious client produces.
fn garbage(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 2 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(EVIL_MS[rng.below(EVIL_MS.len() as u64) as usize]),
        3 => json!(-(rng.below(1 << 40) as i64)),
        4 => json!(["", "\u{202e}evil", "$", "@", "mxc://../x", "0:0"][rng.below(6) as usize]),
        5 => json!(1u64 << rng.below(64)),
        6 => Value::Array((0..rng.below(4)).map(|_| garbage(rng, depth + 1)).collect()),
        _ => {
            const KEYS: [&str; 14] = [
                "v",
                "kind",
                "params",
                "chunks",
                "online",
                "caps",
                "since",
                "node",
                "outcomes",
                "assignments",
                "m.relates_to",
                "spans",
                "scripts",
                "chunk",
            ];
            let mut object = serde_json::Map::new();
            for _ in 0..rng.below(6) {
                let key = KEYS[rng.below(KEYS.len() as u64) as usize];
                object.insert(key.into(), garbage(rng, depth + 1));
            }
            if rng.chance(70) {
                object.insert("v".into(), json!(1));
            }
            Value::Object(object)
        }
    }
}

/// Any Potluck type with random content, as state or not, under any key.
fn garbage_event(rng: &mut Rng) -> Outgoing {
    let event_type = event_type::ALL[rng.below(event_type::ALL.len() as u64) as usize];
    let state_key = match rng.below(4) {
        0 => None,
        1 => Some(String::new()),
        2 => Some(format!("{MALLORY}|x")),
        _ => Some("@friend0:hs|g1".into()),
    };
    Outgoing {
        event_type,
        state_key,
        content: garbage(rng, 0),
    }
}

/// A transcription task with spans from the offsets that overflowed.
fn crafted_transcription(hs: &Homeserver, rng: &mut Rng) -> Outgoing {
    let spans: Vec<Value> = (0..rng.below(5))
        .map(|_| {
            let start = EVIL_MS[rng.below(EVIL_MS.len() as u64) as usize];
            let end = start
                .wrapping_add(rng.below(40_000))
                .max(rng.below(2) * u64::MAX);
            json!({"start_ms": start, "end_ms": end})
        })
        .collect();
    let chunks = if rng.chance(80) {
        spans.len().max(1) as u64
    } else {
        rng.below(1 << 20)
    };
    let message = hs
        .random_event_id(rng)
        .map_or_else(|| "$nothing".into(), |id| id.to_string());
    Outgoing {
        event_type: event_type::TASK,
        state_key: None,
        content: json!({"v": 1, "kind": "transcribe", "chunks": chunks, "params": {
            "audio": {"message": message, "url": "mxc://hs/voice"},
            "model": WhisperModel::TinyEn.name(), "spans": spans,
        }}),
    }
}

/// Another member's node state, written by mallory: gone, online with every
/// worker slot there is, or nonsense.
fn overwrite_node(hs: &Homeserver, rng: &mut Rng) -> Option<Outgoing> {
    let node = hs.random_node(rng)?;
    let content = match rng.below(3) {
        0 => Outgoing::node_gone(&node).content,
        1 => json!({"v": 1, "online": true, "caps": {"cores": 65, "slots": MAX_SLOTS}}),
        _ => garbage(rng, 0),
    };
    Some(Outgoing {
        event_type: event_type::NODE,
        state_key: Some(node.to_string()),
        content,
    })
}

/// A "transcript" reply for some task, from someone who ran none of it.
fn forged_transcript(hs: &Homeserver, rng: &mut Rng) -> Option<Outgoing> {
    let task = hs.random_task(rng)?;
    let message = hs.random_event_id(rng)?;
    Some(voice::reply(&message, &task, Err("forged")))
}

/// Assignments, results, progress and cancels for others' tasks, in anyone's
/// name, for any chunk and attempt.
fn out_of_turn(hs: &Homeserver, rng: &mut Rng) -> Option<Outgoing> {
    let task = hs.random_task(rng)?;
    // Never her own contributing node: with one replica, what a friend's
    // node answers is trusted (the lying friend's test covers that).
    let node = hs
        .random_node(rng)
        .filter(|n| !n.is_owned_by(&UserId::parse(MALLORY).unwrap()))
        .map_or_else(
            || NodeId::new(&UserId::parse(MALLORY).unwrap(), "forger"),
            Ok,
        )
        .ok()?;
    let chunk = rng.below(4) as u32;
    let attempt = [0, 1, 2, 9, u32::MAX][rng.below(5) as usize];
    Some(match rng.below(4) {
        0 => Outgoing::assign(
            &task,
            &[Assignment {
                chunk,
                node,
                attempt,
            }],
        ),
        1 => Outgoing::result(
            &task,
            &node,
            &[ChunkOutcome {
                chunk,
                attempt,
                outcome: if rng.chance(50) {
                    Outcome::Output(json!({"count": 666}).into())
                } else {
                    Outcome::Error {
                        reason: "forged".into(),
                        retriable: rng.chance(50),
                    }
                },
                compute_ms: Some(rng.below(u64::MAX)),
            }],
        ),
        2 => Outgoing::progress(
            &task,
            &node,
            &[ChunkProgress {
                chunk,
                attempt,
                percent: rng.below(256) as u8,
            }],
        ),
        _ => Outgoing::cancel(&task, Some("forged")),
    })
}

/// A new display name: a membership event of her own, which takes her nodes
/// out of the pool until they announce themselves again.
fn new_display_name(rng: &mut Rng) -> Outgoing {
    Outgoing {
        event_type: MEMBER,
        state_key: Some(MALLORY.into()),
        content: json!({"membership": "join", "displayname": format!("mallory {}", rng.below(100))}),
    }
}

/// A task of her own: she may submit work like anyone.
fn small_task(rng: &mut Rng) -> TaskSpec {
    TaskSpec::new(
        TaskKind::Primes { start: 0, end: 100 },
        1 + rng.below(2) as u32,
    )
}

impl Homeserver {
    /// A random event's id from the timeline.
    fn random_event_id(&self, rng: &mut Rng) -> Option<EventId> {
        let event = self
            .timeline
            .get(rng.below(self.timeline.len() as u64) as usize)?;
        EventId::parse(event["event_id"].as_str()?).ok()
    }

    fn random_task(&self, rng: &mut Rng) -> Option<EventId> {
        let tasks: Vec<&Value> = self
            .timeline
            .iter()
            .filter(|e| e["type"] == event_type::TASK)
            .collect();
        let task = tasks.get(rng.below(tasks.len() as u64) as usize)?;
        EventId::parse(task["event_id"].as_str()?).ok()
    }

    fn random_node(&self, rng: &mut Rng) -> Option<NodeId> {
        let nodes: Vec<&Value> = self
            .timeline
            .iter()
            .filter(|e| e["type"] == event_type::NODE)
            .collect();
        let node = nodes.get(rng.below(nodes.len() as u64) as usize)?;
        NodeId::parse(node["state_key"].as_str()?).ok()
    }
}
