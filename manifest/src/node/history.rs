//! The room's past, read once when a node opens: hosts feed widgets only
//! live events, so the node asks for what it needs, one read at a time and
//! in an order that matters: who contributes, who left, the allowlist
//! (before tasks: whether a script may run is judged by it), recent chat
//! (audio before text, so that a `!transcribe` finds the message it replies
//! to), the tasks in the timeline, and everything that references each task
//! (a task's parts among them, whose references are read in turn). Every read
//! names what the granted capabilities name (a msgtype, a state key), or the
//! host refuses it.

use crate::events::{event_type, MEMBER};
use crate::ids::EventId;
use crate::voice::REPLY_EVENT_TYPE;
use serde_json::Value;
use std::collections::VecDeque;

/// The chat msgtypes read on open, each allowed by its own capability.
pub const CHAT_MSGTYPES: [&str; 3] = ["m.audio", "m.text", "m.notice"];

/// One read of the room's past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryRead {
    /// The current state events of a type (with this state key, if named).
    State {
        event_type: &'static str,
        state_key: Option<&'static str>,
    },
    /// The events of a type in the timeline the host lets the widget see.
    Timeline {
        event_type: &'static str,
        msgtype: Option<&'static str>,
    },
    /// Every event that references a task.
    References { task: EventId },
}

/// What of the room's past could not be read, for the friend to be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    Nodes,
    Members,
    Allowlist,
    /// Chat messages of this msgtype.
    Messages(&'static str),
    Tasks,
}

impl HistoryRead {
    /// What is missing if this read fails.
    pub fn part(&self) -> Unread {
        match self {
            Self::State { event_type, .. } if *event_type == MEMBER => Unread::Members,
            Self::State { event_type, .. } if *event_type == event_type::ALLOWLIST => {
                Unread::Allowlist
            }
            Self::State { .. } => Unread::Nodes,
            Self::Timeline {
                msgtype: Some(msgtype),
                ..
            } => Unread::Messages(msgtype),
            Self::Timeline { .. } | Self::References { .. } => Unread::Tasks,
        }
    }

    /// Whether its events are chat messages, handed over one by one.
    pub fn is_chat(&self) -> bool {
        matches!(
            self,
            Self::Timeline {
                msgtype: Some(_),
                ..
            }
        )
    }
}

#[derive(Debug, Default)]
pub struct History {
    /// Reads still to make, in order; references go first as they are found.
    to_read: VecDeque<HistoryRead>,
    /// The read the driver is making.
    reading: Option<HistoryRead>,
    unread: Vec<Unread>,
}

impl History {
    /// Starts reading the room's past: the first read to make.
    pub fn start(&mut self) -> Option<HistoryRead> {
        let state = |event_type, state_key| HistoryRead::State {
            event_type,
            state_key,
        };
        self.to_read = [
            state(event_type::NODE, None),
            state(MEMBER, None),
            state(event_type::ALLOWLIST, Some("")),
        ]
        .into_iter()
        .chain(CHAT_MSGTYPES.map(|msgtype| HistoryRead::Timeline {
            event_type: REPLY_EVENT_TYPE,
            msgtype: Some(msgtype),
        }))
        .chain([HistoryRead::Timeline {
            event_type: event_type::TASK,
            msgtype: None,
        }])
        .collect();
        self.unread.clear();
        self.next()
    }

    /// The driver read `read`: the tasks in what it read have their
    /// references read next (the last found first). The next read to make.
    pub fn read(
        &mut self,
        read: &HistoryRead,
        events: Result<&[Value], ()>,
    ) -> Option<HistoryRead> {
        if self.reading.as_ref() != Some(read) {
            return None; // Not asked for, or answered already.
        }
        self.reading = None;
        match events {
            Ok(events) => {
                for task in events.iter().filter_map(task_id_of) {
                    self.to_read.push_front(HistoryRead::References { task });
                }
            }
            Err(()) => {
                if !self.unread.contains(&read.part()) {
                    self.unread.push(read.part());
                }
            }
        }
        self.next()
    }

    /// Whether reads of the past are still to come back.
    pub fn reading(&self) -> bool {
        self.reading.is_some() || !self.to_read.is_empty()
    }

    /// What could not be read, in the order it was asked.
    pub fn unread(&self) -> &[Unread] {
        &self.unread
    }

    fn next(&mut self) -> Option<HistoryRead> {
        let read = self.to_read.pop_front()?;
        self.reading = Some(read.clone());
        Some(read)
    }
}

/// The id of a task event.
fn task_id_of(event: &Value) -> Option<EventId> {
    if event.get("type")?.as_str()? != event_type::TASK {
        return None;
    }
    EventId::parse(event.get("event_id")?.as_str()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(id: &str) -> Value {
        json!({"type": event_type::TASK, "event_id": id})
    }

    #[test]
    fn the_past_is_read_in_order_and_each_tasks_references_after_it() {
        let mut history = History::default();
        let mut next = history.start();
        let mut order = Vec::new();
        while let Some(read) = next {
            let events = match &read {
                HistoryRead::Timeline {
                    event_type: event_type::TASK,
                    ..
                } => vec![task("$t1"), task("$t2")],
                HistoryRead::References { task: t } if t.as_str() == "$t2" => vec![task("$part")],
                _ => vec![],
            };
            order.push(read.clone());
            next = history.read(&read, Ok(&events));
        }
        let references: Vec<&str> = order
            .iter()
            .filter_map(|r| match r {
                HistoryRead::References { task } => Some(task.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(references, ["$t2", "$part", "$t1"]);
        assert_eq!(order[0].part(), Unread::Nodes);
        assert_eq!(order[2].part(), Unread::Allowlist);
        assert_eq!(order[3].part(), Unread::Messages("m.audio"));
        assert_eq!(order[4].part(), Unread::Messages("m.text"));
        assert!(history.unread().is_empty());
    }

    #[test]
    fn what_cannot_be_read_is_named_once_and_the_rest_is_still_read() {
        let mut history = History::default();
        let mut next = history.start();
        let mut reads = 0;
        while let Some(read) = next {
            reads += 1;
            let refused = matches!(
                read,
                HistoryRead::Timeline {
                    msgtype: Some(_),
                    ..
                }
            );
            let result = if refused { Err(()) } else { Ok(&[][..]) };
            next = history.read(&read, result);
        }
        assert_eq!(reads, 7);
        assert_eq!(
            history.unread(),
            [
                Unread::Messages("m.audio"),
                Unread::Messages("m.text"),
                Unread::Messages("m.notice")
            ]
        );
    }
}
