//! Chat: `!run` and `!transcribe` messages, which the coordinator turns
//! into tasks in the sender's name, once each; and the room's audio messages,
//! which `!transcribe` and the widget transcribe.

use crate::commands;
use crate::events::{ChatCommand, TaskSpec};
use crate::ids::{EventId, UserId};
use crate::ledger::Ledger;
use crate::limits::{COMMAND_MAX_AGE_MS, RESEND_AFTER_MS, VOICE_RECENT_MS};
use crate::rejection::{CommandError, Reason, Rejection};
use crate::sort;
use crate::sorted_map::SortedMap;
use crate::voice::{self, TranscribeError, VoiceMessage};

#[derive(Debug, Clone)]
struct PendingCommand {
    sender: UserId,
    body: String,
    sent_at: u64,
    reply_to: Option<EventId>,
    /// When this node submitted its task, if it did (not yet seen back).
    submitted_at: Option<u64>,
}

/// A chat message as the room delivered it.
pub struct ChatMessage {
    pub event_id: EventId,
    pub sender: UserId,
    pub body: String,
    pub sent_at: u64,
    pub reply_to: Option<EventId>,
}

#[derive(Debug, Default)]
pub struct Chat {
    /// `!run` and `!transcribe` messages not yet started as tasks.
    commands: SortedMap<EventId, PendingCommand>,
    /// The audio messages this node has seen, by event id.
    voices: SortedMap<EventId, VoiceMessage>,
}

impl Chat {
    /// Notes a command in the ledger (who sent it, so that only its task in
    /// their name counts) and keeps a recent one to start.
    pub fn message(&mut self, ledger: &mut Ledger, message: ChatMessage, now: u64) {
        let fresh = now.saturating_sub(message.sent_at) <= COMMAND_MAX_AGE_MS;
        let is_command = commands::is_command(&message.body) || voice::is_command(&message.body);
        if !is_command {
            return;
        }
        let event_id = message.event_id;
        ledger.note_chat_command(event_id.clone(), message.sender.clone(), message.sent_at);
        if fresh && ledger.task_for_command(&event_id).is_none() {
            self.commands.entry(event_id).or_insert(PendingCommand {
                sender: message.sender,
                body: message.body,
                sent_at: message.sent_at,
                reply_to: message.reply_to,
                submitted_at: None,
            });
        }
    }

    pub fn audio(&mut self, message: VoiceMessage) {
        self.voices.insert(message.event_id.clone(), message);
    }

    /// Whether an audio message came in the last `VOICE_RECENT_MS`.
    pub fn has_recent_voice(&self, now: u64) -> bool {
        self.voices
            .values()
            .any(|v| now.saturating_sub(v.sent_at) <= VOICE_RECENT_MS)
    }

    /// The room's audio messages this node has seen, oldest first.
    pub fn voice_messages(&self) -> impl Iterator<Item = &VoiceMessage> {
        let mut voices: Vec<&VoiceMessage> = self.voices.values().collect();
        sort::sort_by_key(&mut voices, |v| (v.sent_at, &v.event_id));
        voices.into_iter()
    }

    /// The tasks the coordinator starts for pending commands (again, if one
    /// did not come back), and the commands refused with the reason.
    pub fn start_commands(
        &mut self,
        ledger: &Ledger,
        coordinating: bool,
        now: u64,
    ) -> (Vec<TaskSpec>, Vec<Rejection>) {
        self.commands.retain(|id, c| {
            ledger.task_for_command(id).is_none()
                && now.saturating_sub(c.sent_at) <= COMMAND_MAX_AGE_MS
        });
        if !coordinating {
            return Default::default();
        }
        let mut specs = Vec::new();
        let mut refused = Vec::new();
        for (id, c) in self.commands.iter_mut() {
            if c.submitted_at.is_some_and(|at| now < at + RESEND_AFTER_MS) {
                continue;
            }
            let command = ChatCommand {
                event_id: id.clone(),
                sender: c.sender.clone(),
            };
            let parsed = if voice::is_command(&c.body) {
                transcribe_command(&c.body, c.reply_to.as_ref(), &self.voices, command)
                    .map_err(CommandError::from)
            } else {
                commands::parse_run(&c.body, ledger.allowlist(), command)
                    .map_err(CommandError::from)
            };
            match parsed {
                Ok(spec) => {
                    c.submitted_at = Some(now);
                    specs.push(spec);
                }
                Err(error) => refused.push((id.clone(), error)),
            }
        }
        let rejections = refused
            .into_iter()
            .map(|(id, error)| {
                self.commands.remove(&id);
                Rejection {
                    event_id: Some(id.to_string()),
                    reason: Reason::CommandNotRun(error),
                }
            })
            .collect();
        (specs, rejections)
    }
}

/// `!transcribe [model]`, replying to an audio message this node has seen,
/// as a task on the sender's behalf.
fn transcribe_command(
    body: &str,
    reply_to: Option<&EventId>,
    voices: &SortedMap<EventId, VoiceMessage>,
    command: ChatCommand,
) -> Result<TaskSpec, TranscribeError> {
    let model = voice::parse_command(body)?;
    let target = reply_to.ok_or(TranscribeError::NoReply)?;
    let message = voices.get(target).ok_or(TranscribeError::NotAudio)?;
    let mut spec = TaskSpec::transcription(message.audio.clone(), model);
    spec.command = Some(command);
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_kind::TaskKind;
    use crate::transcription::AudioRef;

    fn id(text: &str) -> EventId {
        EventId::parse(text).unwrap()
    }

    fn dan() -> UserId {
        UserId::parse("@dan:hs").unwrap()
    }

    fn said(body: &str, reply_to: Option<&str>, sent_at: u64) -> ChatMessage {
        ChatMessage {
            event_id: id(&format!("${sent_at}")),
            sender: dan(),
            body: body.into(),
            sent_at,
            reply_to: reply_to.map(id),
        }
    }

    fn voice(event_id: &str) -> VoiceMessage {
        VoiceMessage {
            event_id: id(event_id),
            sender: UserId::parse("@carol:hs").unwrap(),
            sent_at: 1,
            body: "Voice message".into(),
            duration_ms: Some(5_000),
            voice: true,
            size: None,
            audio: serde_json::from_value::<AudioRef>(
                serde_json::json!({"message": event_id, "url": "mxc://hs/a"}),
            )
            .unwrap(),
        }
    }

    #[test]
    fn the_coordinator_starts_a_transcribe_reply_in_the_senders_name_and_again_only_after_a_resend_time(
    ) {
        let (mut chat, mut ledger) = (Chat::default(), Ledger::new());
        chat.audio(voice("$voice"));
        chat.message(&mut ledger, said("hello", None, 10), 10);
        chat.message(&mut ledger, said("!transcribe", Some("$voice"), 20), 20);

        let (specs, refused) = chat.start_commands(&ledger, false, 30);
        assert!(
            specs.is_empty() && refused.is_empty(),
            "only the coordinator starts commands"
        );
        let (specs, refused) = chat.start_commands(&ledger, true, 30);
        assert!(refused.is_empty());
        let [spec] = &specs[..] else {
            panic!("{specs:?}")
        };
        assert!(matches!(&spec.kind, TaskKind::Transcribe(t) if t.audio.message == id("$voice")));
        let command = spec.command.as_ref().unwrap();
        assert_eq!((&command.event_id, &command.sender), (&id("$20"), &dan()));

        assert!(chat
            .start_commands(&ledger, true, 30 + RESEND_AFTER_MS - 1)
            .0
            .is_empty());
        assert_eq!(
            chat.start_commands(&ledger, true, 30 + RESEND_AFTER_MS)
                .0
                .len(),
            1
        );
        assert!(
            chat.start_commands(&ledger, true, 20 + COMMAND_MAX_AGE_MS + 1)
                .0
                .is_empty(),
            "too old to start"
        );
    }

    #[test]
    fn a_command_that_cannot_run_is_refused_once_with_the_reason() {
        let (mut chat, mut ledger) = (Chat::default(), Ledger::new());
        chat.message(&mut ledger, said("!transcribe", None, 20), 20);
        let (specs, refused) = chat.start_commands(&ledger, true, 30);
        assert!(specs.is_empty());
        let [rejection] = &refused[..] else {
            panic!("{refused:?}")
        };
        assert_eq!(
            rejection.reason,
            Reason::CommandNotRun(CommandError::Transcribe(TranscribeError::NoReply))
        );
        assert!(
            chat.start_commands(&ledger, true, 40).1.is_empty(),
            "refused once"
        );
    }
}
