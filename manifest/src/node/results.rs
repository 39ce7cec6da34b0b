//! Finished chunks on their way to the room: kept until the ledger shows
//! them accepted, batched per task into result events that fit, sealed for
//! private tasks, and sent again when they do not come back.

use super::action::Action;
use super::outbox::Outbox;
use crate::events::{ChunkOutcome, Outcome, Outgoing};
use crate::ids::{EventId, NodeId};
use crate::ledger::Ledger;
use crate::limits::{MAX_CONTENT_BYTES, MAX_INLINE_OUTPUT_BYTES, RESEND_AFTER_MS, RESULT_BATCH_MS};
use crate::sorted_map::SortedMap;
use crate::validate::{check_matrix_json, json_size};
use crate::{private, seal};
use std::sync::Arc;

#[derive(Debug, Clone)]
struct FinishedChunk {
    task: EventId,
    outcome: ChunkOutcome,
    /// The chunk split its task: its result waits until the part it added
    /// is in the ledger, so that no node sees the task done without it.
    awaits_part: bool,
    finished_at: u64,
    /// Sent at, waiting to see it accepted in the ledger.
    sent_at: Option<u64>,
    /// The homeserver took it: it is in the room, and sending it again
    /// would only show it twice, however late the node reads it back.
    acknowledged: bool,
}

#[derive(Debug, Default)]
pub struct Results {
    finished: Vec<FinishedChunk>,
}

impl Results {
    /// Whether this attempt at the chunk finished here and waits to be seen back.
    pub fn holds(&self, task: &EventId, chunk: u32, attempt: u32) -> bool {
        self.finished
            .iter()
            .any(|f| &f.task == task && f.outcome.chunk == chunk && f.outcome.attempt == attempt)
    }

    /// The output of a chunk of `task` that finished here, not yet sent or
    /// not yet seen back.
    pub fn output(&self, task: &EventId, chunk: u32) -> Option<&serde_json::Value> {
        self.finished
            .iter()
            .filter(|f| &f.task == task && f.outcome.chunk == chunk)
            .find_map(|f| match &f.outcome.outcome {
                Outcome::Output(output) => Some(output.as_ref()),
                Outcome::Error { .. } => None,
            })
    }

    /// The friend declined the chunk's script: the lease goes back at once.
    pub fn decline(&mut self, task: EventId, chunk: u32, attempt: u32, why: &str, now: u64) {
        let outcome = Outcome::Error {
            reason: why.into(),
            retriable: true,
        };
        self.finished.push(FinishedChunk {
            task,
            outcome: ChunkOutcome {
                chunk,
                attempt,
                outcome,
                compute_ms: None,
            },
            awaits_part: false,
            finished_at: now,
            sent_at: None,
            acknowledged: false,
        });
    }

    /// A worker finished a chunk of `task` (its outcome already made fit
    /// for the room by `outcome_for_room`).
    pub fn finish(&mut self, task: EventId, outcome: ChunkOutcome, awaits_part: bool, now: u64) {
        self.finished.push(FinishedChunk {
            awaits_part,
            task,
            outcome,
            finished_at: now,
            sent_at: None,
            acknowledged: false,
        });
    }

    /// The friend stopped contributing: nothing of theirs is sent any more.
    pub fn clear(&mut self) {
        self.finished.clear();
    }

    /// A result event for `task` was refused: these chunks go again when due.
    pub fn refused(&mut self, task: &EventId, chunks: &[u32]) {
        for f in self.sent_for(task, chunks) {
            f.sent_at = None;
        }
    }

    /// A result event for `task` is in the room: these chunks are not sent
    /// again, only waited for in the ledger.
    pub fn acknowledged(&mut self, task: &EventId, chunks: &[u32]) {
        for f in self.sent_for(task, chunks) {
            f.acknowledged = true;
        }
    }

    fn sent_for<'a>(
        &'a mut self,
        task: &'a EventId,
        chunks: &'a [u32],
    ) -> impl Iterator<Item = &'a mut FinishedChunk> {
        self.finished.iter_mut().filter(move |f| {
            &f.task == task && f.sent_at.is_some() && chunks.contains(&f.outcome.chunk)
        })
    }

    /// Batches finished chunks per task into result events, and forgets
    /// those the ledger settled. A task's chunks wait `RESULT_BATCH_MS` for
    /// others of the same task only while one still runs here
    /// (`runs_task`): the last (or only) one goes at once, with those that
    /// waited for it.
    pub fn send(
        &mut self,
        ledger: &Ledger,
        node: &NodeId,
        runs_task: impl Fn(&EventId) -> bool,
        outbox: &mut Outbox,
        now: u64,
        actions: &mut Vec<Action>,
    ) {
        // Seen back in the ledger (accepted, or the chunk settled otherwise): done.
        self.finished.retain(|f| {
            let Some(task) = ledger.task(&f.task) else {
                return true;
            };
            let Some(chunk) = task.chunks.get(f.outcome.chunk as usize) else {
                return false;
            };
            let settled =
                chunk.done().is_some() || chunk.failed().is_some() || task.cancelled.is_some();
            let released = !chunk
                .leases
                .iter()
                .any(|l| &l.node == node && l.attempt == f.outcome.attempt);
            !(settled || (f.sent_at.is_some() && released))
        });
        let mut due: SortedMap<EventId, Vec<usize>> = SortedMap::new();
        for (i, f) in self.finished.iter().enumerate() {
            let part_seen = || ledger.task(&f.task).is_some_and(|t| !t.children.is_empty());
            if f.awaits_part && !part_seen() {
                continue;
            }
            let batched = now >= f.finished_at + RESULT_BATCH_MS || !runs_task(&f.task);
            let waiting_to_send = f.sent_at.is_none() && batched;
            // Sent and never answered (or the answer did not say whether it
            // went in): sent again if the ledger has not seen it by now.
            let resend = !f.acknowledged && f.sent_at.is_some_and(|at| now >= at + RESEND_AFTER_MS);
            if waiting_to_send || resend {
                due.entry(f.task.clone()).or_default().push(i);
            }
        }
        for (task, indices) in due {
            for indices in fit_in_events(&indices, |i| &self.finished[i].outcome) {
                if !outbox.try_take(now) {
                    return;
                }
                let outcomes: Vec<ChunkOutcome> = indices
                    .iter()
                    .map(|&i| self.finished[i].outcome.clone())
                    .collect();
                for &i in &indices {
                    self.finished[i].sent_at = Some(now);
                }
                outbox.send(Outgoing::result(&task, node, &outcomes), actions);
            }
        }
    }
}

/// What a worker's outcome becomes in the room: an output no result event
/// can carry fails the chunk here (`fit_inline`), and a private task's output
/// goes to its submitter while the room gets its seal.
pub fn outcome_for_room(
    ledger: &Ledger,
    task: &EventId,
    chunk: u32,
    outcome: Outcome,
    actions: &mut Vec<Action>,
) -> Outcome {
    let outcome = fit_inline(outcome);
    let Outcome::Output(output) = &outcome else {
        return outcome;
    };
    let Some(record) = ledger.task(task).filter(|r| r.spec.private) else {
        return outcome;
    };
    actions.push(Action::SendToDevice {
        user: record.submitter.clone(),
        content: private::message(task, chunk, output),
    });
    Outcome::Output(Arc::new(seal::seal(output)))
}

/// Splits outcomes into groups that each fit one result event: many short
/// chunks finish while a node waits for send budget, and each output may be up
/// to `MAX_INLINE_OUTPUT_BYTES`.
fn fit_in_events<'a>(
    indices: &[usize],
    outcome: impl Fn(usize) -> &'a ChunkOutcome,
) -> Vec<Vec<usize>> {
    // Room for the event's own fields (relation, node id, version).
    let budget = MAX_CONTENT_BYTES - 1024;
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut size = 0;
    for &i in indices {
        let bytes = serde_json::to_value(outcome(i)).map_or(budget, |v| json_size(&v) + 1);
        match groups.last_mut() {
            Some(group) if size + bytes <= budget => group.push(i),
            _ => {
                groups.push(vec![i]);
                size = 0;
            }
        }
        size += bytes;
    }
    groups
}

/// An output no result event can carry (too big, or numbers a homeserver
/// refuses) fails the chunk here, with a reason, rather than making an event
/// that the homeserver or every node would reject.
fn fit_inline(outcome: Outcome) -> Outcome {
    let Outcome::Output(output) = &outcome else {
        return outcome;
    };
    let size = json_size(output);
    let problem = if size > MAX_INLINE_OUTPUT_BYTES {
        format!("the output is {size} bytes; a result carries at most {MAX_INLINE_OUTPUT_BYTES}")
    } else if let Err(e) = check_matrix_json(output) {
        format!("the output has {e}")
    } else {
        return outcome;
    };
    Outcome::Error {
        reason: problem,
        retriable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::test_support::delivered_as;
    use crate::events::{Assignment, TaskSpec};
    use crate::task_kind::TaskKind;
    use serde_json::json;

    /// Alice's node holds chunk 0 of carol's task `$t` and finished it at
    /// 1,000; the result events `results` sends at `times`, with the
    /// homeserver's answer to the first given by `answer`.
    fn result_events_sent(answer: impl Fn(&mut Results, &EventId), times: &[u64]) -> usize {
        let task = TaskSpec::new(TaskKind::Primes { start: 0, end: 100 }, 1);
        let (mut ledger, alice, _) = super::super::test_support::alice_and_carols_task(&task);
        let t = EventId::parse("$t").unwrap();
        let assignment = Assignment {
            chunk: 0,
            node: alice.clone(),
            attempt: 1,
        };
        let assign = Outgoing::assign(&t, &[assignment]);
        ledger
            .ingest(&delivered_as("$a", "@alice:hs", &assign, 200))
            .unwrap();
        let mut results = Results::default();
        let outcome = ChunkOutcome {
            chunk: 0,
            attempt: 1,
            outcome: output(json!({"count": 25})),
            compute_ms: Some(10),
        };
        results.finish(t.clone(), outcome, false, 1_000);
        let (mut outbox, mut actions) = (Outbox::default(), Vec::new());
        for (i, &now) in times.iter().enumerate() {
            results.send(&ledger, &alice, |_| false, &mut outbox, now, &mut actions);
            if i == 0 {
                answer(&mut results, &t);
            }
        }
        actions.len()
    }

    #[test]
    fn a_result_the_homeserver_took_is_not_sent_again_however_late_it_is_read_back() {
        let later = [1_000, 1_000 + RESEND_AFTER_MS, 1_000 + 3 * RESEND_AFTER_MS];
        let took = |results: &mut Results, t: &EventId| results.acknowledged(t, &[0]);
        assert_eq!(result_events_sent(took, &later), 1);
        // No answer (a timeout): it may not be in the room, so it goes again
        // while the ledger does not show it.
        assert_eq!(result_events_sent(|_, _| {}, &later), 3);
        // Refused (rate limit): again at once.
        let refused = |results: &mut Results, t: &EventId| results.refused(t, &[0]);
        assert_eq!(result_events_sent(refused, &[1_000, 1_001]), 2);
    }

    fn output(value: serde_json::Value) -> Outcome {
        Outcome::Output(Arc::new(value))
    }

    #[test]
    fn an_output_no_event_can_carry_fails_the_chunk_with_the_reason() {
        let big = "x".repeat(MAX_INLINE_OUTPUT_BYTES);
        let Outcome::Error { reason, retriable } = fit_inline(output(json!({ "text": big })))
        else {
            panic!("too big")
        };
        assert!(reason.contains("a result carries at most"), "{reason}");
        assert!(!retriable, "the same chunk makes the same output again");
        assert!(matches!(
            fit_inline(output(json!({"n": 1.5}))),
            Outcome::Error { .. }
        ));
        assert_eq!(fit_inline(output(json!({"n": 1}))), output(json!({"n": 1})));
    }

    #[test]
    fn outcomes_are_grouped_so_that_each_result_event_fits() {
        let outcome = |bytes: usize| ChunkOutcome {
            chunk: 0,
            attempt: 1,
            outcome: output(json!({ "text": "x".repeat(bytes) })),
            compute_ms: None,
        };
        let outcomes = [
            outcome(20_000),
            outcome(20_000),
            outcome(20_000),
            outcome(10),
        ];
        let groups = fit_in_events(&[0, 1, 2, 3], |i| &outcomes[i]);
        assert_eq!(groups, [vec![0, 1], vec![2, 3]]);
        for group in groups {
            let size: usize = group
                .iter()
                .map(|&i| serde_json::to_vec(&outcomes[i]).unwrap().len())
                .sum();
            assert!(size <= MAX_CONTENT_BYTES - 1024);
        }
    }
}
