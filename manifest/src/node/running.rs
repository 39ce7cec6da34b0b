//! Chunks running in this node's workers: starting what the coordinator
//! assigned (in fairness order, up to the node's slots, with the friend's
//! consent), stopping what nobody needs any more, and reporting progress on
//! long chunks so that their leases hold.

use super::action::Action;
use super::consent::{Consent, Consents};
use super::contribute::Contribution;
use super::coordinate::Claim;
use super::outbox::Outbox;
use super::results::Results;
use crate::allowlist::AllowedScript;
use crate::events::{ChunkProgress, Outgoing};
use crate::ids::{EventId, NodeId};
use crate::ledger::{Lease, Ledger};
use crate::limits::PROGRESS_EVERY_MS;
use crate::scheduler;
use crate::sort;
use crate::sorted_map::SortedMap;
use crate::worker_protocol::JobId;

#[derive(Debug, Clone)]
pub struct RunningChunk {
    pub task: EventId,
    pub chunk: u32,
    pub attempt: u32,
    done: f32,
    /// When progress on this chunk was last sent to the room.
    reported_at: Option<u64>,
    pub started_at: u64,
}

/// What a node may run: the leases the ledger shows it holds, and the
/// chunks it claimed as coordinator, by (task, chunk).
#[derive(Clone, Copy)]
pub struct Given<'a> {
    pub ledger: &'a Ledger,
    pub claims: &'a SortedMap<(EventId, u32), Claim>,
}

#[derive(Debug, Default)]
pub struct Running {
    jobs: SortedMap<JobId, RunningChunk>,
    next_job: JobId,
}

impl Running {
    /// A worker says how far it got (0 to 1).
    pub fn progress(&mut self, job: JobId, done: f32) {
        if let Some(run) = self.jobs.get_mut(&job) {
            run.done = done.clamp(0.0, 1.0);
        }
    }

    /// Whether `job` runs (or waits for its audio) here.
    pub fn contains(&self, job: JobId) -> bool {
        self.jobs.contains_key(&job)
    }

    /// A worker finished `job`: what it ran, unless it was aborted.
    pub fn get(&self, job: JobId) -> Option<&RunningChunk> {
        self.jobs.get(&job)
    }

    /// Whether a chunk of `task` runs (or waits for its audio) here.
    pub fn runs_task(&self, task: &EventId) -> bool {
        self.jobs.values().any(|run| &run.task == task)
    }

    pub fn finish(&mut self, job: JobId) -> Option<RunningChunk> {
        self.jobs.remove(&job)
    }

    /// Stops every job (the friend stopped contributing).
    pub fn abort_all(&mut self, actions: &mut Vec<Action>) {
        actions.extend(self.jobs.keys().map(|&job| Action::AbortJob { job }));
        self.jobs.clear();
    }

    /// Progress on `task` was refused: it is sent again when next due.
    pub fn progress_refused(&mut self, task: &EventId) {
        for run in self.jobs.values_mut().filter(|r| &r.task == task) {
            run.reported_at = None;
        }
    }

    /// Stops work nobody needs any more: done elsewhere, cancelled or failed.
    pub fn abort_obsolete(&mut self, ledger: &Ledger, now: u64, actions: &mut Vec<Action>) {
        let obsolete: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(_, run)| {
                ledger.task(&run.task).is_none_or(|task| {
                    ledger.task_status(task, now).is_terminal()
                        || task
                            .chunks
                            .get(run.chunk as usize)
                            .is_none_or(|c| c.done().is_some() || c.failed().is_some())
                })
            })
            .map(|(&job, _)| job)
            .collect();
        for job in obsolete {
            self.jobs.remove(&job);
            actions.push(Action::AbortJob { job });
        }
    }

    /// Runs chunks the coordinator gave this node, up to its slots. A chunk
    /// of a script the friend declined goes back at once (as a retriable
    /// failure in `results`); one they were not asked about waits for them.
    pub fn start_assigned(
        &mut self,
        given: Given,
        contribution: &Contribution,
        consents: &mut Consents,
        results: &mut Results,
        now: u64,
        actions: &mut Vec<Action>,
    ) {
        let Given { ledger, claims } = given;
        let (node, caps) = (contribution.node(), contribution.caps());
        if self.jobs.len() >= caps.slots as usize {
            return;
        }
        // Queued chunks start in the scheduler's fairness order: the friend
        // with the fewest chunks in the pool first, then the oldest lease.
        let held = scheduler::running_by_submitter(ledger, now);
        let mut starts = Vec::new();
        let mut asks: Vec<AllowedScript> = Vec::new();
        for task in ledger.tasks() {
            if ledger.task_status(task, now).is_terminal() {
                continue;
            }
            for (index, chunk) in task.chunks.iter().enumerate() {
                let index = index as u32;
                let leases = ledger.held_leases(chunk, now);
                let leased = leases.iter().find(|l| &l.node == node);
                // A chunk this node claimed as coordinator runs as if leased.
                let claimed = || {
                    if claims.is_empty() {
                        return None;
                    }
                    let attempt = claims.get(&(task.id.clone(), index))?.attempt;
                    Some((attempt, task.submitted_at))
                };
                let Some((attempt, granted_at)) =
                    leased.map(|l| (l.attempt, l.granted_at)).or_else(claimed)
                else {
                    continue;
                };
                let already = self
                    .jobs
                    .values()
                    .any(|r| r.task == task.id && r.chunk == index)
                    || results.holds(&task.id, index, attempt);
                if already {
                    continue;
                }
                // Give a lease on what this node does not run back at once,
                // so another node runs it.
                let consent = consents.of(&task.spec.kind, caps, ledger.allowlist());
                if !matches!(consent, Consent::Declined) && !task.spec.runs_on(caps) {
                    // Leased before this node narrowed what it takes, or by a
                    // coordinator that did not know this node yet.
                    let why = "the contributor's machine does not take this work";
                    results.decline(task.id.clone(), index, attempt, why, now);
                    continue;
                }
                match consent {
                    Consent::Given => {}
                    Consent::Declined => {
                        let why = "the contributor declined this script";
                        results.decline(task.id.clone(), index, attempt, why, now);
                        continue;
                    }
                    Consent::Pending(ask) => {
                        asks.extend(ask);
                        continue;
                    }
                }
                let share = held.get(&task.submitter).copied().unwrap_or(0);
                starts.push((
                    (share, granted_at),
                    task.id.clone(),
                    index,
                    attempt,
                    task.spec.kind.chunk(index, task.spec.chunks),
                    task.spec.inputs.clone(),
                ));
            }
        }
        consents.ask(asks, actions);
        sort::sort_by(&mut starts, |a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
        for (_, task, chunk, attempt, work, inputs) in starts {
            if self.jobs.len() >= caps.slots as usize {
                break;
            }
            let job = self.next_job;
            self.next_job += 1;
            self.jobs.insert(
                job,
                RunningChunk {
                    task: task.clone(),
                    chunk,
                    attempt,
                    done: 0.0,
                    reported_at: None,
                    started_at: now,
                },
            );
            actions.push(Action::RunChunk {
                job,
                task,
                chunk,
                attempt,
                work,
                inputs,
            });
        }
    }

    /// Reports progress on chunks whose leases would otherwise expire, one event
    /// per task. Short chunks finish before any report is due and cost nothing.
    pub fn report_progress(
        &mut self,
        ledger: &Ledger,
        node: &NodeId,
        outbox: &mut Outbox,
        now: u64,
        actions: &mut Vec<Action>,
    ) {
        let mut due: SortedMap<EventId, Vec<JobId>> = SortedMap::new();
        for (&job, run) in &self.jobs {
            let Some(lease) = lease_of(ledger, run, node) else {
                continue;
            };
            let since = lease.renewed_at.max(run.reported_at.unwrap_or(0));
            if now >= since.saturating_add(PROGRESS_EVERY_MS) {
                due.entry(run.task.clone()).or_default().push(job);
            }
        }
        for (task, jobs) in due {
            if !outbox.try_take(now) {
                break;
            }
            let mut chunks = Vec::new();
            for job in jobs {
                if let Some(run) = self.jobs.get_mut(&job) {
                    run.reported_at = Some(now);
                    chunks.push(ChunkProgress {
                        chunk: run.chunk,
                        attempt: run.attempt,
                        percent: (run.done * 100.0).round() as u8,
                    });
                }
            }
            outbox.send(Outgoing::progress(&task, node, &chunks), actions);
        }
    }
}

/// The lease in the ledger under which this node runs `run`.
fn lease_of<'a>(ledger: &'a Ledger, run: &RunningChunk, node: &NodeId) -> Option<&'a Lease> {
    ledger
        .task(&run.task)?
        .chunks
        .get(run.chunk as usize)?
        .leases
        .iter()
        .find(|l| &l.node == node && l.attempt == run.attempt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::test_support::delivered_as;
    use crate::events::{Assignment, TaskSpec};
    use crate::limits::COORDINATOR_SETTLE_MS;
    use crate::task_kind::TaskKind;

    #[test]
    fn assigned_chunks_start_up_to_the_slots_and_stop_when_the_task_is_cancelled() {
        let task = TaskSpec::new(
            TaskKind::Primes {
                start: 0,
                end: 3_000,
            },
            3,
        );
        let (mut ledger, alice, caps) = super::super::test_support::alice_and_carols_task(&task);
        let id = EventId::parse("$t").unwrap();
        let assignments: Vec<Assignment> = (0..3)
            .map(|chunk| Assignment {
                chunk,
                node: alice.clone(),
                attempt: 1,
            })
            .collect();
        let at = COORDINATOR_SETTLE_MS;
        let assign = Outgoing::assign(&id, &assignments);
        ledger
            .ingest(&delivered_as("$a", "@alice:hs", &assign, at))
            .unwrap();

        let contribution = Contribution::start(alice.clone(), caps, 0);
        let (mut running, mut consents, mut results) =
            (Running::default(), Consents::default(), Results::default());
        let mut actions = Vec::new();
        let claims = SortedMap::new();
        let given = Given {
            ledger: &ledger,
            claims: &claims,
        };
        running.start_assigned(
            given,
            &contribution,
            &mut consents,
            &mut results,
            at,
            &mut actions,
        );
        let started: Vec<u32> = actions
            .iter()
            .filter_map(|a| match a {
                Action::RunChunk { chunk, .. } => Some(*chunk),
                _ => None,
            })
            .collect();
        assert_eq!(started, [0, 1], "two slots: two chunks, in order");

        // Long chunks report progress before their leases would lapse.
        actions.clear();
        let mut outbox = Outbox::default();
        running.report_progress(
            &ledger,
            &alice,
            &mut outbox,
            at + PROGRESS_EVERY_MS,
            &mut actions,
        );
        let [Action::Send { out, .. }] = &actions[..] else {
            panic!("{actions:?}")
        };
        assert_eq!(
            out.content["chunks"].as_array().unwrap().len(),
            2,
            "one event for both"
        );

        actions.clear();
        let cancel = Outgoing::cancel(&id, None);
        ledger
            .ingest(&delivered_as("$c", "@carol:hs", &cancel, at + 1))
            .unwrap();
        running.abort_obsolete(&ledger, at + 2, &mut actions);
        assert_eq!(
            actions,
            [Action::AbortJob { job: 0 }, Action::AbortJob { job: 1 }]
        );
    }
}
