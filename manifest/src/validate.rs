//! Turns whatever the room hands us into a `SeenEvent`, or a `Rejection` with a
//! reason a person can read. Never panics, whatever the JSON.
//!
//! Checks here need nothing but the event itself (shape, version, size, ids,
//! who may speak for a node). Checks that need history, such as "does this node
//! hold a lease on that chunk", are the ledger's.
//!
//! Membership needs no check of ours: the homeserver only accepts events into a
//! room from its members, and the widget only sees the room's events.

use crate::digest::is_sha256_hex;
use crate::events::{
    event_type, AssignContent, CancelContent, NodeCaps, NodeContent, Outcome, PotluckEvent,
    ProgressContent, Relation, ResultContent, SeenEvent, TaskSpec, WasOnline, MEMBER,
    PROTOCOL_VERSION,
};
use crate::ids::{EventId, NodeId, UserId};
use crate::limits::{
    max_attempts, MAX_CHUNKS, MAX_CONTENT_BYTES, MAX_INLINE_OUTPUT_BYTES, MAX_INPUTS,
    MAX_MEDIA_BYTES, MAX_REPLICATION, MAX_SLOTS,
};
use crate::task_kind::{Split, TaskKind};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// An event that was not taken into the ledger, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub event_id: Option<String>,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.event_id {
            Some(id) => write!(f, "{id}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
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
    fn read(raw: &'a Value) -> Result<Self, String> {
        let raw = raw.as_object().ok_or("an event must be a JSON object")?;
        let text = |field: &str| {
            raw.get(field)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("missing or non-string field `{field}`"))
        };
        static NO_CONTENT: Value = Value::Null;
        Ok(Self {
            event_type: text("type")?,
            event_id: text("event_id")?,
            sender: text("sender")?,
            origin_server_ts: raw
                .get("origin_server_ts")
                .and_then(Value::as_u64)
                .ok_or("missing or invalid field `origin_server_ts`")?,
            state_key: match raw.get("state_key") {
                None | Some(Value::Null) => None,
                Some(Value::String(key)) => Some(key.clone()),
                Some(_) => return Err("`state_key` is not a string".into()),
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
fn parse_membership(state_key: Option<String>, content: &Value) -> Result<PotluckEvent, String> {
    let user = state_key.ok_or("a membership event must be a state event")?;
    let user = UserId::parse(user).map_err(|e| e.to_string())?;
    content
        .get("membership")
        .and_then(Value::as_str)
        .ok_or("a membership event without a membership")?;
    Ok(PotluckEvent::Membership { user })
}

/// Validates one event from the room.
pub fn parse_event(raw: &Value) -> Result<SeenEvent, Rejection> {
    let event_id = raw
        .get("event_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let reject = |reason: String| Rejection {
        event_id: event_id.clone(),
        reason,
    };
    let envelope = Envelope::read(raw).map_err(|e| reject(format!("malformed event: {e}")))?;
    let event_id = EventId::parse(envelope.event_id).map_err(|e| reject(e.to_string()))?;
    let sender = UserId::parse(envelope.sender).map_err(|e| reject(e.to_string()))?;
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
) -> Result<PotluckEvent, String> {
    if event_type == MEMBER {
        return parse_membership(state_key, content);
    }
    if !is_potluck_type(event_type) {
        return Err(format!("'{event_type}' is not a Potluck event type"));
    }
    let size = json_size(content);
    if size > MAX_CONTENT_BYTES {
        return Err(format!(
            "content is {size} bytes; the limit is {MAX_CONTENT_BYTES}"
        ));
    }
    match content.get("v").map(Value::as_u64) {
        Some(Some(v)) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(Some(v)) => {
            return Err(format!(
                "protocol version {v} is not supported (this node speaks {PROTOCOL_VERSION}); update Potluck"
            ))
        }
        _ => return Err("missing protocol version \"v\"".into()),
    }
    match event_type {
        event_type::NODE => parse_node(state_key, content, sender),
        event_type::TASK => parse_task(content),
        event_type::ALLOWLIST => {
            if state_key.as_deref() != Some("") {
                return Err("the allowlist is a state event with an empty state key".into());
            }
            let list: crate::allowlist::Allowlist = typed(content)?;
            list.validate()?;
            Ok(PotluckEvent::Allowlist(list))
        }
        event_type::ASSIGN => {
            let c: AssignContent = typed(content)?;
            let task = c.relates_to.task()?;
            if c.assignments.is_empty() {
                return Err("an assignment names no chunk".into());
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
            let c: ResultContent = typed(content)?;
            let task = c.relates_to.task()?;
            check_own_node(&c.node, sender)?;
            if c.outcomes.is_empty() {
                return Err("a result names no chunk".into());
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
            let c: ProgressContent = typed(content)?;
            let task = c.relates_to.task()?;
            check_own_node(&c.node, sender)?;
            if c.chunks.is_empty() {
                return Err("a progress report names no chunk".into());
            }
            for p in &c.chunks {
                check_chunk_and_attempt(p.chunk, p.attempt)?;
                if p.percent > 100 {
                    return Err(format!(
                        "progress {}% of chunk {} is more than done",
                        p.percent, p.chunk
                    ));
                }
            }
            Ok(PotluckEvent::Progress {
                task,
                node: c.node,
                chunks: c.chunks,
            })
        }
        event_type::CANCEL => {
            let c: CancelContent = typed(content)?;
            let task = c.relates_to.task()?;
            if let Some(reason) = &c.reason {
                check_text(reason)?;
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

fn typed<T: DeserializeOwned>(content: &Value) -> Result<T, String> {
    T::deserialize(content).map_err(|e| format!("malformed content: {e}"))
}

fn parse_node(
    state_key: Option<String>,
    content: &Value,
    sender: &UserId,
) -> Result<PotluckEvent, String> {
    let key = state_key.ok_or("a node event must be a state event")?;
    let node = NodeId::parse(key).map_err(|e| e.to_string())?;
    if !node.is_owned_by(sender) {
        return Err(format!("{sender} cannot speak for node {node}"));
    }
    let c: NodeContent = typed(content)?;
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
    let caps = c
        .caps
        .ok_or("an online node must announce its capabilities")?;
    Ok(PotluckEvent::NodeOnline {
        node,
        caps: Box::new(caps),
        since: c.since,
    })
}

fn check_caps(caps: &NodeCaps) -> Result<(), String> {
    if caps.declined.len() > crate::allowlist::MAX_ALLOWED_SCRIPTS {
        return Err("a node declines more scripts than any allowlist holds".into());
    }
    if caps.slots == 0 || caps.slots > MAX_SLOTS {
        return Err(format!(
            "a node offers {} worker slots; it must offer 1 to {MAX_SLOTS}",
            caps.slots
        ));
    }
    Ok(())
}

/// Validates a task's content: what comes in from the room, and what a node
/// is about to submit.
pub fn parse_task(content: &Value) -> Result<PotluckEvent, String> {
    // Serde names the kinds it knows when it meets another: the enum's tags
    // are the one list of them.
    let spec: TaskSpec = typed(content)?;
    if let TaskKind::Script(script) = &spec.kind {
        check_matrix_json(&script.args).map_err(|e| format!("a parameter {e}"))?;
        if let Split::List(items) = &script.split {
            check_matrix_json(&Value::Array(items.clone())).map_err(|e| format!("a chunk {e}"))?;
        }
    }
    if spec.chunks == 0 || spec.chunks > MAX_CHUNKS {
        return Err(format!(
            "a task has {} chunks; it must have 1 to {MAX_CHUNKS}",
            spec.chunks
        ));
    }
    spec.kind.validate(spec.chunks).map_err(|e| e.to_string())?;
    // The coordinator reads a transcription's outputs to split and answer it.
    if spec.private && matches!(spec.kind, TaskKind::Transcribe(_)) {
        return Err(
            "a transcription cannot be private: its transcript is a reply in the room".into(),
        );
    }
    if spec.inputs.len() > MAX_INPUTS {
        return Err(format!(
            "a task has {} inputs; the limit is {MAX_INPUTS}",
            spec.inputs.len()
        ));
    }
    for input in &spec.inputs {
        if input.size > MAX_MEDIA_BYTES {
            return Err(format!(
                "the input {} is {} MB; nodes download at most {} MB",
                input.mxc,
                input.size / 1_000_000,
                MAX_MEDIA_BYTES / 1_000_000
            ));
        }
        if !is_sha256_hex(&input.sha256) {
            return Err(format!(
                "the sha256 of {} is not 64 lowercase hex digits",
                input.mxc
            ));
        }
    }
    if let Some(relation) = content.get("m.relates_to") {
        let relation =
            Relation::deserialize(relation).map_err(|e| format!("malformed m.relates_to: {e}"))?;
        let target = relation.task()?;
        if spec.parent.as_ref() != Some(&target) {
            return Err(format!(
                "a task may reference only its parent task, not {target}"
            ));
        }
    }
    if spec.nonce.as_ref().is_some_and(|n| n.len() > 64) {
        return Err("a task's nonce is longer than 64 bytes".into());
    }
    if spec.deadline_ms == Some(0) {
        return Err("a deadline of 0 ms can never be met".into());
    }
    if spec.replication == 0 || spec.replication > MAX_REPLICATION {
        return Err(format!(
            "replication {} is impossible: each chunk runs on 1 to {MAX_REPLICATION} nodes",
            spec.replication
        ));
    }
    Ok(PotluckEvent::Task(spec.into()))
}

/// Results and progress come only from the node's own account.
fn check_own_node(node: &NodeId, sender: &UserId) -> Result<(), String> {
    if node.is_owned_by(sender) {
        Ok(())
    } else {
        Err(format!(
            "{sender} reported for node {node}, which is not theirs"
        ))
    }
}

fn check_chunk_and_attempt(chunk: u32, attempt: u32) -> Result<(), String> {
    if chunk >= MAX_CHUNKS {
        return Err(format!(
            "chunk {chunk} is beyond any task's {MAX_CHUNKS} chunks"
        ));
    }
    if attempt == 0 {
        return Err("attempts count from 1".into());
    }
    let most = max_attempts(MAX_REPLICATION);
    if attempt > most {
        return Err(format!(
            "attempt {attempt} is beyond the {most} any chunk gets"
        ));
    }
    Ok(())
}

/// Largest integer Matrix's canonical JSON carries (2^53 - 1).
const MATRIX_MAX_INT: i64 = (1 << 53) - 1;

/// Matrix events carry canonical JSON: integers within ±(2^53 - 1), no
/// fractional numbers. A homeserver refuses any other event (`M_BAD_JSON`),
/// and Element then holds back the sender's later events too, so free-form
/// JSON (parameters, outputs) is checked before it is ever sent.
pub fn check_matrix_json(value: &Value) -> Result<(), String> {
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) if (-MATRIX_MAX_INT..=MATRIX_MAX_INT).contains(&i) => Ok(()),
            Some(_) => Err(format!("{n} is too large for a Matrix event (at most 2^53 - 1); send it as a string")),
            None if n.as_u64().is_some() => Err(format!("{n} is too large for a Matrix event (at most 2^53 - 1); send it as a string")),
            None => Err(format!("{n} has a fraction, which Matrix events cannot carry; send it as a string or scaled to a whole number")),
        },
        Value::Array(items) => items.iter().try_for_each(check_matrix_json),
        Value::Object(fields) => fields.values().try_for_each(check_matrix_json),
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

fn check_outcome(outcome: &Outcome) -> Result<(), String> {
    match outcome {
        Outcome::Output(value) => {
            check_matrix_json(value)?;
            let size = json_size(value);
            if size > MAX_INLINE_OUTPUT_BYTES {
                return Err(format!(
                    "an inline output is {size} bytes; the limit is {MAX_INLINE_OUTPUT_BYTES}"
                ));
            }
            Ok(())
        }
        Outcome::Error { reason, .. } => check_text(reason),
    }
}

fn check_text(text: &str) -> Result<(), String> {
    crate::text::check_shown_text(text)
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

    fn reason(raw: &Value) -> String {
        parse_event(raw).expect_err("should be rejected").reason
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
        assert!(reason(&envelope("org.potluck.task", "@a:hs", None, future)).contains("version 2"));
        let unknown = json!({"v": 1, "kind": "mine_bitcoin", "params": {}, "chunks": 1});
        assert!(
            reason(&envelope("org.potluck.task", "@a:hs", None, unknown))
                .contains("unknown variant `mine_bitcoin`, expected one of `primes`, `script`, `transcribe`, `kernel`")
        );
        let wrong_type =
            json!({"v": 1, "kind": "primes", "params": {"start": "0", "end": 9}, "chunks": 1});
        assert!(
            reason(&envelope("org.potluck.task", "@a:hs", None, wrong_type)).contains("malformed")
        );
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
        assert!(reason(&raw).contains("cannot speak for"));
        let ok = envelope("org.potluck.node", "@alice:hs", Some("t1|@alice:hs"), gone);
        assert!(matches!(
            parse_event(&ok).unwrap().event,
            PotluckEvent::NodeGone { .. }
        ));

        let result = json!({"v": 1, "m.relates_to": {"rel_type": "m.reference", "event_id": "$t"},
            "node": "t1|@alice:hs", "outcomes": [{"chunk": 0, "attempt": 1, "output": {"count": 1}}]});
        assert!(
            reason(&envelope("org.potluck.result", "@mallory:hs", None, result))
                .contains("not theirs")
        );
        let progress = json!({"v": 1, "m.relates_to": {"rel_type": "m.reference", "event_id": "$t"},
            "node": "t1|@alice:hs", "chunks": [{"chunk": 0, "attempt": 1, "percent": 50}]});
        assert!(reason(&envelope(
            "org.potluck.progress",
            "@mallory:hs",
            None,
            progress
        ))
        .contains("not theirs"));
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
        assert!(reason(&report(json!(150))).contains("more than done"));
        assert!(reason(&report(json!(0.5))).contains("malformed"));
    }

    #[test]
    fn oversized_content_is_rejected() {
        let big = json!({"v": 1, "online": false, "pad": "x".repeat(MAX_CONTENT_BYTES)});
        let raw = envelope("org.potluck.node", "@alice:hs", Some("t1|@alice:hs"), big);
        assert!(reason(&raw).contains("bytes"));
    }

    #[test]
    fn impossible_values_are_rejected() {
        let no_slots = json!({"v": 1, "online": true, "caps": {"cores": 4, "slots": 0}});
        let raw = envelope("org.potluck.node", "@a:hs", Some("t|@a:hs"), no_slots);
        assert!(reason(&raw).contains("worker slots"));
        let zero_chunks =
            json!({"v": 1, "kind": "primes", "params": {"start": 0, "end": 9}, "chunks": 0});
        assert!(
            reason(&envelope("org.potluck.task", "@a:hs", None, zero_chunks)).contains("chunks")
        );
        let attempt0 = json!({"v": 1, "m.relates_to": {"rel_type": "m.reference", "event_id": "$t"},
            "assignments": [{"chunk": 0, "node": "t|@a:hs", "attempt": 0}]});
        assert!(
            reason(&envelope("org.potluck.assign", "@a:hs", None, attempt0)).contains("attempts")
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
            reason(&envelope("org.potluck.task", "@a:hs", None, content))
        };
        let bad_uri =
            json!({"inputs": [{"mxc": "https://evil/x", "size": 1, "sha256": "ab".repeat(32)}]});
        assert!(task(bad_uri).contains("content URI"));
        let bad_hash = json!({"inputs": [{"mxc": "mxc://hs/x", "size": 1, "sha256": "XYZ"}]});
        assert!(task(bad_hash).contains("sha256"));
        let huge = json!({"inputs": [{"mxc": "mxc://hs/x", "size": 9_000_000_000u64, "sha256": "ab".repeat(32)}]});
        assert!(task(huge).contains("9000 MB; nodes download at most 200 MB"));
        assert!(task(json!({"replication": 0})).contains("impossible"));
        assert!(task(json!({"replication": 9})).contains("impossible"));
        assert!(task(json!({"parent": "not-an-event-id"})).contains("malformed"));
        assert!(task(json!({"deadline_ms": 0})).contains("never be met"));
    }

    #[test]
    fn numbers_a_homeserver_would_refuse_are_refused_first() {
        assert!(check_matrix_json(&json!({"a": [1, -2, {"b": 9007199254740991_i64}]})).is_ok());
        assert!(check_matrix_json(&json!({"cx": -0.5}))
            .unwrap_err()
            .contains("fraction"));
        assert!(check_matrix_json(&json!([9007199254740992_i64]))
            .unwrap_err()
            .contains("too large"));
        assert!(check_matrix_json(&json!(u64::MAX))
            .unwrap_err()
            .contains("too large"));
        let result = json!({"v": 1, "m.relates_to": {"rel_type": "m.reference", "event_id": "$t"},
            "node": "t1|@alice:hs", "outcomes": [{"chunk": 0, "attempt": 1, "output": {"mean": 0.5}}]});
        assert!(
            reason(&envelope("org.potluck.result", "@alice:hs", None, result)).contains("fraction")
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
