//! What waits to be sent, the account's send budget it waits for, and the
//! sends the driver has not answered yet.
//!
//! Events built from the ledger when they are due (announcements, results,
//! assignments, progress) take budget with `try_take` and go out at once
//! with `send`; the rest (tasks, cancels, replies) queue here and go out as
//! budget allows. Every send gets a `RequestId`, which the driver's answer
//! names: the node learns what was sent or refused without reading it back.
//!
//! The widget has two budgets of the account. The node's own events spend
//! only the node's (`RATE_*`); what the friend asked for in the widget spends
//! a small one of its own first (`FRIEND_*`), then the node's. So a friend
//! who asks for two transcripts in a row does not wait for the node's first
//! reply to earn back budget; what both leave is the client's (`CLIENT_*`).
//!
//! A state event (the node's announcement, the room's allowlist) replaces
//! the one before it, so only the newest of each matters: a newer one drops
//! any still queued, and a refused one is not sent again once a newer one was
//! given, or the room would end with an older word than the last.

use super::action::{Action, RequestId};
use crate::events::Outgoing;
use crate::limits::{FRIEND_BURST, FRIEND_EVENTS_PER_SECOND, RATE_BURST, RATE_EVENTS_PER_SECOND};
use crate::rate::RateBudget;
use crate::sorted_map::SortedMap;
use std::collections::VecDeque;

/// A state event's type and state key: which of the room's state it sets.
type StateKey = (&'static str, String);

fn state_key(out: &Outgoing) -> Option<StateKey> {
    Some((out.event_type, out.state_key.clone()?))
}

/// Who an event is sent for, which decides the budget it spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// The node's own: announcements, results, replies, a chat command's task.
    Node,
    /// The friend asked for it in the widget: a task, a cancel, an allowlist.
    Friend,
}

/// An event in the outbox, numbered in the order it was given: of two
/// events for the same state, the one with the higher number is the newer,
/// whatever either says.
#[derive(Debug)]
struct Entry {
    out: Outgoing,
    whose: Whose,
    given: u64,
}

/// The driver's answer to a send: what was sent, for whom, and whether a
/// newer event of the same state was given since (then this one no longer
/// matters: it is not sent again, and its refusal is nobody's problem).
#[derive(Debug, PartialEq)]
pub struct Answered {
    pub out: Outgoing,
    pub whose: Whose,
    pub replaced: bool,
    given: u64,
}

#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<Entry>,
    budget: RateBudget,
    friend_budget: RateBudget,
    /// Sent, and not answered yet.
    pending: SortedMap<RequestId, Entry>,
    next_request: u64,
    next_given: u64,
    /// The number of the newest event given for each state the node sets.
    newest_state: SortedMap<StateKey, u64>,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            budget: RateBudget::new(RATE_BURST, RATE_EVENTS_PER_SECOND),
            friend_budget: RateBudget::new(FRIEND_BURST, FRIEND_EVENTS_PER_SECOND),
            pending: SortedMap::new(),
            next_request: 0,
            next_given: 0,
            newest_state: SortedMap::new(),
        }
    }
}

impl Outbox {
    /// Queues an event behind the others.
    pub fn push(&mut self, out: Outgoing, whose: Whose) {
        let entry = self.give(out, whose);
        self.queue.push_back(entry);
    }

    /// Queues an event first in line.
    pub fn push_front(&mut self, out: Outgoing, whose: Whose) {
        let entry = self.give(out, whose);
        self.queue.push_front(entry);
    }

    /// Puts a refused event back first in line, unless it is state that a
    /// newer event of the same state has replaced since.
    pub fn retry(&mut self, answered: Answered) {
        let Answered {
            out, whose, given, ..
        } = answered;
        let entry = Entry { out, whose, given };
        if !self.replaced(&entry) {
            self.queue.push_front(entry);
        }
    }

    /// Whether a newer event of the same state was given after `entry`.
    fn replaced(&self, entry: &Entry) -> bool {
        state_key(&entry.out)
            .and_then(|key| self.newest_state.get(&key))
            .is_some_and(|&newest| newest > entry.given)
    }

    /// Numbers `out`; a state event is now the newest of its state, and
    /// queued older ones are dropped.
    fn give(&mut self, out: Outgoing, whose: Whose) -> Entry {
        let given = self.next_given;
        self.next_given += 1;
        if let Some(key) = state_key(&out) {
            self.queue
                .retain(|queued| state_key(&queued.out).as_ref() != Some(&key));
            self.newest_state.insert(key, given);
        }
        Entry { out, whose, given }
    }

    /// Events waiting for budget.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Events sent whose answer has not come back.
    pub fn unanswered(&self) -> usize {
        self.pending.len()
    }

    /// How many of its own events the node may send now.
    pub fn available(&mut self, now: u64) -> usize {
        self.budget.available(now)
    }

    /// Takes the node's budget for one of its events sent now; `false` if
    /// there is none.
    pub fn try_take(&mut self, now: u64) -> bool {
        self.budget.try_take(now)
    }

    /// The homeserver refused a send: nothing goes out before `until`.
    pub fn pause_until(&mut self, until: u64) {
        self.budget.pause_until(until);
        self.friend_budget.pause_until(until);
    }

    /// Sends `out` now (its budget already taken).
    pub fn send(&mut self, out: Outgoing, actions: &mut Vec<Action>) {
        let entry = self.give(out, Whose::Node);
        self.send_entry(entry, actions);
    }

    fn send_entry(&mut self, entry: Entry, actions: &mut Vec<Action>) {
        let request = RequestId(self.next_request);
        self.next_request += 1;
        let out = entry.out.clone();
        self.pending.insert(request, entry);
        actions.push(Action::Send { request, out });
    }

    /// The driver answered `request`: what it was, if it was pending.
    pub fn answered(&mut self, request: RequestId) -> Option<Answered> {
        let entry = self.pending.remove(&request)?;
        let replaced = self.replaced(&entry);
        let Entry { out, whose, given } = entry;
        Some(Answered {
            out,
            whose,
            replaced,
            given,
        })
    }

    /// Sends what the budgets allow, each budget's events in order.
    pub fn flush(&mut self, now: u64, actions: &mut Vec<Action>) {
        let mut waiting = VecDeque::new();
        while let Some(entry) = self.queue.pop_front() {
            let paid = match entry.whose {
                Whose::Friend => self.friend_budget.try_take(now) || self.budget.try_take(now),
                Whose::Node => self.budget.try_take(now),
            };
            if paid {
                self.send_entry(entry, actions);
            } else {
                waiting.push_back(entry);
            }
        }
        self.queue = waiting;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EventId;
    use serde_json::Value;

    /// The requests of the sends among `actions`.
    fn requests(actions: &[Action]) -> Vec<RequestId> {
        let sends = actions.iter().filter_map(|a| match a {
            Action::Send { request, .. } => Some(*request),
            _ => None,
        });
        sends.collect()
    }

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
        let mut actions = Vec::new();
        outbox.send(cancel("$refused"), &mut actions);
        let refused = outbox.answered(requests(&actions)[0]).unwrap();
        for task in ["$a", "$b"] {
            outbox.push(cancel(task), Whose::Node);
        }
        outbox.retry(refused);
        let mut actions = Vec::new();
        outbox.flush(0, &mut actions);
        assert_eq!(sent(&actions), ["\"$refused\"", "\"$a\"", "\"$b\""]);
        assert_eq!(outbox.len(), 0);
    }

    /// The room's allowlist as the friend's `edit`-th edit left it.
    fn allowlist(edit: u32) -> Outgoing {
        Outgoing {
            event_type: crate::events::event_type::ALLOWLIST,
            state_key: Some(String::new()),
            content: serde_json::json!({ "edit": edit }),
        }
    }

    fn sent_contents(actions: &[Action]) -> Vec<Value> {
        let sends = actions.iter().filter_map(|a| match a {
            Action::Send { out, .. } => Some(out.content.clone()),
            _ => None,
        });
        sends.collect()
    }

    #[test]
    fn a_newer_state_replaces_an_older_one_still_queued() {
        let mut outbox = Outbox::default();
        outbox.pause_until(1_000);
        outbox.push_front(allowlist(1), Whose::Friend);
        outbox.push(cancel("$a"), Whose::Friend);
        outbox.push_front(allowlist(2), Whose::Friend);
        assert_eq!(outbox.len(), 2, "the first edit is gone from the queue");
        let mut actions = Vec::new();
        outbox.flush(100_000, &mut actions);
        assert_eq!(
            sent_contents(&actions)[0],
            allowlist(2).content,
            "only the last edit goes, first in line"
        );
        assert_eq!(actions.len(), 2);
    }

    #[test]
    fn a_refused_state_is_not_sent_again_once_a_newer_one_was_given() {
        let mut outbox = Outbox::default();
        let mut actions = Vec::new();
        outbox.push(allowlist(1), Whose::Friend);
        outbox.push(allowlist(2), Whose::Friend);
        outbox.flush(0, &mut actions);
        outbox.push(allowlist(3), Whose::Friend);
        outbox.flush(0, &mut actions);
        let [second, third] = [allowlist(2).content, allowlist(3).content];
        assert_eq!(sent_contents(&actions), [second, third]);

        // Edit 3 went out; then a refusal of an older one comes back.
        let [second, third] = requests(&actions)[..] else {
            panic!("{actions:?}")
        };
        let second = outbox.answered(second).unwrap();
        assert!(second.replaced);
        outbox.retry(second);
        assert_eq!(outbox.len(), 0, "the room keeps the friend's last word");
        // The newest refused goes again.
        let third = outbox.answered(third).unwrap();
        assert!(!third.replaced);
        outbox.retry(third);
        assert_eq!(outbox.len(), 1);
    }

    #[test]
    fn an_older_state_is_replaced_by_a_newer_one_that_says_the_same() {
        let mut outbox = Outbox::default();
        let mut actions = Vec::new();
        for edit in [1, 2, 1] {
            outbox.push(allowlist(edit), Whose::Friend);
            outbox.flush(0, &mut actions);
        }
        let [first, _, last] = requests(&actions)[..] else {
            panic!("{actions:?}")
        };
        assert!(outbox.answered(first).unwrap().replaced);
        assert!(!outbox.answered(last).unwrap().replaced);
    }

    #[test]
    fn nothing_goes_out_while_the_homeserver_asked_to_wait() {
        let mut outbox = Outbox::default();
        outbox.pause_until(10_000);
        outbox.push(cancel("$a"), Whose::Node);
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
        let b = outbox.answered(requests[1]).unwrap();
        assert_eq!((b.out, b.whose), (cancel("$b"), Whose::Node));
        assert_eq!(outbox.answered(requests[1]), None, "answered once");
        let a = outbox.answered(requests[0]).unwrap();
        assert_eq!((a.out, a.whose), (cancel("$a"), Whose::Node));
    }

    #[test]
    fn the_friends_requests_spend_their_share_first_and_the_nodes_events_never_do() {
        let mut outbox = Outbox::default();
        // The node has spent its burst (an announcement, a result, a reply…).
        assert!((0..5).all(|_| outbox.try_take(0)));
        outbox.push(cancel("$reply"), Whose::Node);
        outbox.push(cancel("$first"), Whose::Friend);
        outbox.push(cancel("$second"), Whose::Friend);
        let mut actions = Vec::new();
        outbox.flush(0, &mut actions);
        assert_eq!(sent(&actions), ["\"$first\"", "\"$second\""]);
        assert_eq!(
            outbox.len(),
            1,
            "the node's own event waits for the node's budget"
        );
        actions.clear();
        outbox.flush(6_700, &mut actions);
        assert_eq!(sent(&actions), ["\"$reply\""]);
    }

    #[test]
    fn once_the_friends_share_is_spent_their_requests_spend_the_nodes_budget() {
        let mut outbox = Outbox::default();
        for task in ["$1", "$2", "$3", "$4", "$5", "$6"] {
            outbox.push(cancel(task), Whose::Friend);
        }
        let mut actions = Vec::new();
        outbox.flush(0, &mut actions);
        assert_eq!(
            actions.len(),
            6,
            "two from the friend's share, four from the node's"
        );
        assert_eq!(sent(&actions)[5], "\"$6\"", "in the order asked");
        assert!(outbox.try_take(0));
        assert!(!outbox.try_take(0));
    }

    #[test]
    fn a_refusal_pauses_both_budgets() {
        let mut outbox = Outbox::default();
        outbox.pause_until(10_000);
        outbox.push(cancel("$a"), Whose::Friend);
        let mut actions = Vec::new();
        outbox.flush(9_999, &mut actions);
        assert!(actions.is_empty());
    }
}
