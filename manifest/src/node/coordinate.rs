//! Coordinating: the senior online node hands ready chunks to nodes, and
//! remembers what it assigned until the leases come back. A transcription's
//! plan that it gives itself it claims instead: it runs it without an
//! assignment event, and its result stands for the claim (see the ledger).

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
    /// Chunks this node claimed for itself, unannounced: (task, chunk) → attempt.
    claims: BTreeMap<(EventId, u32), u32>,
}

impl Coordination {
    /// Not (or no longer) the coordinator: nothing is in flight from here,
    /// and no claim holds (the ledger would refuse its result).
    pub fn clear(&mut self) {
        self.assigning.clear();
        self.claims.clear();
    }

    /// The chunks this node claimed and may run: (task, chunk) → attempt.
    pub fn claims(&self) -> &BTreeMap<(EventId, u32), u32> {
        &self.claims
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
        me: &NodeId,
        outbox: &mut Outbox,
        now: u64,
        actions: &mut Vec<Action>,
    ) {
        // A claim ends when the ledger has its result (the attempt is
        // counted: done, or failed and ready for another), or its task stops.
        self.claims.retain(|(task, chunk), attempt| {
            ledger.task(task).is_some_and(|record| {
                let open = record.chunks.get(*chunk as usize).is_some_and(|c| {
                    c.attempts < *attempt && c.done().is_none() && c.failed().is_none()
                });
                open && !ledger.task_status(record, now).is_terminal()
            })
        });
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
        let claimed = self.claims.keys().map(|(t, c)| (t.clone(), *c, me.clone()));
        let in_flight: InFlight = self.assigning.keys().cloned().chain(claimed).collect();
        for (task, mut assignments) in scheduler::plan(ledger, now, &in_flight) {
            let claimable = ledger
                .task(&task)
                .is_some_and(|t| t.spec.replication == 1 && t.spec.kind.claimed_by_coordinator());
            if claimable {
                assignments.retain(|a| {
                    let mine = &a.node == me;
                    if mine {
                        self.claims.insert((task.clone(), a.chunk), a.attempt);
                    }
                    !mine
                });
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::test_support::delivered_as;
    use crate::events::TaskSpec;
    use crate::ids::UserId;
    use crate::task_kind::TaskKind;

    /// Alice's node online since 0 and carol's two-chunk task.
    fn room() -> (Ledger, Contribution) {
        let alice = NodeId::new(&UserId::parse("@alice:hs").unwrap(), "tab").unwrap();
        let caps = super::super::test_support::caps(2);
        let mut ledger = Ledger::new();
        let online = Outgoing::node_online_since(&alice, &caps, Some(0));
        ledger
            .ingest(&delivered_as("$n", "@alice:hs", &online, 0))
            .unwrap();
        let task = TaskSpec::new(
            TaskKind::Primes {
                start: 0,
                end: 1_000,
            },
            2,
        );
        ledger
            .ingest(&delivered_as(
                "$t",
                "@carol:hs",
                &Outgoing::task(&task),
                100,
            ))
            .unwrap();
        (ledger, Contribution::start(alice, caps, 0))
    }

    fn assigned(actions: &[Action]) -> Vec<u64> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { out, .. } if out.event_type == crate::events::event_type::ASSIGN => {
                    Some(out.content["assignments"].as_array().unwrap().len() as u64)
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_senior_node_coordinates_once_settled_and_assigns_each_chunk_once_until_it_is_due_again()
    {
        let (ledger, alice) = room();
        assert!(!coordinating(
            &ledger,
            Some(&alice),
            COORDINATOR_SETTLE_MS - 1
        ));
        assert!(coordinating(&ledger, Some(&alice), COORDINATOR_SETTLE_MS));
        assert!(!coordinating(&ledger, None, COORDINATOR_SETTLE_MS));

        let (mut coordination, mut outbox, mut actions) =
            (Coordination::default(), Outbox::default(), Vec::new());
        let now = COORDINATOR_SETTLE_MS;
        let me = alice.node().clone();
        coordination.assign(&ledger, &me, &mut outbox, now, &mut actions);
        assert_eq!(assigned(&actions), [2], "both chunks in one event");
        assert!(coordination.claims().is_empty(), "only plans are claimed");
        coordination.assign(&ledger, &me, &mut outbox, now + 1, &mut actions);
        assert_eq!(assigned(&actions), [2], "in flight: not again");

        // The event was refused: its chunks may be planned at once.
        let refused: Vec<Assignment> = serde_json::from_value(match &actions[0] {
            Action::Send { out, .. } => out.content["assignments"].clone(),
            _ => unreachable!(),
        })
        .unwrap();
        coordination.refused(&EventId::parse("$t").unwrap(), &refused);
        coordination.assign(&ledger, &me, &mut outbox, now + 2, &mut actions);
        assert_eq!(assigned(&actions), [2, 2]);
        // Never seen back: sent again once the resend time is over.
        coordination.assign(
            &ledger,
            &me,
            &mut outbox,
            now + 2 + RESEND_AFTER_MS,
            &mut actions,
        );
        assert_eq!(assigned(&actions), [2, 2, 2]);
    }
}
