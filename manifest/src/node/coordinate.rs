//! Coordinating: the senior online node hands ready chunks to nodes, and
//! remembers what it assigned until the leases come back.

use super::action::Action;
use super::contribute::Contribution;
use super::outbox::Outbox;
use crate::events::{Assignment, Outgoing};
use crate::ids::{EventId, NodeId};
use crate::ledger::Ledger;
use crate::limits::{COORDINATOR_SETTLE_MS, MAX_ASSIGNMENTS_PER_EVENT, RESEND_AFTER_MS};
use crate::scheduler::{self, InFlight};
use std::collections::BTreeMap;

/// Whether this node is the coordinator, and has been online long enough
/// to have seen older nodes' announcements.
pub fn coordinating(ledger: &Ledger, contribution: Option<&Contribution>, now: u64) -> bool {
    let Some(c) = contribution else {
        return false;
    };
    let settled = ledger
        .node(c.node())
        .is_some_and(|n| now >= n.since.saturating_add(COORDINATOR_SETTLE_MS));
    settled && ledger.coordinator() == Some(c.node())
}

#[derive(Debug, Default)]
pub struct Coordination {
    /// Assignments sent and not yet seen back: (task, chunk, node) → (attempt, sent at).
    assigning: BTreeMap<(EventId, u32, NodeId), (u32, u64)>,
}

impl Coordination {
    /// Not (or no longer) the coordinator: nothing is in flight from here.
    pub fn clear(&mut self) {
        self.assigning.clear();
    }

    /// An assignment event was refused: its chunks may be planned again.
    pub fn refused(&mut self, task: &EventId, refused: &[Assignment]) {
        self.assigning.retain(|(t, chunk, node), _| {
            t != task || !refused.iter().any(|a| a.chunk == *chunk && &a.node == node)
        });
    }

    /// Hands ready chunks to nodes, as many events as the budget allows;
    /// what does not fit is planned again next round.
    pub fn assign(
        &mut self,
        ledger: &Ledger,
        outbox: &mut Outbox,
        now: u64,
        actions: &mut Vec<Action>,
    ) {
        // Forget assignments that came back (the lease is in the ledger, or
        // the chunk settled) or went missing.
        self.assigning
            .retain(|(task, chunk, node), (attempt, sent)| {
                let Some(record) = ledger.task(task) else {
                    return false;
                };
                let Some(c) = record.chunks.get(*chunk as usize) else {
                    return false;
                };
                let came_back = c
                    .leases
                    .iter()
                    .any(|l| &l.node == node && l.attempt == *attempt);
                // Still open: a backup of a chunk someone holds is not `Ready`.
                let open = c.done().is_none()
                    && c.failed().is_none()
                    && !ledger.task_status(record, now).is_terminal();
                open && !came_back && now < *sent + RESEND_AFTER_MS
            });
        let in_flight: InFlight = self.assigning.keys().cloned().collect();
        for (task, assignments) in scheduler::plan(ledger, now, &in_flight) {
            for assignments in assignments.chunks(MAX_ASSIGNMENTS_PER_EVENT) {
                if !outbox.try_take(now) {
                    return;
                }
                for a in assignments {
                    self.assigning
                        .insert((task.clone(), a.chunk, a.node.clone()), (a.attempt, now));
                }
                outbox.send(Outgoing::assign(&task, assignments), actions);
            }
        }
    }
}
