//! What a driver feeds the node: what happened, as it happened.

use super::action::RequestId;
use super::history::HistoryRead;
use crate::allowlist::Allowlist;
use crate::events::{NodeCaps, Outcome, TaskSpec};
use crate::ids::{EventId, NodeId, UserId};
use crate::voice::{self, VoiceMessage};
use crate::worker_protocol::JobId;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An event from the room (live, read back from the timeline or relations).
    RoomEvent(Value),
    /// Several events read back at once (a task's relations, the room's state),
    /// in any order: cheaper than one by one when they arrive late.
    RoomEvents(Vec<Value>),
    /// Time passed; check leases, heartbeats and batches.
    Tick,
    /// The widget opened the room: read its past (`Action::ReadHistory`).
    ReadHistory,
    /// A part of the room's past `Action::ReadHistory` asked for, or why
    /// the host would not give it.
    HistoryRead {
        read: HistoryRead,
        events: Result<Vec<Value>, String>,
    },
    StartContributing {
        node: NodeId,
        caps: NodeCaps,
    },
    StopContributing,
    /// The dead-man switch could not publish the leave notice (never armed,
    /// or the host failed): the node sends it as an ordinary event.
    LeaveNoticeNotFired,
    Submit(TaskSpec),
    Cancel {
        task: EventId,
        reason: Option<String>,
    },
    /// A recording `Action::DecodeAudio` asked for, as 16 kHz mono samples,
    /// or why it could not be had.
    AudioDecoded {
        message: EventId,
        samples: Result<Vec<f32>, String>,
    },
    WorkerFinished {
        job: JobId,
        outcome: Outcome,
    },
    /// A worker says how far it got (0 to 1). Reported to the room only for
    /// long chunks, to keep their leases (see `limits::PROGRESS_EVERY_MS`).
    WorkerProgress {
        job: JobId,
        done: f32,
    },
    /// The friend's answer to `Action::AskConsent`. Declining is announced in
    /// the node's capabilities, so the coordinator sends that script elsewhere.
    ScriptConsent {
        integrity: String,
        allow: bool,
    },
    /// A chat message in the room (`m.room.message`); `!run` commands start
    /// tasks, anything else is ignored.
    ChatMessage {
        event_id: EventId,
        sender: UserId,
        body: String,
        /// The homeserver's timestamp of the message.
        sent_at: u64,
        /// The message it replies to: what `!transcribe` transcribes.
        reply_to: Option<EventId>,
    },
    /// A voice message (or other audio) in the room: a friend may ask for
    /// its transcript, in the widget or with a `!transcribe` reply.
    AudioMessage(VoiceMessage),
    /// A transcript reply seen in the room: that task is answered, if the
    /// sender is one of the nodes that ran it (see `counts_as_reply`).
    TranscriptPosted {
        task: EventId,
        sender: UserId,
    },
    /// The replies in a voice message's thread, as the host read them for
    /// `Action::ReadThread` (hosts do not feed thread replies live), or why
    /// they could not be read.
    ThreadRead {
        root: EventId,
        replies: Result<Vec<Value>, String>,
    },
    /// The host took the event `request` sent: it is in the room.
    Sent {
        request: RequestId,
    },
    /// The host or homeserver did not take the event `request` sent. One
    /// that may pass (a rate limit, a timeout, the network) is sent again
    /// once `retry_after_ms` is over; the ledger ignores any duplicate. A
    /// `permanent` refusal (the event itself is refused) is dropped.
    SendFailed {
        request: RequestId,
        retry_after_ms: Option<u64>,
        permanent: bool,
        /// What the host or homeserver said.
        reason: String,
    },
    /// A moderator's new allowlist for the room. It goes out first in line;
    /// if it is invalid or refused, `NodeMachine::allowlist_problem` says why.
    EditAllowlist(Allowlist),
}

impl Input {
    /// A room message (`m.room.message`) as the machine's input: a voice
    /// message, a transcript reply, or chat (where commands come from).
    /// `None` for any other event, or a message without the fields chat has.
    pub fn from_room_message(event: &Value) -> Option<Input> {
        if event.get("type")?.as_str()? != voice::REPLY_EVENT_TYPE {
            return None;
        }
        if let Some(message) = VoiceMessage::from_event(event) {
            return Some(Input::AudioMessage(message));
        }
        if let Some(task) = voice::replied_task(event) {
            let sender = UserId::parse(event.get("sender")?.as_str()?).ok()?;
            return Some(Input::TranscriptPosted { task, sender });
        }
        Some(Input::ChatMessage {
            event_id: EventId::parse(event.get("event_id")?.as_str()?).ok()?,
            sender: UserId::parse(event.get("sender")?.as_str()?).ok()?,
            body: event.get("content")?.get("body")?.as_str()?.to_owned(),
            sent_at: event.get("origin_server_ts")?.as_u64()?,
            reply_to: voice::reply_to(event),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(content: Value) -> Value {
        json!({"type": "m.room.message", "event_id": "$m", "sender": "@dan:hs",
            "origin_server_ts": 7, "content": content})
    }

    #[test]
    fn a_room_message_is_chat_a_voice_message_or_a_transcript_reply() {
        let chat = message(json!({"msgtype": "m.text", "body": "!run sum",
            "m.relates_to": {"m.in_reply_to": {"event_id": "$voice"}}}));
        let Some(Input::ChatMessage {
            body,
            sent_at,
            reply_to,
            ..
        }) = Input::from_room_message(&chat)
        else {
            panic!("chat is chat")
        };
        assert_eq!((body.as_str(), sent_at), ("!run sum", 7));
        assert_eq!(
            reply_to.map(|r| r.as_str().to_owned()),
            Some("$voice".into())
        );

        let voice = message(json!({"msgtype": "m.audio", "body": "Voice message",
            "url": "mxc://hs/a", "info": {"mimetype": "audio/ogg", "duration": 5000}}));
        assert!(matches!(
            Input::from_room_message(&voice),
            Some(Input::AudioMessage(_))
        ));

        let not_a_message = json!({"type": "m.reaction", "event_id": "$r", "sender": "@dan:hs",
            "origin_server_ts": 7, "content": {}});
        assert_eq!(Input::from_room_message(&not_a_message), None);
        let no_body = message(json!({"msgtype": "m.text"}));
        assert_eq!(Input::from_room_message(&no_body), None);
    }
}
