//! `org.potluck.cancel`: the submitter withdraws a task.

use super::relation::Relation;
use serde::{Deserialize, Serialize};

/// The content of a cancel event, sent and read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelContent {
    #[serde(rename = "m.relates_to")]
    pub relates_to: Relation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use crate::events::outgoing::test_support::read_back;
    use crate::events::{Outgoing, PotluckEvent};
    use crate::ids::EventId;

    #[test]
    fn a_cancel_reads_back_as_sent_with_or_without_a_reason() {
        let task = EventId::parse("$task").unwrap();
        for reason in [None, Some("not needed any more")] {
            assert_eq!(
                read_back(&Outgoing::cancel(&task, reason), "@carol:hs"),
                PotluckEvent::Cancel {
                    task: task.clone(),
                    reason: reason.map(str::to_owned)
                }
            );
        }
    }
}
