//! The room, as the node's machine sees it through matrix-sdk: events as
//! JSON in (decrypted where the room is encrypted), events out, the
//! dead-man switch as a delayed event, media down.

use manifest::digest::sha256_hex;
use manifest::events::Outgoing;
use manifest::transcription::AudioRef;
use matrix_sdk::media::{MediaFormat, MediaRequestParameters};
use matrix_sdk::room::{IncludeRelations, MessagesOptions, RelationsOptions};
use matrix_sdk::ruma::api::client::delayed_events::{
    delayed_state_event, update_delayed_event, DelayParameters,
};
use matrix_sdk::ruma::api::client::error::{ErrorKind, RetryAfter};
use matrix_sdk::ruma::api::client::state::get_state_events;
use matrix_sdk::ruma::api::Direction;
use matrix_sdk::ruma::events::relation::RelationType;
use matrix_sdk::ruma::events::room::{EncryptedFile, MediaSource};
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomOrAliasId, OwnedTransactionId, UInt};
use matrix_sdk::{Client, Room};
use serde_json::Value;
use std::time::Duration;

/// How far back the node reads the room's timeline when it starts: as many
/// events as a widget's host hands over on open, and a few pages more.
const TIMELINE_READ_EVENTS: usize = 1_000;
/// Events per page of the room's past.
const PAGE: u32 = 100;

/// Why an event was not sent, as the machine's `SendFailed` says it.
#[derive(Debug, Clone, PartialEq)]
pub struct SendError {
    pub retry_after_ms: Option<u64>,
    /// The homeserver refused this event itself: sending it again will not help.
    pub permanent: bool,
    pub reason: String,
}

impl SendError {
    fn from_sdk(error: &matrix_sdk::Error) -> Self {
        let reason = error.to_string();
        if let Some(ErrorKind::LimitExceeded { retry_after }) = error.client_api_error_kind() {
            let retry_after_ms = retry_after.as_ref().and_then(|after| match after {
                RetryAfter::Delay(delay) => Some(delay.as_millis() as u64),
                _ => None,
            });
            return Self {
                retry_after_ms,
                permanent: false,
                reason,
            };
        }
        // A 4xx other than the rate limit is about the event itself
        // (forbidden, too large); anything else (network, 5xx) may pass.
        let permanent = error
            .as_client_api_error()
            .is_some_and(|e| e.status_code.is_client_error());
        Self {
            retry_after_ms: None,
            permanent,
            reason,
        }
    }
}

/// A room event from the sync or the room's past, as the widget's host hands
/// it over: plain JSON with the room's id.
pub fn event_json<T>(raw: &Raw<T>, room: &Room) -> Option<Value> {
    let mut event: Value = serde_json::from_str(raw.json().get()).ok()?;
    event
        .as_object_mut()?
        .insert("room_id".into(), Value::String(room.room_id().to_string()));
    Some(event)
}

/// The room named by id or alias, joined if the account was only invited.
pub async fn join(client: &Client, room: &str) -> Result<Room, String> {
    let id = OwnedRoomOrAliasId::try_from(room)
        .map_err(|e| format!("'{room}' is not a room id or alias: {e}"))?;
    let room = client
        .join_room_by_id_or_alias(&id, &[])
        .await
        .map_err(|e| format!("could not join {room}: {e}"))?;
    Ok(room)
}

pub async fn send(room: &Room, out: &Outgoing) -> Result<(), SendError> {
    let sent = match &out.state_key {
        Some(key) => room
            .send_state_event_raw(out.event_type, key, out.content.clone())
            .await
            .map(|_| ()),
        None => {
            let send = room.send_raw(out.event_type, out.content.clone());
            match idempotent_transaction(out) {
                Some(txn) => send.with_transaction_id(&txn).await,
                None => send.await,
            }
            .map(|_| ())
        }
    };
    sent.map_err(|e| SendError::from_sdk(&e))
}

/// An assignment or result sent again after a send whose answer was lost
/// (a timeout) goes under the same transaction id, named by what it says:
/// if the first went in, the homeserver keeps that one and answers with it
/// instead of showing it twice. Other events may repeat their content on
/// purpose (a progress report renews a lease), so they get a fresh id.
fn idempotent_transaction(out: &Outgoing) -> Option<OwnedTransactionId> {
    if !out.waits_for_echo() {
        return None;
    }
    let said = format!("{}\n{}", out.event_type, out.content);
    Some(format!("potluck-{}", &sha256_hex(said.as_bytes())[..32]).into())
}

/// Schedules `gone` (a state event) to be published by the homeserver in
/// `timeout_ms` unless restarted; its delay id.
pub async fn arm_delayed(room: &Room, gone: &Outgoing, timeout_ms: u64) -> Result<String, String> {
    let key = gone
        .state_key
        .clone()
        .ok_or("a leave notice is a state event")?;
    let content =
        Raw::from_json(serde_json::value::to_raw_value(&gone.content).map_err(|e| e.to_string())?);
    let request = delayed_state_event::unstable::Request::new_raw(
        room.room_id().to_owned(),
        key,
        gone.event_type.into(),
        DelayParameters::Timeout {
            timeout: Duration::from_millis(timeout_ms),
        },
        content,
    );
    let response = room
        .client()
        .send(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.delay_id)
}

/// Restarts the delayed event's timeout, or publishes it now.
pub async fn update_delayed(client: &Client, delay_id: &str, now: bool) -> Result<(), String> {
    use update_delayed_event::unstable::{Request, UpdateAction};
    let action = if now {
        UpdateAction::Send
    } else {
        UpdateAction::Restart
    };
    client
        .send(Request::new(delay_id.to_owned(), action))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The room's current state events of `event_type` (one key, if named).
pub async fn read_state(
    room: &Room,
    event_type: &str,
    state_key: Option<&str>,
) -> Result<Vec<Value>, String> {
    let request = get_state_events::v3::Request::new(room.room_id().to_owned());
    let response = room
        .client()
        .send(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response
        .room_state
        .iter()
        .filter_map(|raw| event_json(raw, room))
        .filter(|e| e["type"] == event_type)
        .filter(|e| state_key.is_none_or(|key| e["state_key"] == key))
        .collect())
}

/// The room's newest events, decrypted, oldest first: what the node reads
/// of the timeline's past when it starts.
pub async fn read_recent(room: &Room) -> Result<Vec<Value>, String> {
    let mut events = Vec::new();
    let mut from = None;
    while events.len() < TIMELINE_READ_EVENTS {
        let mut options = MessagesOptions::new(Direction::Backward);
        options.from = from.take();
        options.limit = UInt::from(PAGE);
        let page = room.messages(options).await.map_err(|e| e.to_string())?;
        let got = page.chunk.len();
        events.extend(page.chunk.iter().filter_map(|e| event_json(e.raw(), room)));
        match page.end {
            Some(end) if got > 0 => from = Some(end),
            _ => break,
        }
    }
    events.reverse();
    Ok(events)
}

/// The events a sync left out (its timeline was `limited`), decrypted,
/// oldest first: read back from the sync's `prev_batch` to the last event
/// the node saw, or at most `TIMELINE_READ_EVENTS` of them.
pub async fn read_gap(
    room: &Room,
    prev_batch: String,
    last_seen: Option<&str>,
) -> Result<Vec<Value>, String> {
    let mut events = Vec::new();
    let mut from = Some(prev_batch);
    'pages: while events.len() < TIMELINE_READ_EVENTS {
        let mut options = MessagesOptions::new(Direction::Backward);
        options.from = from.take();
        options.limit = UInt::from(PAGE);
        let page = room.messages(options).await.map_err(|e| e.to_string())?;
        let got = page.chunk.len();
        for event in page.chunk.iter().filter_map(|e| event_json(e.raw(), room)) {
            if last_seen.is_some_and(|seen| event["event_id"] == seen) {
                break 'pages;
            }
            events.push(event);
        }
        match page.end {
            Some(end) if got > 0 => from = Some(end),
            _ => break,
        }
    }
    events.reverse();
    Ok(events)
}

/// Every event that relates to `event` with `rel_type` (`m.reference`,
/// `m.thread`), decrypted.
pub async fn read_relations(
    room: &Room,
    event: &str,
    rel_type: RelationType,
) -> Result<Vec<Value>, String> {
    let event = OwnedEventId::try_from(event).map_err(|e| e.to_string())?;
    let mut events = Vec::new();
    let mut from = None;
    loop {
        let options = RelationsOptions {
            from: from.take(),
            dir: Direction::Forward,
            limit: Some(UInt::from(PAGE)),
            include_relations: IncludeRelations::RelationsOfType(rel_type.clone()),
            recurse: false,
        };
        let page = room
            .relations(event.clone(), options)
            .await
            .map_err(|e| e.to_string())?;
        events.extend(page.chunk.iter().filter_map(|e| event_json(e.raw(), room)));
        match page.next_batch_token {
            Some(next) if !page.chunk.is_empty() => from = Some(next),
            _ => return Ok(events),
        }
    }
}

/// A voice message's bytes, decrypted where the room is encrypted, no more
/// than a node downloads.
pub async fn download_audio(client: &Client, audio: &AudioRef) -> Result<Vec<u8>, String> {
    if let Some(size) = audio.size {
        AudioRef::check_size(size)?;
    }
    let source = match (&audio.file, &audio.url) {
        (Some(file), _) => {
            let json = serde_json::to_value(file).map_err(|e| e.to_string())?;
            let file: EncryptedFile = serde_json::from_value(json)
                .map_err(|e| format!("the message's encrypted file is not readable: {e}"))?;
            MediaSource::Encrypted(Box::new(file))
        }
        (None, Some(url)) => MediaSource::Plain(url.as_str().into()),
        (None, None) => return Err("the message names no file".into()),
    };
    let request = MediaRequestParameters {
        source,
        format: MediaFormat::File,
    };
    let bytes = client
        .media()
        .get_media_content(&request, false)
        .await
        .map_err(|e| format!("the recording could not be downloaded: {e}"))?;
    AudioRef::check_size(bytes.len() as u64)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use manifest::events::{ChunkOutcome, ChunkProgress, Outcome};
    use manifest::ids::{EventId, NodeId, UserId};
    use std::sync::Arc;

    #[test]
    fn a_result_sent_again_goes_under_the_same_transaction_and_a_progress_report_never_does() {
        let task = EventId::parse("$t").unwrap();
        let node = NodeId::new(&UserId::parse("@bob:hs").unwrap(), "box").unwrap();
        let result = |count: u64| {
            let outcome = ChunkOutcome {
                chunk: 0,
                attempt: 1,
                outcome: Outcome::Output(Arc::new(serde_json::json!({ "count": count }))),
                compute_ms: Some(5),
            };
            Outgoing::result(&task, &node, &[outcome])
        };
        let first = idempotent_transaction(&result(25)).unwrap();
        assert_eq!(idempotent_transaction(&result(25)).unwrap(), first);
        assert_ne!(idempotent_transaction(&result(26)).unwrap(), first);
        let progress = ChunkProgress {
            chunk: 0,
            attempt: 1,
            percent: 50,
        };
        assert_eq!(
            idempotent_transaction(&Outgoing::progress(&task, &node, &[progress])),
            None
        );
    }
}
