//! Transcript replies: the coordinator answers each finished transcription
//! in the voice message's thread, exactly once. Hosts do not feed thread
//! replies back live, so the thread is read first; a reply is posted only
//! after its thread was read and found without one, and posted again only
//! after a send that failed and a second read of the thread.

use super::action::Action;
use super::input::Input;
use super::outbox::{Outbox, Whose};
use crate::events::Outgoing;
use crate::ids::{EventId, UserId};
use crate::ledger::{Ledger, TaskRecord, TaskStatus};
use crate::limits::{COMMAND_MAX_AGE_MS, RESEND_AFTER_MS};
use crate::sorted_map::SortedMap;
use crate::task_kind::TaskKind;
use crate::transcription::Transcript;
use crate::voice;
use serde::Deserialize;
use serde_json::Value;

/// A transcription's reply, as this node knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyState {
    /// The thread is being read (asked at `since`).
    Checking { since: u64 },
    /// The thread had no reply: queued or handed to the host, until the host
    /// says it was sent (`Input::Sent`) or failed (`Input::SendFailed`).
    Sending,
    /// In the room: seen there, or the host confirmed the send.
    Posted,
}

#[derive(Debug, Default)]
pub struct Replies {
    /// Where each finished transcription's reply stands.
    states: SortedMap<EventId, ReplyState>,
}

impl Replies {
    /// A transcript reply was seen in the room: if its sender counts, the
    /// transcription is answered.
    pub fn seen(&mut self, ledger: &Ledger, me: Option<&UserId>, task: EventId, sender: &UserId) {
        if counts_as_reply(ledger, me, &task, sender) {
            self.states.insert(task, ReplyState::Posted);
        }
    }

    /// The host took `out`: if it is a reply, it is in the room.
    pub fn sent(&mut self, out: &Outgoing) {
        if let Some(task) = reply_task(out) {
            self.states.insert(task, ReplyState::Posted);
        }
    }

    /// The host did not take `out`. A reply that failed may still have
    /// landed: it goes out again only once its thread was read and found
    /// without it. `false` if `out` is not a reply.
    pub fn send_failed(&mut self, out: &Outgoing) -> bool {
        let Some(task) = reply_task(out) else {
            return false;
        };
        self.states.remove(&task);
        true
    }

    /// Asks to read the thread of each finished transcription not yet
    /// answered. Only recent ones: an older task's reply may be beyond what
    /// the host lets this node read.
    pub fn read_threads(&mut self, ledger: &Ledger, now: u64, actions: &mut Vec<Action>) {
        let mut reads = Vec::new();
        for task in ledger.tasks() {
            let Some(message) = transcription_root(task) else {
                continue;
            };
            let due = match self.states.get(&task.id) {
                None => true,
                // The host never answered: read again.
                Some(ReplyState::Checking { since }) => {
                    now >= since.saturating_add(RESEND_AFTER_MS)
                }
                Some(ReplyState::Sending | ReplyState::Posted) => false,
            };
            // Checked before the status, which merges the whole transcript.
            let recent = || now.saturating_sub(last_activity(ledger, task)) <= COMMAND_MAX_AGE_MS;
            if due && recent() && ledger.task_status(task, now).is_terminal() {
                reads.push((task.id.clone(), message.clone()));
            }
        }
        for (task, root) in reads {
            self.states
                .insert(task, ReplyState::Checking { since: now });
            actions.push(Action::ReadThread { root });
        }
    }

    /// A thread was read: replies in it count (`counts_as_reply`), and each
    /// transcription of its message still without one gets its reply queued.
    pub fn thread_read(
        &mut self,
        ledger: &Ledger,
        me: Option<&UserId>,
        root: &EventId,
        replies: Result<Vec<Value>, String>,
        outbox: &mut Outbox,
        now: u64,
    ) {
        // Unreadable: the transcription stays `Checking` and is read again later.
        let Ok(replies) = replies else { return };
        for reply in &replies {
            if let Some(Input::TranscriptPosted { task, sender }) = Input::from_room_message(reply)
            {
                self.seen(ledger, me, task, &sender);
            }
        }
        let checking: Vec<EventId> = self
            .states
            .iter()
            .filter(|(_, state)| matches!(state, ReplyState::Checking { .. }))
            .map(|(task, _)| task.clone())
            .collect();
        for task in checking {
            let Some(record) = ledger.task(&task) else {
                continue;
            };
            if transcription_root(record) != Some(root) {
                continue;
            }
            if let Some(reply) = reply_for(ledger, record, now) {
                self.states.insert(task, ReplyState::Sending);
                outbox.push(reply, Whose::Node);
            }
        }
    }
}

/// Whether a transcript reply from `sender` answers `task`: one from
/// this node's own account, the coordinator's, or a node that ran part of
/// it. Anyone else's "transcript" is only a message.
fn counts_as_reply(ledger: &Ledger, me: Option<&UserId>, task: &EventId, sender: &UserId) -> bool {
    if me == Some(sender) {
        return true;
    }
    if ledger.coordinator().is_some_and(|c| c.is_owned_by(sender)) {
        return true;
    }
    let Some(record) = ledger.task(task) else {
        return false;
    };
    std::iter::once(record)
        .chain(record.children.iter().filter_map(|id| ledger.task(id)))
        .flat_map(|t| &t.chunks)
        .any(|chunk| {
            chunk.leases.iter().any(|l| l.node.is_owned_by(sender))
                || chunk.votes.iter().any(|v| v.node.is_owned_by(sender))
                || chunk.done().is_some_and(|d| d.node.is_owned_by(sender))
        })
}

/// When anything last happened to a task and its parts (homeserver time).
fn last_activity(ledger: &Ledger, task: &TaskRecord) -> u64 {
    std::iter::once(task)
        .chain(task.children.iter().filter_map(|id| ledger.task(id)))
        .flat_map(|t| {
            std::iter::once(t.submitted_at)
                .chain(t.chunks.iter().filter_map(|c| c.done().map(|d| d.at)))
        })
        .max()
        .unwrap_or_default()
}

/// The voice message a top-level transcription answers in its thread.
fn transcription_root(task: &TaskRecord) -> Option<&EventId> {
    let TaskKind::Transcribe(transcribe) = &task.spec.kind else {
        return None;
    };
    (transcribe.is_plan() && task.spec.parent.is_none()).then_some(&transcribe.audio.message)
}

/// The reply a finished transcription gets; `None` while it still runs.
fn reply_for(ledger: &Ledger, task: &TaskRecord, now: u64) -> Option<Outgoing> {
    let TaskKind::Transcribe(transcribe) = &task.spec.kind else {
        return None;
    };
    let message = &transcribe.audio.message;
    Some(match ledger.task_status(task, now) {
        TaskStatus::Done { result } => match Transcript::deserialize(&result) {
            Ok(transcript) => voice::reply(message, &task.id, Ok(&transcript)),
            Err(e) => voice::reply(message, &task.id, Err(&e.to_string())),
        },
        TaskStatus::Failed { reason } => voice::reply(message, &task.id, Err(&reason)),
        _ => return None,
    })
}

/// The transcription a transcript reply answers, if `out` is one.
fn reply_task(out: &Outgoing) -> Option<EventId> {
    (out.event_type == voice::REPLY_EVENT_TYPE)
        .then(|| voice::task_of_reply(&out.content))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> EventId {
        EventId::parse(text).unwrap()
    }

    #[test]
    fn a_reply_that_failed_is_forgotten_so_that_its_thread_is_read_again() {
        let reply = voice::reply(&id("$voice"), &id("$task"), Err("no speech"));
        assert_eq!(reply_task(&reply), Some(id("$task")));
        let mut replies = Replies::default();
        replies.sent(&reply);
        assert_eq!(replies.states.get(&id("$task")), Some(&ReplyState::Posted));
        assert!(replies.send_failed(&reply));
        assert_eq!(replies.states.get(&id("$task")), None);
        let not_a_reply = Outgoing::cancel(&id("$task"), None);
        assert!(!replies.send_failed(&not_a_reply));
    }

    #[test]
    fn only_this_account_the_coordinator_or_a_node_that_ran_it_answers_a_transcription() {
        let ledger = Ledger::new();
        let (me, mallory) = (
            UserId::parse("@alice:hs").unwrap(),
            UserId::parse("@mallory:hs").unwrap(),
        );
        assert!(counts_as_reply(&ledger, Some(&me), &id("$task"), &me));
        assert!(!counts_as_reply(&ledger, Some(&me), &id("$task"), &mallory));
        let mut replies = Replies::default();
        replies.seen(&ledger, Some(&me), id("$task"), &mallory);
        assert!(replies.states.is_empty());
    }
}
