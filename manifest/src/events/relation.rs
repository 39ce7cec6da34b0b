//! How an event names the task it is about: an `m.reference` relation to
//! the task's event, so that a node opening the room later finds everything
//! about a task with `/relations`.

use crate::ids::EventId;
use serde::{Deserialize, Serialize};

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
    pub fn task(self) -> Result<EventId, String> {
        if self.rel_type != "m.reference" {
            return Err(format!(
                "expected an m.reference to the task, found '{}'",
                self.rel_type
            ));
        }
        Ok(self.event_id)
    }
}
