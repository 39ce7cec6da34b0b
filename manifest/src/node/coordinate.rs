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
use crate::limits::{
    COORDINATOR_SETTLE_MS, LEASE_SOFT_MS, MAX_ASSIGNMENTS_PER_EVENT, RESEND_AFTER_MS,
};
use crate::scheduler::{self, InFlight};
use crate::sorted_map::SortedMap;

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
    /// Assignments sent and not yet seen back, by (task, chunk, node).
    assigning: SortedMap<(EventId, u32, NodeId), Sent>,
    /// Chunks this node claimed for itself, unannounced.
    claims: SortedMap<(EventId, u32), Claim>,
}

/// An assignment on its way to the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    attempt: u32,
    at: u64,
    /// The homeserver took it: it is in the room, and the chunk is the
    /// node's until its lease would lapse, however late this node reads
    /// the assignment back. Unanswered, it is planned again after
    /// `RESEND_AFTER_MS`.
    acknowledged: bool,
}

impl Sent {
    fn expires_at(&self) -> u64 {
        let wait = if self.acknowledged {
            LEASE_SOFT_MS
        } else {
            RESEND_AFTER_MS
        };
        self.at.saturating_add(wait)
    }
}

/// A chunk the coordinator runs without an assignment (see the module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub attempt: u32,
    /// When it was claimed: a claim whose result never came in is given
    /// up after `LEASE_SOFT_MS`, as a lease would be.
    pub at: u64,
}

impl Coordination {
    /// Not (or no longer) the coordinator: nothing is in flight from here,
    /// and no claim holds (the ledger would refuse its result).
    pub fn clear(&mut self) {
        self.assigning.clear();
        self.claims.clear();
    }

    /// The chunks this node claimed and may run, by (task, chunk).
    pub fn claims(&self) -> &SortedMap<(EventId, u32), Claim> {
        &self.claims
    }

    /// An assignment event was refused: its chunks may be planned again.
    pub fn refused(&mut self, task: &EventId, refused: &[Assignment]) {
        self.assigning.retain(|(t, chunk, node), _| {
            t != task || !refused.iter().any(|a| a.chunk == *chunk && &a.node == node)
        });
    }

    /// An assignment event is in the room: its chunks are the nodes' (see `Sent`).
    pub fn acknowledged(&mut self, task: &EventId, sent: &[Assignment]) {
        for a in sent {
            let key = (task.clone(), a.chunk, a.node.clone());
            if let Some(s) = self
                .assigning
                .get_mut(&key)
                .filter(|s| s.attempt == a.attempt)
            {
                s.acknowledged = true;
            }
        }
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
        // counted: done, or failed and ready for another), when its task
        // stops, or when it ran out as a lease would.
        self.claims.retain(|(task, chunk), claim| {
            ledger.task(task).is_some_and(|record| {
                let open = record.chunks.get(*chunk as usize).is_some_and(|c| {
                    c.attempts < claim.attempt && c.done().is_none() && c.failed().is_none()
                });
                let live = now < claim.at.saturating_add(LEASE_SOFT_MS);
                open && live && !ledger.task_status(record, now).is_terminal()
            })
        });
        // Forget assignments that came back (the lease is in the ledger, or
        // the chunk settled) or went missing.
        self.assigning.retain(|(task, chunk, node), sent| {
            let Some(record) = ledger.task(task) else {
                return false;
            };
            let Some(c) = record.chunks.get(*chunk as usize) else {
                return false;
            };
            let came_back = c
                .leases
                .iter()
                .any(|l| &l.node == node && l.attempt == sent.attempt);
            // Still open: a backup of a chunk someone holds is not `Ready`.
            let open = c.done().is_none()
                && c.failed().is_none()
                && !ledger.task_status(record, now).is_terminal();
            open && !came_back && now < sent.expires_at()
        });
        let claimed = self.claims.keys().map(|(t, c)| (t.clone(), *c, me.clone()));
        let in_flight: InFlight = self.assigning.keys().cloned().chain(claimed).collect();
        let events = outbox.available(now);
        for (task, mut assignments) in scheduler::plan_within(ledger, now, &in_flight, events) {
            let claimable = ledger
                .task(&task)
                .is_some_and(|t| t.spec.claimed_by_coordinator());
            if claimable {
                assignments.retain(|a| {
                    let mine = &a.node == me;
                    if mine {
                        let claim = Claim {
                            attempt: a.attempt,
                            at: now,
                        };
                        self.claims.insert((task.clone(), a.chunk), claim);
                    }
                    !mine
                });
            }
            for assignments in assignments.chunks(MAX_ASSIGNMENTS_PER_EVENT) {
                if !outbox.try_take(now) {
                    return;
                }
                for a in assignments {
                    let sent = Sent {
                        attempt: a.attempt,
                        at: now,
                        acknowledged: false,
                    };
                    self.assigning
                        .insert((task.clone(), a.chunk, a.node.clone()), sent);
                }
                outbox.send(Outgoing::assign(&task, assignments), actions);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TaskSpec;
    use crate::task_kind::TaskKind;

    /// Alice's node online since 0 and carol's two-chunk task.
    fn room() -> (Ledger, Contribution) {
        let task = TaskSpec::new(
            TaskKind::Primes {
                start: 0,
                end: 1_000,
            },
            2,
        );
        room_with(task)
    }

    /// Alice's node (two workers) online since 0 and carol's `task` as `$t`.
    fn room_with(task: TaskSpec) -> (Ledger, Contribution) {
        let (ledger, alice, caps) = super::super::test_support::alice_and_carols_task(&task);
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

    #[test]
    fn an_assignment_the_homeserver_took_is_not_planned_again_until_its_lease_would_lapse() {
        let (ledger, alice) = room();
        let (mut coordination, mut outbox, mut actions) =
            (Coordination::default(), Outbox::default(), Vec::new());
        let me = alice.node().clone();
        let now = COORDINATOR_SETTLE_MS;
        coordination.assign(&ledger, &me, &mut outbox, now, &mut actions);
        let sent: Vec<Assignment> = match &actions[0] {
            Action::Send { out, .. } => {
                serde_json::from_value(out.content["assignments"].clone()).unwrap()
            }
            _ => unreachable!(),
        };
        coordination.acknowledged(&EventId::parse("$t").unwrap(), &sent);
        // This node has not read it back yet (a late sync): the chunks are
        // the assignee's all the same.
        coordination.assign(
            &ledger,
            &me,
            &mut outbox,
            now + RESEND_AFTER_MS,
            &mut actions,
        );
        assert_eq!(assigned(&actions), [2]);
        coordination.assign(&ledger, &me, &mut outbox, now + LEASE_SOFT_MS, &mut actions);
        assert_eq!(assigned(&actions), [2, 2], "as a lease that lapsed");
    }

    #[test]
    fn a_plan_the_coordinator_gives_itself_is_claimed_without_an_event_and_claimed_again_if_it_runs_out(
    ) {
        let audio =
            serde_json::from_value(serde_json::json!({"message": "$voice", "url": "mxc://hs/v"}))
                .unwrap();
        let plan = crate::transcription::TranscribeTask::plan(
            audio,
            crate::transcription::WhisperModel::TinyEn,
        );
        let (ledger, alice) = room_with(TaskSpec::new(TaskKind::Transcribe(Box::new(plan)), 1));
        let (mut coordination, mut outbox, mut actions) =
            (Coordination::default(), Outbox::default(), Vec::new());
        let me = alice.node().clone();
        let now = COORDINATOR_SETTLE_MS;
        coordination.assign(&ledger, &me, &mut outbox, now, &mut actions);
        assert!(assigned(&actions).is_empty(), "no assignment event");
        let key = (EventId::parse("$t").unwrap(), 0);
        assert_eq!(
            coordination.claims()[&key],
            Claim {
                attempt: 1,
                at: now
            }
        );

        // No result within a lease's time: the claim is made again.
        let later = now + LEASE_SOFT_MS;
        coordination.assign(&ledger, &me, &mut outbox, later, &mut actions);
        assert_eq!(
            coordination.claims()[&key],
            Claim {
                attempt: 1,
                at: later
            }
        );
        coordination.clear();
        assert!(
            coordination.claims().is_empty(),
            "no claim outlives coordinating"
        );
    }
}
