//! The chat side of transcription: reading voice messages (and other audio)
//! out of `m.room.message` events, the `!transcribe` command a friend replies
//! with in any Matrix client, and the threaded reply that carries the
//! transcript back.

use crate::events::Outgoing;
use crate::ids::{EventId, MxcUri, UserId};
use crate::text::without_hidden_controls;
use crate::transcription::{AudioRef, EncryptedFile, TimedText, Transcript, WhisperModel};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;

/// What a reply starts with to ask for a transcript.
pub const TRANSCRIBE: &str = "!transcribe";
/// Marks Potluck's replies, with the task they are the result of.
pub const TRANSCRIPT_KEY: &str = "org.potluck.transcript";
/// Replies are ordinary room messages.
pub const REPLY_EVENT_TYPE: &str = "m.room.message";
/// The longest transcript text put in one reply; Matrix events stop at 64 KiB.
const MAX_REPLY_CHARS: usize = 30_000;

/// An audio message in the room.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceMessage {
    pub event_id: EventId,
    pub sender: UserId,
    pub sent_at: u64,
    /// The client's description, "Voice message" or a file name.
    pub body: String,
    pub duration_ms: Option<u64>,
    /// Recorded as a voice message (MSC3245), not an uploaded file.
    pub voice: bool,
    pub size: Option<u64>,
    pub audio: AudioRef,
}

impl VoiceMessage {
    /// The audio message in `event`, if it is one with usable media.
    pub fn from_event(event: &Value) -> Option<Self> {
        if event.get("type")?.as_str()? != "m.room.message" {
            return None;
        }
        let content = event.get("content")?;
        if content.get("msgtype")?.as_str()? != "m.audio" {
            return None;
        }
        let event_id = EventId::parse(event.get("event_id")?.as_str()?).ok()?;
        let url = match content.get("url").and_then(Value::as_str) {
            Some(url) => Some(MxcUri::parse(url).ok()?),
            None => None,
        };
        let file = match content.get("file") {
            Some(file) => Some(EncryptedFile::deserialize(file).ok()?),
            None => None,
        };
        if url.is_some() == file.is_some() {
            return None;
        }
        let info = content.get("info");
        let number = |key: &str| info.and_then(|i| i.get(key)).and_then(Value::as_u64);
        Some(Self {
            sender: UserId::parse(event.get("sender")?.as_str()?).ok()?,
            sent_at: event.get("origin_server_ts")?.as_u64()?,
            body: without_hidden_controls(
                content
                    .get("body")
                    .and_then(Value::as_str)
                    .unwrap_or("audio"),
            )
            .chars()
            .take(200)
            .collect(),
            duration_ms: number("duration"),
            voice: content.get("org.matrix.msc3245.voice").is_some(),
            size: number("size"),
            audio: AudioRef {
                message: event_id.clone(),
                url,
                file,
                mimetype: info
                    .and_then(|i| i.get("mimetype"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                size: number("size"),
            },
            event_id,
        })
    }
}

/// The event a message replies to, if it is a reply.
pub fn reply_to(event: &Value) -> Option<EventId> {
    let target = event
        .get("content")?
        .get("m.relates_to")?
        .get("m.in_reply_to")?
        .get("event_id")?
        .as_str()?;
    EventId::parse(target).ok()
}

/// The message a friend typed, without the quoted fallback of the message it
/// replies to (older clients put `> <@sender> …` lines first).
fn typed_text(body: &str) -> &str {
    let mut rest = body;
    while let Some(line_end) = rest.starts_with("> ").then(|| rest.find('\n')).flatten() {
        rest = &rest[line_end + 1..];
    }
    rest.trim()
}

/// Is this chat message a `!transcribe` command?
pub fn is_command(body: &str) -> bool {
    typed_text(body).split_whitespace().next() == Some(TRANSCRIBE)
}

/// Why a `!transcribe` message starts no transcription.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TranscribeError {
    #[error("not a !transcribe command")]
    NotACommand,
    #[error("no model is called '{name}' (known: {})", known_models())]
    UnknownModel { name: String },
    #[error("reply !transcribe to the voice message to transcribe")]
    NoReply,
    #[error("the message it replies to is not audio, or older than what this client has loaded")]
    NotAudio,
}

fn known_models() -> String {
    let known: Vec<&str> = WhisperModel::ALL.iter().map(|m| m.name()).collect();
    known.join(", ")
}

/// Reads `!transcribe [model]` into the model to use, or says what is wrong.
pub fn parse_command(body: &str) -> Result<WhisperModel, TranscribeError> {
    let mut words = typed_text(body).split_whitespace();
    if words.next() != Some(TRANSCRIBE) {
        return Err(TranscribeError::NotACommand);
    }
    match words.next() {
        None => Ok(WhisperModel::default()),
        Some(name) => WhisperModel::parse(name).ok_or_else(|| TranscribeError::UnknownModel {
            name: name.to_owned(),
        }),
    }
}

/// The reply that carries a transcription's outcome: an `m.notice` in the
/// voice message's thread (readable in any client), with the task and the
/// timed segments for machines. Sent as this struct, and read back as it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptReply {
    pub msgtype: String,
    pub body: String,
    #[serde(rename = "m.relates_to")]
    pub relates_to: ThreadRelation,
    #[serde(rename = "org.potluck.transcript")]
    pub transcript: TranscriptMarker,
}

/// In the voice message's thread; clients without threads show it as a
/// reply to the voice message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRelation {
    pub rel_type: String,
    pub event_id: EventId,
    pub is_falling_back: bool,
    #[serde(rename = "m.in_reply_to")]
    pub in_reply_to: InReplyTo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InReplyTo {
    pub event_id: EventId,
}

/// What machines read in a reply: the task it answers, and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptMarker {
    pub task: EventId,
    /// Timed text, left out (empty) where it would make the event too big.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<TimedText>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TranscriptReply {
    pub fn new(message: &EventId, task: &EventId, outcome: Result<&Transcript, &str>) -> Self {
        let marker = |segments, duration_ms, error| TranscriptMarker {
            task: task.clone(),
            segments,
            duration_ms,
            error,
        };
        let (body, transcript) = match outcome {
            Ok(t) if t.text.is_empty() => {
                ("(no speech)".to_string(), marker(Some(vec![]), None, None))
            }
            Ok(t) => {
                // Nodes' words: nothing in them may reorder the reply around them.
                let clean = without_hidden_controls(&t.text);
                let mut text: String = clean.chars().take(MAX_REPLY_CHARS).collect();
                if text.len() < clean.len() {
                    text.push_str(" …");
                }
                // Segments only while the whole event stays well inside 64 KiB.
                let size = serde_json::to_value(&t.segments)
                    .map_or(usize::MAX, |s| crate::validate::json_size(&s));
                let fits = size.saturating_add(text.len()) < 40_000;
                let segments = if fits { t.segments.clone() } else { vec![] };
                (text, marker(Some(segments), Some(t.duration_ms), None))
            }
            Err(reason) => (
                format!("Could not transcribe this: {reason}"),
                marker(None, None, Some(reason.to_owned())),
            ),
        };
        Self {
            msgtype: "m.notice".into(),
            body,
            relates_to: ThreadRelation {
                rel_type: "m.thread".into(),
                event_id: message.clone(),
                is_falling_back: true,
                in_reply_to: InReplyTo {
                    event_id: message.clone(),
                },
            },
            transcript,
        }
    }
}

/// The reply's content as JSON.
pub fn reply_content(
    message: &EventId,
    task: &EventId,
    outcome: Result<&Transcript, &str>,
) -> Value {
    let reply = TranscriptReply::new(message, task, outcome);
    serde_json::to_value(reply).unwrap_or_else(|_| json!({}))
}

/// The reply as an event to send.
pub fn reply(message: &EventId, task: &EventId, outcome: Result<&Transcript, &str>) -> Outgoing {
    Outgoing {
        event_type: REPLY_EVENT_TYPE,
        state_key: None,
        content: reply_content(message, task, outcome),
    }
}

/// The task a Potluck transcript reply is the result of, if `event` is one.
pub fn replied_task(event: &Value) -> Option<EventId> {
    task_of_reply(event.get("content")?)
}

/// The task a reply's content answers: what its marker says, read as the
/// reply was sent.
pub fn task_of_reply(content: &Value) -> Option<EventId> {
    let marker = TranscriptMarker::deserialize(content.get(TRANSCRIPT_KEY)?).ok()?;
    Some(marker.task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcription::TimedText;

    fn voice_event() -> Value {
        json!({
            "type": "m.room.message", "event_id": "$voice", "sender": "@carol:hs",
            "origin_server_ts": 1_700_000_000_000u64,
            "content": {
                "msgtype": "m.audio", "body": "Voice message", "url": "mxc://hs/ogg",
                "info": {"duration": 90_000, "mimetype": "audio/ogg", "size": 123_456},
                "org.matrix.msc1767.audio": {"duration": 90_000, "waveform": [0, 512]},
                "org.matrix.msc3245.voice": {}
            }
        })
    }

    #[test]
    fn voice_messages_are_read_with_their_audio_and_duration() {
        let voice = VoiceMessage::from_event(&voice_event()).unwrap();
        assert!(voice.voice);
        assert_eq!(voice.duration_ms, Some(90_000));
        assert_eq!(voice.audio.url.unwrap().as_str(), "mxc://hs/ogg");
        assert_eq!(voice.audio.mimetype.as_deref(), Some("audio/ogg"));

        let mut text = voice_event();
        text["content"]["msgtype"] = json!("m.text");
        assert!(VoiceMessage::from_event(&text).is_none());
        let mut broken = voice_event();
        broken["content"]["url"] = json!("https://not.mxc/x");
        assert!(VoiceMessage::from_event(&broken).is_none());
    }

    #[test]
    fn the_command_is_found_after_a_quoted_fallback_and_may_name_a_model() {
        assert!(is_command("!transcribe"));
        assert!(is_command(
            "> <@carol:hs> sent a voice message.\n\n!transcribe base"
        ));
        assert!(!is_command("please !transcribe"));
        assert_eq!(parse_command("!transcribe"), Ok(WhisperModel::TinyEn));
        assert_eq!(parse_command("!transcribe base"), Ok(WhisperModel::Base));
        assert_eq!(
            parse_command("!transcribe huge"),
            Err(TranscribeError::UnknownModel {
                name: "huge".into()
            })
        );
        assert_eq!(
            parse_command("!transcribe huge").unwrap_err().to_string(),
            "no model is called 'huge' (known: tiny.en, base)"
        );
        assert_eq!(
            TranscribeError::NoReply.to_string(),
            "reply !transcribe to the voice message to transcribe"
        );
        let reply = json!({"content": {"m.relates_to": {"m.in_reply_to": {"event_id": "$voice"}}}});
        assert_eq!(reply_to(&reply).unwrap().as_str(), "$voice");
    }

    #[test]
    fn the_reply_is_a_notice_in_the_voice_messages_thread_that_names_its_task() {
        let message = EventId::parse("$voice").unwrap();
        let task = EventId::parse("$task").unwrap();
        let transcript = Transcript {
            duration_ms: 4_000,
            text: "Hello there.".into(),
            segments: vec![TimedText {
                start_ms: 0,
                end_ms: 4_000,
                text: " Hello there.".into(),
            }],
        };
        let content = reply_content(&message, &task, Ok(&transcript));
        assert_eq!(content["msgtype"], "m.notice");
        assert_eq!(content["body"], "Hello there.");
        assert_eq!(content["m.relates_to"]["rel_type"], "m.thread");
        assert_eq!(content["m.relates_to"]["event_id"], "$voice");
        assert_eq!(content[TRANSCRIPT_KEY]["segments"][0]["end_ms"], 4_000);
        let seen = json!({"type": "m.room.message", "content": content});
        assert_eq!(replied_task(&seen), Some(task.clone()));

        let failed = reply_content(&message, &task, Err("the audio could not be decoded"));
        assert!(failed["body"]
            .as_str()
            .unwrap()
            .contains("could not be decoded"));
        assert_eq!(failed[TRANSCRIPT_KEY]["task"], "$task");
        assert_eq!(
            failed[TRANSCRIPT_KEY]["error"],
            "the audio could not be decoded"
        );
        assert!(failed[TRANSCRIPT_KEY].get("segments").is_none());

        // What is sent is what is read back.
        assert_eq!(
            content["m.relates_to"]["m.in_reply_to"]["event_id"],
            "$voice"
        );
        assert_eq!(content["m.relates_to"]["is_falling_back"], true);
        assert_eq!(content[TRANSCRIPT_KEY]["duration_ms"], 4_000);
        assert_eq!(
            TranscriptReply::deserialize(&content).unwrap(),
            TranscriptReply::new(&message, &task, Ok(&transcript))
        );
    }
}
