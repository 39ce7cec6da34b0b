//! What waits to be sent, the account's send budget it waits for, and the
//! sends the driver has not answered yet.
//!
//! Events built from the ledger when they are due (announcements, results,
//! assignments, progress) take budget with `try_take` and go out at once
//! with `send`; the rest (tasks, cancels, replies) queue here and go out as
//! budget allows. Every send gets a `RequestId`, which the driver's answer
//! names: the node learns what was sent or refused without reading it back.

use super::action::{Action, RequestId};
use crate::events::Outgoing;
use crate::rate::RateBudget;
use crate::sorted_map::SortedMap;
use std::collections::VecDeque;

#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Outgoing>,
    budget: RateBudget,
    /// Sent, and not answered yet.
    pending: SortedMap<RequestId, Outgoing>,
    next_request: u64,
}

impl Outbox {
    /// Queues an event behind the others.
    pub fn push(&mut self, out: Outgoing) {
        self.queue.push_back(out);
    }

    /// Puts a refused event back first in line.
    pub fn push_front(&mut self, out: Outgoing) {
        self.queue.push_front(out);
    }

    /// Events waiting for budget.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Takes budget for one event sent now; `false` if there is none.
    pub fn try_take(&mut self, now: u64) -> bool {
        self.budget.try_take(now)
    }

    /// The homeserver refused a send: nothing goes out before `until`.
    pub fn pause_until(&mut self, until: u64) {
        self.budget.pause_until(until);
    }

    /// Sends `out` now (its budget already taken).
    pub fn send(&mut self, out: Outgoing, actions: &mut Vec<Action>) {
        let request = RequestId(self.next_request);
        self.next_request += 1;
        self.pending.insert(request, out.clone());
        actions.push(Action::Send { request, out });
    }

    /// The driver answered `request`: what it was, if it was pending.
    pub fn answered(&mut self, request: RequestId) -> Option<Outgoing> {
        self.pending.remove(&request)
    }

    /// Sends what the budget allows, in order.
    pub fn flush(&mut self, now: u64, actions: &mut Vec<Action>) {
        while !self.queue.is_empty() && self.budget.try_take(now) {
            if let Some(out) = self.queue.pop_front() {
                self.send(out, actions);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EventId;

    fn cancel(task: &str) -> Outgoing {
        Outgoing::cancel(&EventId::parse(task).unwrap(), None)
    }

    fn sent(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Send { out, .. } => out.content["m.relates_to"]["event_id"].to_string(),
                other => panic!("only sends: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn queued_events_go_in_order_as_budget_allows_and_a_refused_one_goes_first() {
        let mut outbox = Outbox::default();
        for task in ["$a", "$b"] {
            outbox.push(cancel(task));
        }
        outbox.push_front(cancel("$refused"));
        let mut actions = Vec::new();
        outbox.flush(0, &mut actions);
        assert_eq!(sent(&actions), ["\"$refused\"", "\"$a\"", "\"$b\""]);
        assert_eq!(outbox.len(), 0);
    }

    #[test]
    fn nothing_goes_out_while_the_homeserver_asked_to_wait() {
        let mut outbox = Outbox::default();
        outbox.pause_until(10_000);
        outbox.push(cancel("$a"));
        let mut actions = Vec::new();
        outbox.flush(9_999, &mut actions);
        assert!(actions.is_empty());
        assert_eq!(outbox.len(), 1);
        // Then budget is earned again from empty: one event's worth takes 6.7 s.
        outbox.flush(16_600, &mut actions);
        assert!(actions.is_empty());
        outbox.flush(16_700, &mut actions);
        assert_eq!(sent(&actions), ["\"$a\""]);
    }

    #[test]
    fn an_answer_names_what_was_sent_once() {
        let mut outbox = Outbox::default();
        let mut actions = Vec::new();
        outbox.send(cancel("$a"), &mut actions);
        outbox.send(cancel("$b"), &mut actions);
        let requests: Vec<RequestId> = actions
            .iter()
            .map(|a| match a {
                Action::Send { request, .. } => *request,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_ne!(requests[0], requests[1]);
        assert_eq!(outbox.answered(requests[1]), Some(cancel("$b")));
        assert_eq!(outbox.answered(requests[1]), None, "answered once");
        assert_eq!(outbox.answered(requests[0]), Some(cancel("$a")));
    }
}
