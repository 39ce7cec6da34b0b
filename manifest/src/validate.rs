//! Turns whatever the room hands us into a `SeenEvent`, or an `Invalid` that
//! says what is wrong (its `Display` is the reason a person reads). Never
//! panics, whatever the JSON.
//!
//! Checks here need nothing but the event itself (shape, version, size, ids,
//! who may speak for a node). Checks that need history, such as "does this node
//! hold a lease on that chunk", are the ledger's.
//!
//! Membership needs no check of ours: the homeserver only accepts events into a
//! room from its members, and the widget only sees the room's events.

use crate::allowlist::AllowlistError;
use crate::digest::is_sha256_hex;
use crate::events::read::typed;
use crate::events::{
    event_type, AssignContent, CancelContent, NodeCaps, NodeContent, NotAReference, Outcome,
    PotluckEvent, ProgressContent, Relation, ResultContent, SeenEvent, TaskSpec, WasOnline, MEMBER,
    PROTOCOL_VERSION,
};
use crate::ids::{EventId, IdError, MxcUri, NodeId, UserId};
use crate::kind_error::KindError;
use crate::limits::{
    max_attempts, MAX_CHUNKS, MAX_CONTENT_BYTES, MAX_INLINE_OUTPUT_BYTES, MAX_INPUTS,
    MAX_MEDIA_BYTES, MAX_REPLICATION, MAX_SLOTS,
};
use crate::task_kind::{Split, TaskKind};
use crate::text::{check_shown_text, TextError};
use serde::Deserialize;
use serde_json::{Number, Value};
use thiserror::Error;

/// An event `parse_event` refused, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{problem}", event_id.as_ref().map(|id| format!("{id}: ")).unwrap_or_default())]
pub struct InvalidEvent {
    /// The event's id, if it has one that is a string at all.
    pub event_id: Option<String>,
    pub problem: Invalid,
}

/// What can be wrong with an event on its own, whatever came before it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Invalid {
    #[error("malformed event: {0}")]
    Envelope(EnvelopeError),
    /// The event id, the sender, or an id in a state key.
    #[error(transparent)]
    Id(#[from] IdError),
    #[error("'{0}' is not a Potluck event type")]
    NotPotluck(String),
    #[error("content is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("protocol version {0} is not supported (this node speaks {PROTOCOL_VERSION}); update Potluck")]
    UnsupportedVersion(u64),
    #[error("missing protocol version \"v\"")]
    MissingVersion,
    /// What serde says is wrong with the content.
    #[error("malformed content: {0}")]
    Malformed(String),

    #[error("a membership event must be a state event")]
    MembershipNotState,
    #[error("a membership event without a membership")]
    NoMembership,

    #[error("a node event must be a state event")]
    NodeNotState,
    #[error("{sender} cannot speak for node {node}")]
    ForeignNode { sender: UserId, node: NodeId },
    #[error("an online node must announce its capabilities")]
    NoCapabilities,
    #[error("a node declines more scripts than any allowlist holds")]
    TooManyDeclined,
    #[error("a node names {0} kinds of work it takes; at most {MAX_KINDS_NAMED}")]
    TooManyKinds(usize),
    #[error("a node offers {0} worker slots; it must offer 1 to {MAX_SLOTS}")]
    Slots(u32),

    #[error("the allowlist is a state event with an empty state key")]
    AllowlistKey,
    #[error(transparent)]
    Allowlist(#[from] AllowlistError),

    #[error(transparent)]
    Task(#[from] TaskError),

    // Assignments, results, progress and cancels.
    #[error(transparent)]
    Relation(#[from] NotAReference),
    #[error("an assignment names no chunk")]
    EmptyAssignment,
    #[error("a result names no chunk")]
    EmptyResult,
    #[error("a progress report names no chunk")]
    EmptyProgress,
    #[error("chunk {0} is beyond any task's {MAX_CHUNKS} chunks")]
    ChunkBeyond(u32),
    #[error("attempts count from 1")]
    AttemptZero,
    #[error("attempt {attempt} is beyond the {most} any chunk gets")]
    AttemptBeyond { attempt: u32, most: u32 },
    #[error("{sender} reported for node {node}, which is not theirs")]
    ForeignReport { sender: UserId, node: NodeId },
    #[error("progress {percent}% of chunk {chunk} is more than done")]
    OverDone { percent: u8, chunk: u32 },
    #[error(transparent)]
    Output(NotMatrixJson),
    #[error("an inline output is {size} bytes; the limit is {limit}")]
    OutputTooLarge { size: usize, limit: usize },
    /// An error's or a cancel's reason.
    #[error(transparent)]
    Text(#[from] TextError),
}

/// What is wrong with the envelope the homeserver wraps every event in.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    #[error("an event must be a JSON object")]
    NotAnObject,
    #[error("missing or non-string field `{0}`")]
    MissingField(&'static str),
    #[error("missing or invalid field `origin_server_ts`")]
    BadTimestamp,
    #[error("`state_key` is not a string")]
    StateKeyNotString,
}

/// Why a task's content cannot be submitted or run: `parse_task`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TaskError {
    /// What serde says is wrong with the content.
    #[error("malformed content: {0}")]
    Malformed(String),
    #[error("a parameter {0}")]
    Parameter(NotMatrixJson),
    /// One of a list split's items.
    #[error("a chunk {0}")]
    ChunkItem(NotMatrixJson),
    #[error("a task has {0} chunks; it must have 1 to {MAX_CHUNKS}")]
    Chunks(u32),
    #[error(transparent)]
    Kind(#[from] KindError),
    #[error("a transcription cannot be private: its transcript is a reply in the room")]
    PrivateTranscription,
    #[error("a task has {0} inputs; the limit is {MAX_INPUTS}")]
    TooManyInputs(usize),
    #[error("the input {mxc} is {} MB; nodes download at most {} MB", size / 1_000_000, MAX_MEDIA_BYTES / 1_000_000)]
    InputTooLarge { mxc: MxcUri, size: u64 },
    #[error("the sha256 of {mxc} is not 64 lowercase hex digits")]
    BadSha256 { mxc: MxcUri },
    #[error("malformed m.relates_to: {0}")]
    MalformedRelation(String),
    #[error(transparent)]
    Relation(#[from] NotAReference),
    #[error("a task may reference only its parent task, not {target}")]
    ForeignRelation { target: EventId },
    #[error("a task's nonce is longer than 64 bytes")]
    NonceTooLong,
    #[error("a deadline of 0 ms can never be met")]
    ZeroDeadline,
    #[error("replication {0} is impossible: each chunk runs on 1 to {MAX_REPLICATION} nodes")]
    Replication(u8),
}

/// A number a homeserver would refuse in an event (see `check_matrix_json`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotMatrixJson {
    #[error("{0} is too large for a Matrix event (at most 2^53 - 1); send it as a string")]
    TooLarge(Number),
    #[error("{0} has a fraction, which Matrix events cannot carry; send it as a string or scaled to a whole number")]
    Fraction(Number),
}

/// The envelope every event has, as the widget API delivers it, borrowed
/// from the raw event (the content is not copied).
struct Envelope<'a> {
    event_type: &'a str,
    event_id: &'a str,
    sender: &'a str,
    origin_server_ts: u64,
    state_key: Option<String>,
    content: &'a Value,
}

impl<'a> Envelope<'a> {
    fn read(raw: &'a Value) -> Result<Self, EnvelopeError> {
        let raw = raw.as_object().ok_or(EnvelopeError::NotAnObject)?;
        let text = |field: &'static str| {
            raw.get(field)
                .and_then(Value::as_str)
                .ok_or(EnvelopeError::MissingField(field))
        };
        static NO_CONTENT: Value = Value::Null;
        Ok(Self {
            event_type: text("type")?,
            event_id: text("event_id")?,
            sender: text("sender")?,
            origin_server_ts: raw
                .get("origin_server_ts")
                .and_then(Value::as_u64)
                .ok_or(EnvelopeError::BadTimestamp)?,
            state_key: match raw.get("state_key") {
                None | Some(Value::Null) => None,
                Some(Value::String(key)) => Some(key.clone()),
                Some(_) => return Err(EnvelopeError::StateKeyNotString),
            },
            content: raw.get("content").unwrap_or(&NO_CONTENT),
        })
    }
}

/// Is this one of ours? Events of other types are not rejections, just not ours.
pub fn is_potluck_type(event_type: &str) -> bool {
    event_type::ALL.contains(&event_type)
}

/// A membership event: whose.
fn parse_membership(state_key: Option<String>, content: &Value) -> Result<PotluckEvent, Invalid> {
    let user = state_key.ok_or(Invalid::MembershipNotState)?;
    let user = UserId::parse(user)?;
    content
        .get("membership")
        .and_then(Value::as_str)
        .ok_or(Invalid::NoMembership)?;
    Ok(PotluckEvent::Membership { user })
}

/// Validates one event from the room.
pub fn parse_event(raw: &Value) -> Result<SeenEvent, InvalidEvent> {
    let event_id = raw
        .get("event_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let reject = |problem: Invalid| InvalidEvent {
        event_id: event_id.clone(),
        problem,
    };
    let envelope = Envelope::read(raw).map_err(|e| reject(Invalid::Envelope(e)))?;
    let event_id = EventId::parse(envelope.event_id).map_err(|e| reject(e.into()))?;
    let sender = UserId::parse(envelope.sender).map_err(|e| reject(e.into()))?;
    let event = parse_content(
        envelope.event_type,
        envelope.state_key,
        envelope.content,
        &sender,
    )
    .map_err(reject)?;
    Ok(SeenEvent {
        event_id,
        sender,
        origin_server_ts: envelope.origin_server_ts,
        event,
    })
}

fn parse_content(
    event_type: &str,
    state_key: Option<String>,
    content: &Value,
    sender: &UserId,
) -> Result<PotluckEvent, Invalid> {
    if event_type == MEMBER {
        return parse_membership(state_key, content);
    }
    if !is_potluck_type(event_type) {
        return Err(Invalid::NotPotluck(event_type.to_owned()));
    }
    let size = json_size(content);
    if size > MAX_CONTENT_BYTES {
        return Err(Invalid::TooLarge {
            size,
            limit: MAX_CONTENT_BYTES,
        });
    }
    match content.get("v").map(Value::as_u64) {
        Some(Some(v)) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(Some(v)) => return Err(Invalid::UnsupportedVersion(v)),
        _ => return Err(Invalid::MissingVersion),
    }
    match event_type {
        event_type::NODE => parse_node(state_key, content, sender),
        event_type::TASK => Ok(parse_task(content)?),
        event_type::ALLOWLIST => {
            if state_key.as_deref() != Some("") {
                return Err(Invalid::AllowlistKey);
            }
            let list: crate::allowlist::Allowlist = typed(content).map_err(Invalid::Malformed)?;
            list.validate()?;
            Ok(PotluckEvent::Allowlist(list))
        }
        event_type::ASSIGN => {
            let c: AssignContent = typed(content).map_err(Invalid::Malformed)?;
            let task = c.relates_to.task()?;
            if c.assignments.is_empty() {
                return Err(Invalid::EmptyAssignment);
            }
            for a in &c.assignments {
                check_chunk_and_attempt(a.chunk, a.attempt)?;
            }
            Ok(PotluckEvent::Assign {
                task,
                assignments: c.assignments,
            })
        }
        event_type::RESULT => {
            let c: ResultContent = typed(content).map_err(Invalid::Malformed)?;
            let task = c.relates_to.task()?;
            check_own_node(&c.node, sender)?;
            if c.outcomes.is_empty() {
                return Err(Invalid::EmptyResult);
            }
            for o in &c.outcomes {
                check_chunk_and_attempt(o.chunk, o.attempt)?;
                check_outcome(&o.outcome)?;
            }
            Ok(PotluckEvent::Result {
                task,
                node: c.node,
                outcomes: c.outcomes,
            })
        }
        event_type::PROGRESS => {
            let c: ProgressContent = typed(content).map_err(Invalid::Malformed)?;
            let task = c.relates_to.task()?;
            check_own_node(&c.node, sender)?;
            if c.chunks.is_empty() {
                return Err(Invalid::EmptyProgress);
            }
            for p in &c.chunks {
                check_chunk_and_attempt(p.chunk, p.attempt)?;
                if p.percent > 100 {
                    return Err(Invalid::OverDone {
                        percent: p.percent,
                        chunk: p.chunk,
                    });
                }
            }
            Ok(PotluckEvent::Progress {
                task,
                node: c.node,
                chunks: c.chunks,
            })
        }
        event_type::CANCEL => {
            let c: CancelContent = typed(content).map_err(Invalid::Malformed)?;
            let task = c.relates_to.task()?;
            if let Some(reason) = &c.reason {
                check_shown_text(reason)?;
            }
            Ok(PotluckEvent::Cancel {
                task,
                reason: c.reason,
            })
        }
        _ => unreachable!("is_potluck_type covers every type"),
    }
}

/// Bytes `value` takes as compact JSON (as `serde_json::to_vec` writes it),
/// counted without writing it: the size limit is checked on every event.
pub fn json_size(value: &Value) -> usize {
    let separators = |n: usize| 2 + n.saturating_sub(1); // brackets and commas
    match value {
        Value::Null | Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(n) => number_size(n),
        Value::String(s) => string_size(s),
        Value::Array(items) => separators(items.len()) + items.iter().map(json_size).sum::<usize>(),
        Value::Object(map) => {
            separators(map.len())
                + map
                    .iter()
                    .map(|(key, value)| string_size(key) + 1 + json_size(value))
                    .sum::<usize>()
        }
    }
}

fn number_size(n: &serde_json::Number) -> usize {
    let digits = |n: u64| n.checked_ilog10().map_or(1, |log| log as usize + 1);
    match (n.as_u64(), n.as_i64()) {
        (Some(u), _) => digits(u),
        (None, Some(i)) => 1 + digits(i.unsigned_abs()),
        // Floats are rare (a homeserver refuses them): count them the slow way.
        (None, None) => serde_json::to_string(n).map_or(usize::MAX, |text| text.len()),
    }
}

fn string_size(s: &str) -> usize {
    let escaped: usize = s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum();
    2 + escaped
}

fn parse_node(
    state_key: Option<String>,
    content: &Value,
    sender: &UserId,
) -> Result<PotluckEvent, Invalid> {
    let key = state_key.ok_or(Invalid::NodeNotState)?;
    let node = NodeId::parse(key)?;
    if !node.is_owned_by(sender) {
        return Err(Invalid::ForeignNode {
            sender: sender.clone(),
            node,
        });
    }
    let c: NodeContent = typed(content).map_err(Invalid::Malformed)?;
    if let Some(caps) = &c.caps {
        check_caps(caps)?;
    }
    if !c.online {
        let was = c
            .since
            .zip(c.caps)
            .map(|(since, caps)| WasOnline { since, caps });
        return Ok(PotluckEvent::NodeGone {
            node,
            was: was.map(Box::new),
        });
    }
    let caps = c.caps.ok_or(Invalid::NoCapabilities)?;
    Ok(PotluckEvent::NodeOnline {
        node,
        caps: Box::new(caps),
        since: c.since,
    })
}

/// How many kinds of work a node may name in `runs`: room for kinds a newer
/// node knows and this one does not, and no room for a member to bloat
/// every node's ledger.
const MAX_KINDS_NAMED: usize = 16;

fn check_caps(caps: &NodeCaps) -> Result<(), Invalid> {
    if caps.declined.len() > crate::allowlist::MAX_ALLOWED_SCRIPTS {
        return Err(Invalid::TooManyDeclined);
    }
    if let Some(kinds) = caps.runs.as_ref().filter(|k| k.len() > MAX_KINDS_NAMED) {
        return Err(Invalid::TooManyKinds(kinds.len()));
    }
    if caps.slots == 0 || caps.slots > MAX_SLOTS {
        return Err(Invalid::Slots(caps.slots));
    }
    Ok(())
}

/// Validates a task's content: what comes in from the room, and what a node
/// is about to submit.
pub fn parse_task(content: &Value) -> Result<PotluckEvent, TaskError> {
    // Serde names the kinds it knows when it meets another: the enum's tags
    // are the one list of them.
    let spec: TaskSpec = typed(content).map_err(TaskError::Malformed)?;
    if let TaskKind::Script(script) = &spec.kind {
        check_matrix_json(&script.args).map_err(TaskError::Parameter)?;
        if let Split::List(items) = &script.split {
            items
                .iter()
                .try_for_each(check_matrix_json)
                .map_err(TaskError::ChunkItem)?;
        }
    }
    if spec.chunks == 0 || spec.chunks > MAX_CHUNKS {
        return Err(TaskError::Chunks(spec.chunks));
    }
    spec.kind.validate(spec.chunks)?;
    // The coordinator reads a transcription's outputs to split and answer it.
    if spec.private && matches!(spec.kind, TaskKind::Transcribe(_)) {
        return Err(TaskError::PrivateTranscription);
    }
    if spec.inputs.len() > MAX_INPUTS {
        return Err(TaskError::TooManyInputs(spec.inputs.len()));
    }
    for input in &spec.inputs {
        if input.size > MAX_MEDIA_BYTES {
            return Err(TaskError::InputTooLarge {
                mxc: input.mxc.clone(),
                size: input.size,
            });
        }
        if !is_sha256_hex(&input.sha256) {
            return Err(TaskError::BadSha256 {
                mxc: input.mxc.clone(),
            });
        }
    }
    if let Some(relation) = content.get("m.relates_to") {
        let relation = Relation::deserialize(relation)
            .map_err(|e| TaskError::MalformedRelation(e.to_string()))?;
        let target = relation.task()?;
        if spec.parent.as_ref() != Some(&target) {
            return Err(TaskError::ForeignRelation { target });
        }
    }
    if spec.nonce.as_ref().is_some_and(|n| n.len() > 64) {
        return Err(TaskError::NonceTooLong);
    }
    if spec.deadline_ms == Some(0) {
        return Err(TaskError::ZeroDeadline);
    }
    if spec.replication == 0 || spec.replication > MAX_REPLICATION {
        return Err(TaskError::Replication(spec.replication));
    }
    Ok(PotluckEvent::Task(spec.into()))
}

/// Results and progress come only from the node's own account.
fn check_own_node(node: &NodeId, sender: &UserId) -> Result<(), Invalid> {
    if node.is_owned_by(sender) {
        Ok(())
    } else {
        Err(Invalid::ForeignReport {
            sender: sender.clone(),
            node: node.clone(),
        })
    }
}

fn check_chunk_and_attempt(chunk: u32, attempt: u32) -> Result<(), Invalid> {
    if chunk >= MAX_CHUNKS {
        return Err(Invalid::ChunkBeyond(chunk));
    }
    if attempt == 0 {
        return Err(Invalid::AttemptZero);
    }
    let most = max_attempts(MAX_REPLICATION);
    if attempt > most {
        return Err(Invalid::AttemptBeyond { attempt, most });
    }
    Ok(())
}

/// Largest integer Matrix's canonical JSON carries (2^53 - 1).
const MATRIX_MAX_INT: i64 = (1 << 53) - 1;

/// Matrix events carry canonical JSON: integers within ±(2^53 - 1), no
/// fractional numbers. A homeserver refuses any other event (`M_BAD_JSON`),
/// and Element then holds back the sender's later events too, so free-form
/// JSON (parameters, outputs) is checked before it is ever sent.
pub fn check_matrix_json(value: &Value) -> Result<(), NotMatrixJson> {
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) if (-MATRIX_MAX_INT..=MATRIX_MAX_INT).contains(&i) => Ok(()),
            Some(_) => Err(NotMatrixJson::TooLarge(n.clone())),
            None if n.as_u64().is_some() => Err(NotMatrixJson::TooLarge(n.clone())),
            None => Err(NotMatrixJson::Fraction(n.clone())),
        },
        Value::Array(items) => items.iter().try_for_each(check_matrix_json),
        Value::Object(fields) => fields.values().try_for_each(check_matrix_json),
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

fn check_outcome(outcome: &Outcome) -> Result<(), Invalid> {
    match outcome {
        Outcome::Output(value) => {
            check_matrix_json(value).map_err(Invalid::Output)?;
            let size = json_size(value);
            if size > MAX_INLINE_OUTPUT_BYTES {
                return Err(Invalid::OutputTooLarge {
                    size,
                    limit: MAX_INLINE_OUTPUT_BYTES,
                });
            }
            Ok(())
        }
        Outcome::Error { reason, .. } => Ok(check_shown_text(reason)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Outgoing;
    use crate::task_kind::TaskKind;
    use serde_json::json;

    fn envelope(event_type: &str, sender: &str, state_key: Option<&str>, content: Value) -> Value {
        let mut raw = json!({
            "type": event_type, "event_id": "$e1", "sender": sender,
            "origin_server_ts": 1000, "room_id": "!r:localhost", "content": content,
        });
        if let Some(key) = state_key {
            raw["state_key"] = json!(key);
        }
        raw
    }

    fn problem(raw: &Value) -> Invalid {
        parse_event(raw).expect_err("should be rejected").problem
    }

    fn task_problem(raw: &Value) -> TaskError {
        match problem(raw) {
            Invalid::Task(problem) => problem,
            other => panic!("not a task's problem: {other:?}"),
        }
    }

    #[test]
    fn a_task_round_trips_through_its_content() {
        let mut spec = TaskSpec::new(
            TaskKind::Primes {
                start: 0,
                end: 1000,
            },
            4,
        );
        spec.deadline_ms = Some(60_000);
        spec.inputs.push(crate::events::Input {
            mxc: crate::ids::MxcUri::parse("mxc://hs/abc").unwrap(),
            size: 12,
            sha256: "ab".repeat(32),
        });
        let out = Outgoing::task(&spec);
        let seen = parse_event(&envelope(out.event_type, "@a:hs", None, out.content)).unwrap();
        assert_eq!(seen.event, PotluckEvent::Task(spec.into()));
    }

    #[test]
    fn unknown_versions_and_kinds_are_rejected_with_a_reason() {
        let future =
            json!({"v": 2, "kind": "primes", "params": {"start": 0, "end": 9}, "chunks": 1});
        assert_eq!(
            problem(&envelope("org.potluck.task", "@a:hs", None, future)),
            Invalid::UnsupportedVersion(2)
        );
        let unknown = json!({"v": 1, "kind": "mine_bitcoin", "params": {}, "chunks": 1});
        // Serde's words name the kinds this node knows.
        assert!(matches!(
            task_problem(&envelope("org.potluck.task", "@a:hs", None, unknown)),
            TaskError::Malformed(serde) if serde.contains("unknown variant `mine_bitcoin`, expected one of `primes`, `script`, `transcribe`, `kernel`")
        ));
        let wrong_type =
            json!({"v": 1, "kind": "primes", "params": {"start": "0", "end": 9}, "chunks": 1});
        assert!(matches!(
            task_problem(&envelope("org.potluck.task", "@a:hs", None, wrong_type)),
            TaskError::Malformed(_)
        ));
    }

    #[test]
    fn nobody_speaks_for_another_users_node() {
        let gone = json!({"v": 1, "online": false});
        let raw = envelope(
            "org.potluck.node",
            "@mallory:hs",
            Some("t1|@alice:hs"),
            gone.clone(),
        );
        assert!(matches!(
            problem(&raw),
            Invalid::ForeignNode { sender, node }
                if sender.as_str() == "@mallory:hs" && node.as_str() == "t1|@alice:hs"
        ));
        let ok = envelope("org.potluck.node", "@alice:hs", Some("t1|@alice:hs"), gone);
        assert!(matches!(
            parse_event(&ok).unwrap().event,
            PotluckEvent::NodeGone { .. }
        ));

        let result = json!({"v": 1, "m.relates_to": {"rel_type": "m.reference", "event_id": "$t"},
            "node": "t1|@alice:hs", "outcomes": [{"chunk": 0, "attempt": 1, "output": {"count": 1}}]});
        assert!(matches!(
            problem(&envelope("org.potluck.result", "@mallory:hs", None, result)),
            Invalid::ForeignReport { .. }
        ));
        let progress = json!({"v": 1, "m.relates_to": {"rel_type": "m.reference", "event_id": "$t"},
            "node": "t1|@alice:hs", "chunks": [{"chunk": 0, "attempt": 1, "percent": 50}]});
        assert!(matches!(
            problem(&envelope(
                "org.potluck.progress",
                "@mallory:hs",
                None,
                progress
            )),
            Invalid::ForeignReport { .. }
        ));
    }

    #[test]
    fn progress_is_a_whole_percentage() {
        let progress = |percent: Value| {
            json!({"v": 1, "m.relates_to": {"rel_type": "m.reference", "event_id": "$t"},
                "node": "t1|@alice:hs", "chunks": [{"chunk": 0, "attempt": 1, "percent": percent}]})
        };
        let report =
            |percent| envelope("org.potluck.progress", "@alice:hs", None, progress(percent));
        assert!(matches!(
            parse_event(&report(json!(25))).unwrap().event,
            PotluckEvent::Progress { .. }
        ));
        assert_eq!(
            problem(&report(json!(150))),
            Invalid::OverDone {
                percent: 150,
                chunk: 0
            }
        );
        assert!(matches!(
            problem(&report(json!(0.5))),
            Invalid::Malformed(_)
        ));
    }

    #[test]
    fn oversized_content_is_rejected() {
        let big = json!({"v": 1, "online": false, "pad": "x".repeat(MAX_CONTENT_BYTES)});
        let raw = envelope("org.potluck.node", "@alice:hs", Some("t1|@alice:hs"), big);
        assert!(matches!(
            problem(&raw),
            Invalid::TooLarge { size, limit: MAX_CONTENT_BYTES } if size > MAX_CONTENT_BYTES
        ));
    }

    #[test]
    fn impossible_values_are_rejected() {
        let no_slots = json!({"v": 1, "online": true, "caps": {"cores": 4, "slots": 0}});
        let raw = envelope("org.potluck.node", "@a:hs", Some("t|@a:hs"), no_slots);
        assert_eq!(problem(&raw), Invalid::Slots(0));
        let kinds: Vec<String> = (0..17).map(|i| format!("kind{i}")).collect();
        let endless =
            json!({"v": 1, "online": true, "caps": {"cores": 4, "slots": 1, "runs": kinds}});
        let raw = envelope("org.potluck.node", "@a:hs", Some("t|@a:hs"), endless);
        assert_eq!(problem(&raw), Invalid::TooManyKinds(17));
        let zero_chunks =
            json!({"v": 1, "kind": "primes", "params": {"start": 0, "end": 9}, "chunks": 0});
        assert_eq!(
            task_problem(&envelope("org.potluck.task", "@a:hs", None, zero_chunks)),
            TaskError::Chunks(0)
        );
        let attempt0 = json!({"v": 1, "m.relates_to": {"rel_type": "m.reference", "event_id": "$t"},
            "assignments": [{"chunk": 0, "node": "t|@a:hs", "attempt": 0}]});
        assert_eq!(
            problem(&envelope("org.potluck.assign", "@a:hs", None, attempt0)),
            Invalid::AttemptZero
        );
    }

    #[test]
    fn bad_inputs_and_unsupported_options_are_rejected() {
        let task = |extra: Value| {
            let mut content =
                json!({"v": 1, "kind": "primes", "params": {"start": 0, "end": 9}, "chunks": 1});
            content
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            task_problem(&envelope("org.potluck.task", "@a:hs", None, content))
        };
        let mxc = || crate::ids::MxcUri::parse("mxc://hs/x").unwrap();
        let bad_uri =
            json!({"inputs": [{"mxc": "https://evil/x", "size": 1, "sha256": "ab".repeat(32)}]});
        // The id's own check, inside serde's words.
        assert!(
            matches!(task(bad_uri), TaskError::Malformed(serde) if serde.contains("content URI"))
        );
        let bad_hash = json!({"inputs": [{"mxc": "mxc://hs/x", "size": 1, "sha256": "XYZ"}]});
        assert_eq!(task(bad_hash), TaskError::BadSha256 { mxc: mxc() });
        let huge = json!({"inputs": [{"mxc": "mxc://hs/x", "size": 9_000_000_000u64, "sha256": "ab".repeat(32)}]});
        assert_eq!(
            task(huge),
            TaskError::InputTooLarge {
                mxc: mxc(),
                size: 9_000_000_000
            }
        );
        assert_eq!(task(json!({"replication": 0})), TaskError::Replication(0));
        assert_eq!(task(json!({"replication": 9})), TaskError::Replication(9));
        assert!(matches!(
            task(json!({"parent": "not-an-event-id"})),
            TaskError::Malformed(_)
        ));
        assert_eq!(task(json!({"deadline_ms": 0})), TaskError::ZeroDeadline);
    }

    #[test]
    fn numbers_a_homeserver_would_refuse_are_refused_first() {
        assert!(check_matrix_json(&json!({"a": [1, -2, {"b": 9007199254740991_i64}]})).is_ok());
        let number = |n: Value| match n {
            Value::Number(n) => n,
            _ => unreachable!(),
        };
        assert_eq!(
            check_matrix_json(&json!({"cx": -0.5})),
            Err(NotMatrixJson::Fraction(number(json!(-0.5))))
        );
        assert_eq!(
            check_matrix_json(&json!([9007199254740992_i64])),
            Err(NotMatrixJson::TooLarge(number(json!(9007199254740992_i64))))
        );
        assert!(matches!(
            check_matrix_json(&json!(u64::MAX)),
            Err(NotMatrixJson::TooLarge(_))
        ));
        let result = json!({"v": 1, "m.relates_to": {"rel_type": "m.reference", "event_id": "$t"},
            "node": "t1|@alice:hs", "outcomes": [{"chunk": 0, "attempt": 1, "output": {"mean": 0.5}}]});
        assert!(matches!(
            problem(&envelope("org.potluck.result", "@alice:hs", None, result)),
            Invalid::Output(NotMatrixJson::Fraction(_))
        ));
        let script = json!({"v": 1, "kind": "script", "chunks": 2, "params": {
            "url": "https://x.org/s.js", "integrity": format!("sha384-{}", "A".repeat(64)),
            "args": {"k": 1}, "split": {"list": [1, 2.5]}}});
        assert!(matches!(
            task_problem(&envelope("org.potluck.task", "@a:hs", None, script)),
            TaskError::ChunkItem(NotMatrixJson::Fraction(_))
        ));
    }

    #[test]
    fn what_is_invalid_reads_as_people_read_it() {
        let raw = envelope("org.potluck.task", "@a:hs", None, json!({"v": 2}));
        assert_eq!(
            parse_event(&raw).unwrap_err().to_string(),
            "$e1: protocol version 2 is not supported (this node speaks 1); update Potluck"
        );
        assert_eq!(
            parse_event(&json!({"event_id": "$x"}))
                .unwrap_err()
                .to_string(),
            "$x: malformed event: missing or non-string field `type`"
        );
        let half = Number::from_f64(0.5).unwrap();
        assert_eq!(
            Invalid::Task(TaskError::Parameter(NotMatrixJson::Fraction(half))).to_string(),
            "a parameter 0.5 has a fraction, which Matrix events cannot carry; send it as a string or scaled to a whole number"
        );
        assert_eq!(
            Invalid::Output(NotMatrixJson::TooLarge(Number::from(u64::MAX))).to_string(),
            "18446744073709551615 is too large for a Matrix event (at most 2^53 - 1); send it as a string"
        );
        assert_eq!(
            TaskError::InputTooLarge {
                mxc: crate::ids::MxcUri::parse("mxc://hs/x").unwrap(),
                size: 9_000_000_000
            }
            .to_string(),
            "the input mxc://hs/x is 9000 MB; nodes download at most 200 MB"
        );
        assert_eq!(
            TaskError::PrivateTranscription.to_string(),
            "a transcription cannot be private: its transcript is a reply in the room"
        );
    }

    #[test]
    fn garbage_never_panics() {
        for raw in [
            json!(null),
            json!([]),
            json!({"type": 5}),
            json!("x"),
            envelope(
                "org.potluck.result",
                "@a:hs",
                None,
                json!({"v": 1, "m.relates_to": 7}),
            ),
        ] {
            assert!(parse_event(&raw).is_err());
        }
    }
}
