//! How an event names the task it is about: an `m.reference` relation to
//! the task's event, so that a node opening the room later finds everything
//! about a task with `/relations`.

use crate::ids::EventId;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// `"m.relates_to": {"rel_type": "m.reference", "event_id": task}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relation {
    pub rel_type: String,
    pub event_id: EventId,
}

impl Relation {
    pub fn reference(task: &EventId) -> Self {
        Self {
            rel_type: "m.reference".into(),
            event_id: task.clone(),
        }
    }

    /// The task referenced, or why this is no reference to one.
    pub fn task(self) -> Result<EventId, NotAReference> {
        if self.rel_type != "m.reference" {
            return Err(NotAReference {
                rel_type: self.rel_type,
            });
        }
        Ok(self.event_id)
    }
}

/// A relation of another type where an event must reference its task.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("expected an m.reference to the task, found '{rel_type}'")]
pub struct NotAReference {
    pub rel_type: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_reference_names_a_task() {
        let task = EventId::parse("$task").unwrap();
        assert_eq!(Relation::reference(&task).task(), Ok(task.clone()));
        let thread = Relation {
            rel_type: "m.thread".into(),
            event_id: task,
        };
        let error = thread.task().unwrap_err();
        assert_eq!(
            error.to_string(),
            "expected an m.reference to the task, found 'm.thread'"
        );
    }
}
