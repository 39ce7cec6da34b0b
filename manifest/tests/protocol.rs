//! The protocol's rules, each as a scripted sequence of room events: what a
//! node sees, and what the ledger and the scheduler make of it.

use manifest::agreement::Agreement;
use manifest::allowlist::{AllowedScript, Allowlist, NotAllowed};
use manifest::events::{
    Assignment, ChunkOutcome, ChunkProgress, NodeCaps, Outcome, Outgoing, Requirements, TaskSpec,
};
use manifest::ids::{EventId, NodeId, UserId};
use manifest::ledger::{Ledger, TaskStatus};
use manifest::limits::{
    LEASE_HARD_MS, LEASE_SOFT_MS, MAX_ATTEMPTS, MAX_LEASES_PER_SLOT, QUEUE_TARGET_MS,
};
use manifest::rejection::{Reason, Refused};
use manifest::scheduler::{explain_idle, plan, plan_within, IdleReason, InFlight};
use manifest::task_kind::{ScriptTask, Split, TaskKind, DEFAULT_SCRIPT_SECONDS};
use manifest::transcription::{Span, Stage, TranscribeTask, WhisperModel};
use manifest::validate::{Invalid, TaskError};
use proptest::prelude::{Arbitrary, Strategy};
use serde_json::{json, Value};

/// A room: stamps events with ids and homeserver times, feeds one ledger.
struct Room {
    ledger: Ledger,
    next: u64,
}

fn user(name: &str) -> UserId {
    UserId::parse(format!("@{name}:hs")).unwrap()
}
fn node(name: &str) -> NodeId {
    NodeId::new(&user(name), "t").unwrap()
}
fn caps(slots: u32, webgpu: bool) -> NodeCaps {
    NodeCaps {
        cores: slots + 1,
        slots,
        memory_mb: None,
        webgpu,
        models: vec![],
        declined: vec![],
        runs: None,
    }
}
fn primes(chunks: u32) -> TaskSpec {
    TaskSpec::new(
        TaskKind::Primes {
            start: 0,
            end: 1_000,
        },
        chunks,
    )
}
fn count(n: u64) -> Outcome {
    Outcome::Output(json!({ "count": n }).into())
}

impl Room {
    fn new() -> Self {
        Self {
            ledger: Ledger::new(),
            next: 0,
        }
    }

    fn raw(&mut self, sender: &str, out: &Outgoing, ts: u64) -> (EventId, Value) {
        self.next += 1;
        let id = format!("$e{:04}", self.next);
        let mut raw = json!({"type": out.event_type, "event_id": id, "sender": format!("@{sender}:hs"),
            "origin_server_ts": ts, "content": out.content});
        if let Some(key) = &out.state_key {
            raw["state_key"] = json!(key);
        }
        (EventId::parse(id).unwrap(), raw)
    }

    fn send(&mut self, sender: &str, out: &Outgoing, ts: u64) -> EventId {
        let (id, raw) = self.raw(sender, out, ts);
        self.ledger
            .ingest(&raw)
            .unwrap_or_else(|r| panic!("rejected: {r}"));
        id
    }

    /// Sends a valid event the ledger refuses, and returns why.
    fn send_rejected(&mut self, sender: &str, out: &Outgoing, ts: u64) -> Refused {
        let (_, raw) = self.raw(sender, out, ts);
        self.ledger.ingest(&raw).expect("validation passes");
        let rejection = self
            .ledger
            .rejections()
            .last()
            .expect("the ledger rejects it");
        match &rejection.reason {
            Reason::Refused(refused) => refused.clone(),
            other => panic!("not a refusal of the ledger's: {other:?}"),
        }
    }

    fn online(&mut self, name: &str, caps: NodeCaps, ts: u64) {
        self.send(name, &Outgoing::node_online(&node(name), &caps), ts);
    }

    fn assign(
        &mut self,
        coordinator: &str,
        task: &EventId,
        chunk: u32,
        to: &str,
        attempt: u32,
        ts: u64,
    ) {
        let a = Assignment {
            chunk,
            node: node(to),
            attempt,
        };
        self.send(coordinator, &Outgoing::assign(task, &[a]), ts);
    }

    fn result(
        &mut self,
        name: &str,
        task: &EventId,
        chunk: u32,
        attempt: u32,
        outcome: Outcome,
        ts: u64,
    ) -> EventId {
        self.send(
            name,
            &Outgoing::result(
                task,
                &node(name),
                &[ChunkOutcome {
                    chunk,
                    attempt,
                    outcome,
                    compute_ms: None,
                }],
            ),
            ts,
        )
    }

    fn status(&self, task: &EventId, now: u64) -> TaskStatus {
        self.ledger
            .task_status(self.ledger.task(task).unwrap(), now)
    }
}

#[test]
fn the_oldest_online_node_coordinates_and_the_next_takes_over_when_it_leaves() {
    let mut room = Room::new();
    room.online("bob", caps(1, false), 10);
    room.online("alice", caps(1, false), 20);
    assert_eq!(room.ledger.coordinator(), Some(&node("bob")));
    room.send("bob", &Outgoing::node_gone(&node("bob")), 30);
    assert_eq!(room.ledger.coordinator(), Some(&node("alice")));
}

#[test]
fn chunks_of_a_vanished_node_are_ready_again_at_once() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    room.online("bob", caps(1, false), 2);
    let task = room.send("carol", &Outgoing::task(&primes(1)), 3);
    room.assign("alice", &task, 0, "bob", 1, 4);
    assert!(
        plan(&room.ledger, 5, &InFlight::new()).is_empty(),
        "leased to a live node"
    );
    room.send("bob", &Outgoing::node_gone(&node("bob")), 6);
    let replan = plan(&room.ledger, 7, &InFlight::new());
    assert_eq!(
        replan,
        vec![(
            task,
            vec![Assignment {
                chunk: 0,
                node: node("alice"),
                attempt: 2
            }]
        )]
    );
}

#[test]
fn after_the_soft_timeout_a_chunk_is_reissued_but_a_late_original_result_still_wins() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    room.online("bob", caps(1, false), 2);
    let task = room.send("carol", &Outgoing::task(&primes(1)), 3);
    room.assign("alice", &task, 0, "bob", 1, 10);
    let soft = 10 + LEASE_SOFT_MS;
    let reissue = plan(&room.ledger, soft, &InFlight::new());
    assert_eq!(reissue[0].1[0].attempt, 2);
    room.assign("alice", &task, 0, "alice", 2, soft);
    // Bob's first attempt arrives late but first: accepted; Alice's is ignored.
    room.result("bob", &task, 0, 1, count(168), soft + 5);
    room.result("alice", &task, 0, 2, count(999), soft + 6);
    assert_eq!(
        room.status(&task, soft + 7),
        TaskStatus::Done {
            result: json!({"count": 168})
        }
    );
    assert_eq!(
        room.ledger.task(&task).unwrap().chunks[0]
            .done()
            .unwrap()
            .node,
        node("bob")
    );
}

#[test]
fn results_after_the_hard_deadline_are_dropped() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    let task = room.send("carol", &Outgoing::task(&primes(1)), 2);
    room.assign("alice", &task, 0, "alice", 1, 3);
    let late = Outgoing::result(
        &task,
        &node("alice"),
        &[ChunkOutcome {
            chunk: 0,
            attempt: 1,
            outcome: count(1),
            compute_ms: None,
        }],
    );
    let refused = room.send_rejected("alice", &late, 3 + LEASE_HARD_MS + 1);
    assert_eq!(refused, Refused::AfterDeadline { chunk: 0 });
}

#[test]
fn a_result_from_a_node_without_a_lease_is_rejected_and_changes_nothing() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    room.online("mallory", caps(1, false), 2);
    let task = room.send("carol", &Outgoing::task(&primes(1)), 3);
    room.assign("alice", &task, 0, "alice", 1, 4);
    let forged = Outgoing::result(
        &task,
        &node("mallory"),
        &[ChunkOutcome {
            chunk: 0,
            attempt: 1,
            outcome: count(7),
            compute_ms: None,
        }],
    );
    let refused = room.send_rejected("mallory", &forged, 5);
    assert!(
        matches!(&refused, Refused::NoLease { node: n, .. } if *n == node("mallory")),
        "{refused:?}"
    );
    assert!(matches!(
        room.status(&task, 6),
        TaskStatus::Running { done: 0, .. }
    ));
}

#[test]
fn a_coordinator_with_budget_for_one_event_fills_free_slots_with_one_whole_task() {
    let mut room = Room::new();
    for name in ["alice", "bob", "erin", "frank"] {
        room.online(name, caps(1, false), 1);
    }
    let carols = room.send("carol", &Outgoing::task(&primes(2)), 2);
    let dans = room.send("dan", &Outgoing::task(&primes(2)), 3);

    // Unlimited, fairness alternates friends: a chunk of each task first.
    let everything = plan(&room.ledger, 10, &InFlight::new());
    let tasks: Vec<&EventId> = everything.iter().map(|(task, _)| task).collect();
    assert_eq!(tasks, [&carols, &dans]);
    // One event to send: carol's (the older) whole task goes in it, rather
    // than one chunk of hers and one of dan's that would wait for budget.
    let one = plan_within(&room.ledger, 10, &InFlight::new(), 1);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].0, carols);
    let chunks: Vec<u32> = one[0].1.iter().map(|a| a.chunk).collect();
    assert_eq!(chunks, [0, 1]);
    assert!(plan_within(&room.ledger, 10, &InFlight::new(), 0).is_empty());
}

#[test]
fn retriable_failures_back_off_then_give_up_after_the_maximum_attempts() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    let task = room.send("carol", &Outgoing::task(&primes(1)), 2);
    let mut now = 10;
    for attempt in 1..=MAX_ATTEMPTS {
        let planned = plan(&room.ledger, now, &InFlight::new());
        assert_eq!(
            planned[0].1[0].attempt, attempt,
            "attempt {attempt} is planned"
        );
        room.assign("alice", &task, 0, "alice", attempt, now);
        let crashed = Outcome::Error {
            reason: "worker crashed".into(),
            retriable: true,
        };
        room.result("alice", &task, 0, attempt, crashed, now + 1);
        assert!(
            plan(&room.ledger, now + 2, &InFlight::new()).is_empty(),
            "backing off"
        );
        now += 100_000;
    }
    assert_eq!(
        room.status(&task, now),
        TaskStatus::Failed {
            reason: format!("chunk 1 of 1: gave up after {MAX_ATTEMPTS} attempts")
        }
    );
}

#[test]
fn a_non_retriable_failure_fails_the_task_with_its_reason() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    let task = room.send("carol", &Outgoing::task(&primes(2)), 2);
    room.assign("alice", &task, 1, "alice", 1, 3);
    let bad = Outcome::Error {
        reason: "input is not audio".into(),
        retriable: false,
    };
    room.result("alice", &task, 1, 1, bad, 4);
    assert_eq!(
        room.status(&task, 5),
        TaskStatus::Failed {
            reason: "chunk 2 of 2: input is not audio".into()
        }
    );
}

#[test]
fn only_the_submitter_can_cancel() {
    let mut room = Room::new();
    let task = room.send("carol", &Outgoing::task(&primes(1)), 1);
    let refused = room.send_rejected("mallory", &Outgoing::cancel(&task, None), 2);
    assert_eq!(
        refused,
        Refused::NotSubmitter {
            submitter: user("carol")
        }
    );
    room.send("carol", &Outgoing::cancel(&task, Some("typo")), 3);
    assert_eq!(
        room.status(&task, 4),
        TaskStatus::Cancelled {
            reason: Some("typo".into())
        }
    );
}

#[test]
fn a_cancelled_task_frees_its_workers_at_once_for_the_next_task() {
    // The newcomer's report: after a cancel the widget said "all workers
    // busy" and the next task waited 27 s, until the cancelled lease ran out.
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    let big = room.send("carol", &Outgoing::task(&primes(1)), 2);
    room.assign("alice", &big, 0, "alice", 1, 3);
    room.send("carol", &Outgoing::cancel(&big, None), 4);
    let next = room.send("carol", &Outgoing::task(&primes(1)), 5);
    assert_ne!(
        explain_idle(&room.ledger, &node("alice"), 6),
        IdleReason::AllSlotsBusy
    );
    let plan = plan(&room.ledger, 6, &InFlight::new());
    assert_eq!(plan.len(), 1, "{plan:?}");
    assert_eq!(plan[0].0, next);
}

#[test]
fn a_friend_with_a_thousand_chunks_queued_does_not_hold_up_another_friends_one() {
    let mut room = Room::new();
    room.online("alice", caps(2, false), 1);
    let flood = room.send(
        "carol",
        &Outgoing::task(&TaskSpec {
            chunks: 1_000,
            ..primes(1)
        }),
        2,
    );
    let first = plan(&room.ledger, 3, &InFlight::new());
    for a in &first[0].1 {
        room.assign("alice", &flood, a.chunk, "alice", 1, 3);
    }
    let single = room.send("dan", &Outgoing::task(&primes(1)), 4);
    // The next slot that frees goes to Dan, not to Carol's 997 waiting chunks
    // (which take a minute each, too long to queue any).
    room.result("alice", &flood, 0, 1, count(1), 60_003);
    let next = plan(&room.ledger, 60_004, &InFlight::new());
    assert_eq!(
        next,
        vec![(
            single,
            vec![Assignment {
                chunk: 0,
                node: node("alice"),
                attempt: 1
            }]
        )]
    );
}

/// Sends a result that says how long the chunk ran.
fn timed_result(room: &mut Room, task: &EventId, chunk: u32, compute_ms: u64, ts: u64) {
    let outcome = ChunkOutcome {
        chunk,
        attempt: 1,
        outcome: count(1),
        compute_ms: Some(compute_ms),
    };
    room.send(
        "alice",
        &Outgoing::result(task, &node("alice"), &[outcome]),
        ts,
    );
}

fn assigned(plan: &[(EventId, Vec<Assignment>)]) -> usize {
    plan.iter().map(|(_, a)| a.len()).sum()
}

#[test]
fn short_chunks_are_handed_out_a_queue_at_a_time_once_one_is_timed() {
    let mut room = Room::new();
    room.online("alice", caps(2, false), 1);
    let task = room.send("carol", &Outgoing::task(&primes(200)), 2);
    // Nothing is timed yet: one chunk per worker.
    let first = plan(&room.ledger, 3, &InFlight::new());
    assert_eq!(assigned(&first), 2);
    for a in &first[0].1 {
        room.assign("alice", &task, a.chunk, "alice", 1, 3);
    }
    // A chunk ran for 0.5 s (its result came 9 s later, after waiting for
    // send budget): the queue fills with 30 s of work per worker, up to the cap.
    timed_result(&mut room, &task, 0, 500, 9_003);
    let next = plan(&room.ledger, 9_004, &InFlight::new());
    let cap = 2 * MAX_LEASES_PER_SLOT as usize;
    assert_eq!(assigned(&next), cap - 1, "alice still holds chunk 1");
    assert!((2 * QUEUE_TARGET_MS / 500) as usize > cap);
}

#[test]
fn a_queue_holds_about_thirty_seconds_of_work_per_worker() {
    let mut room = Room::new();
    room.online("alice", caps(2, false), 1);
    let task = room.send("carol", &Outgoing::task(&primes(50)), 2);
    let first = plan(&room.ledger, 3, &InFlight::new());
    for a in &first[0].1 {
        room.assign("alice", &task, a.chunk, "alice", 1, 3);
    }
    timed_result(&mut room, &task, 0, 10_000, 10_003);
    let next = plan(&room.ledger, 10_004, &InFlight::new());
    // 2 workers × 30 s = 60 s: six chunks of 10 s, one of them still running.
    assert_eq!(
        assigned(&next) as u64,
        2 * QUEUE_TARGET_MS / 10_000 - 1,
        "{next:?}"
    );
    // A node that never reports a time is timed from its lease instead.
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    let task = room.send("carol", &Outgoing::task(&primes(50)), 2);
    room.assign("alice", &task, 0, "alice", 1, 3);
    room.result("alice", &task, 0, 1, count(1), 20_003);
    let next = plan(&room.ledger, 20_004, &InFlight::new());
    assert_eq!(assigned(&next), 1, "one idle worker, 20 s chunks: no queue");
}

#[test]
fn webgpu_work_goes_only_to_webgpu_nodes_and_others_say_why_they_idle() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    let spec = TaskSpec {
        requirements: Requirements {
            webgpu: true,
            min_memory_mb: None,
        },
        ..primes(1)
    };
    room.send("carol", &Outgoing::task(&spec), 2);
    assert!(plan(&room.ledger, 3, &InFlight::new()).is_empty());
    assert_eq!(
        explain_idle(&room.ledger, &node("alice"), 3),
        IdleReason::MissingCapability { tasks: 1 }
    );
    room.online("bob", caps(1, true), 4);
    let planned = plan(&room.ledger, 5, &InFlight::new());
    assert_eq!(planned[0].1[0].node, node("bob"));
}

#[test]
fn a_coordinator_cannot_give_gpu_work_to_a_node_without_a_gpu_or_burn_a_chunks_attempts() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    room.online("bob", caps(1, false), 2);
    let gpu = TaskSpec {
        requirements: Requirements {
            webgpu: true,
            min_memory_mb: None,
        },
        ..primes(1)
    };
    let task = room.send("carol", &Outgoing::task(&gpu), 3);
    let to_bob = Outgoing::assign(
        &task,
        &[Assignment {
            chunk: 0,
            node: node("bob"),
            attempt: 1,
        }],
    );
    let refused = room.send_rejected("alice", &to_bob, 4);
    assert_eq!(
        refused,
        Refused::CannotRun {
            chunk: 0,
            node: node("bob")
        }
    );
    assert!(room.ledger.task(&task).unwrap().chunks[0].leases.is_empty());

    let task = room.send("carol", &Outgoing::task(&primes(1)), 5);
    let ninth = Outgoing::assign(
        &task,
        &[Assignment {
            chunk: 0,
            node: node("bob"),
            attempt: 9,
        }],
    );
    let refused = room.send_rejected("alice", &ninth, 6);
    assert_eq!(
        refused,
        Refused::AttemptSkipsAhead {
            chunk: 0,
            attempt: 9,
            issued: 0
        }
    );
    assert_eq!(room.ledger.task(&task).unwrap().chunks[0].attempts, 0);
}

#[test]
fn an_idle_node_says_there_is_no_work() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    assert_eq!(
        explain_idle(&room.ledger, &node("alice"), 2),
        IdleReason::NoWork
    );
    assert_eq!(
        explain_idle(&room.ledger, &node("bob"), 2),
        IdleReason::NotContributing
    );
}

/// A small room's events: two nodes, a task, its assignment and results.
fn small_room_log() -> Vec<Value> {
    let mut room = Room::new();
    let mut log = Vec::new();
    let mut push = |room: &mut Room, sender: &str, out: Outgoing, ts: u64| {
        let (id, raw) = room.raw(sender, &out, ts);
        log.push(raw);
        id
    };
    push(
        &mut room,
        "alice",
        Outgoing::node_online(&node("alice"), &caps(2, false)),
        1,
    );
    let task = push(&mut room, "carol", Outgoing::task(&primes(2)), 2);
    let both = [
        Assignment {
            chunk: 0,
            node: node("alice"),
            attempt: 1,
        },
        Assignment {
            chunk: 1,
            node: node("alice"),
            attempt: 1,
        },
    ];
    push(&mut room, "alice", Outgoing::assign(&task, &both), 3);
    let outcomes = [
        ChunkOutcome {
            chunk: 0,
            attempt: 1,
            outcome: count(3),
            compute_ms: None,
        },
        ChunkOutcome {
            chunk: 1,
            attempt: 1,
            outcome: count(4),
            compute_ms: None,
        },
    ];
    push(
        &mut room,
        "alice",
        Outgoing::result(&task, &node("alice"), &outcomes),
        4,
    );
    log
}

fn fold(events: &[Value]) -> Ledger {
    let mut ledger = Ledger::new();
    events.iter().for_each(|e| drop(ledger.ingest(e)));
    ledger
}

fn fold_statuses(events: &[Value]) -> Vec<TaskStatus> {
    let ledger = fold(events);
    ledger.tasks().map(|t| ledger.task_status(t, 10)).collect()
}

#[test]
fn the_agreement_fingerprint_changes_with_any_chunks_output_and_says_what_is_done() {
    let log = small_room_log();
    let agreed = Agreement::of(&fold(&log), 10);
    assert_eq!((agreed.tasks, agreed.done), (1, 1));
    assert_eq!(agreed.digest.len(), 16);
    assert!(agreed
        .to_string()
        .starts_with("ledger: 1 tasks, 1 done, digest "));

    let mut lied = log.clone();
    let result = lied.last_mut().unwrap();
    result["content"]["outcomes"][1]["output"] = json!({"count": 5});
    assert_ne!(Agreement::of(&fold(&lied), 10).digest, agreed.digest);

    let unanswered = &log[..log.len() - 1];
    let waiting = Agreement::of(&fold(unanswered), 10);
    assert_eq!((waiting.tasks, waiting.done), (1, 0));
    assert_ne!(waiting.digest, agreed.digest);
}

#[test]
fn a_small_room_in_order_is_done() {
    assert_eq!(
        fold_statuses(&small_room_log()),
        vec![TaskStatus::Done {
            result: json!({"count": 7})
        }]
    );
}

proptest::proptest! {
    #[test]
    fn events_seen_in_any_order_or_twice_give_the_same_ledger(
        order in proptest::strategy::Just(small_room_log()).prop_shuffle(),
        twice in proptest::collection::vec(proptest::sample::Index::arbitrary(), 0..6),
    ) {
        let mut seen = order.clone();
        for i in twice {
            seen.insert(i.index(seen.len()), order[i.index(order.len())].clone());
        }
        proptest::prop_assert_eq!(fold_statuses(&seen), fold_statuses(&small_room_log()));
        proptest::prop_assert_eq!(
            Agreement::of(&fold(&seen), 10),
            Agreement::of(&fold(&small_room_log()), 10)
        );
    }
}

fn replicated(chunks: u32, replication: u8) -> TaskSpec {
    TaskSpec {
        replication,
        ..primes(chunks)
    }
}

#[test]
fn replicas_go_to_different_friends_and_the_majority_decides() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    room.online("bob", caps(1, false), 2);
    room.online("carol", caps(1, false), 3);
    let task = room.send("dan", &Outgoing::task(&replicated(1, 3)), 4);

    let planned = plan(&room.ledger, 5, &InFlight::new());
    let nodes: Vec<&NodeId> = planned[0].1.iter().map(|a| &a.node).collect();
    assert_eq!(nodes.len(), 3, "one replica per node: {planned:?}");
    let attempts: Vec<u32> = planned[0].1.iter().map(|a| a.attempt).collect();
    assert_eq!(attempts, [1, 2, 3], "each replica has its own attempt");
    room.send("alice", &Outgoing::assign(&task, &planned[0].1), 6);
    let attempt_of = |name: &str| {
        planned[0]
            .1
            .iter()
            .find(|a| a.node == node(name))
            .unwrap()
            .attempt
    };

    // One wrong output does not settle the chunk, nor does one right one.
    room.result("carol", &task, 0, attempt_of("carol"), count(666), 10);
    room.result("alice", &task, 0, attempt_of("alice"), count(168), 11);
    assert!(matches!(
        room.status(&task, 12),
        TaskStatus::Running { done: 0, .. }
    ));
    room.result("bob", &task, 0, attempt_of("bob"), count(168), 13);
    assert_eq!(
        room.status(&task, 14),
        TaskStatus::Done {
            result: json!({"count": 168})
        }
    );
    let chunk = &room.ledger.task(&task).unwrap().chunks[0];
    assert_eq!(chunk.votes.len(), 3);
    assert_eq!(
        chunk.done().unwrap().dissent,
        [node("carol")],
        "the outvoted answer is shown, not dropped"
    );
}

#[test]
fn a_replica_that_fails_for_good_does_not_outvote_two_that_agree() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    room.online("bob", caps(1, false), 2);
    room.online("carol", caps(1, false), 3);
    let task = room.send("dan", &Outgoing::task(&replicated(1, 3)), 4);
    let planned = plan(&room.ledger, 5, &InFlight::new());
    room.send("alice", &Outgoing::assign(&task, &planned[0].1), 6);
    let attempt_of = |name: &str| {
        let a = planned[0].1.iter().find(|a| a.node == node(name));
        a.unwrap().attempt
    };
    let broken = Outcome::Error {
        reason: "out of memory".into(),
        retriable: false,
    };
    room.result("carol", &task, 0, attempt_of("carol"), broken.clone(), 10);
    assert!(matches!(
        room.status(&task, 11),
        TaskStatus::Running { done: 0, .. }
    ));
    room.result("alice", &task, 0, attempt_of("alice"), count(168), 12);
    room.result("bob", &task, 0, attempt_of("bob"), count(168), 13);
    assert_eq!(
        room.status(&task, 14),
        TaskStatus::Done {
            result: json!({"count": 168})
        }
    );
    let done = room.ledger.task(&task).unwrap().chunks[0].done().cloned();
    assert_eq!(done.unwrap().dissent, [node("carol")]);

    // Two failures out of three leave no majority possible: the chunk fails, with the reason.
    let task = room.send("dan", &Outgoing::task(&replicated(1, 3)), 20);
    let planned = plan(&room.ledger, 21, &InFlight::new());
    room.send("alice", &Outgoing::assign(&task, &planned[0].1), 22);
    for (i, a) in planned[0].1.iter().enumerate() {
        let name = a.node.owner().localpart().to_owned();
        let outcome = if i < 2 { broken.clone() } else { count(168) };
        room.result(&name, &task, 0, a.attempt, outcome, 23);
    }
    let TaskStatus::Failed { reason } = room.status(&task, 24) else {
        panic!("{:?}", room.status(&task, 24));
    };
    assert!(
        reason.contains("2 of its 3 replicas failed: out of memory"),
        "{reason}"
    );
}

#[test]
fn replicas_that_cannot_reach_a_majority_fail_the_task_and_say_so() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    room.online("bob", caps(1, false), 2);
    let task = room.send("dan", &Outgoing::task(&replicated(1, 2)), 4);
    let planned = plan(&room.ledger, 5, &InFlight::new());
    room.send("alice", &Outgoing::assign(&task, &planned[0].1), 6);
    for a in &planned[0].1 {
        let answer = if a.node == node("alice") { 1 } else { 2 };
        let name = a.node.owner().localpart().to_owned();
        room.result(&name, &task, 0, a.attempt, count(answer), 10);
    }
    let TaskStatus::Failed { reason } = room.status(&task, 11) else {
        panic!("{:?}", room.status(&task, 11));
    };
    assert!(reason.contains("disagree"), "{reason}");
}

#[test]
fn a_replica_is_never_issued_twice_to_one_node() {
    let mut room = Room::new();
    room.online("alice", caps(4, false), 1);
    let task = room.send("dan", &Outgoing::task(&replicated(1, 3)), 4);
    let planned = plan(&room.ledger, 5, &InFlight::new());
    assert_eq!(
        planned[0].1.len(),
        1,
        "one node runs one replica: {planned:?}"
    );
    room.send("alice", &Outgoing::assign(&task, &planned[0].1), 6);
    room.result("alice", &task, 0, 1, count(168), 10);
    assert!(
        plan(&room.ledger, 11, &InFlight::new()).is_empty(),
        "alice already voted"
    );
    let refused = room.send_rejected(
        "alice",
        &Outgoing::assign(
            &task,
            &[Assignment {
                chunk: 0,
                node: node("alice"),
                attempt: 2,
            }],
        ),
        12,
    );
    assert_eq!(
        refused,
        Refused::AlreadyRan {
            chunk: 0,
            node: node("alice")
        }
    );
    assert_eq!(
        explain_idle(&room.ledger, &node("alice"), 13),
        IdleReason::NoWork
    );
}

fn part(parent: &EventId, start: u64, end: u64) -> TaskSpec {
    TaskSpec {
        parent: Some(parent.clone()),
        ..TaskSpec::new(TaskKind::Primes { start, end }, 1)
    }
}

#[test]
fn parts_of_a_task_roll_up_into_it() {
    let mut room = Room::new();
    room.online("alice", caps(2, false), 1);
    let parent = room.send("carol", &Outgoing::task(&primes(1)), 2);
    room.assign("alice", &parent, 0, "alice", 1, 3);
    // The node running the parent splits it before reporting its own chunk.
    let first = room.send("alice", &Outgoing::task(&part(&parent, 1_000, 2_000)), 4);
    let second = room.send("alice", &Outgoing::task(&part(&parent, 2_000, 3_000)), 5);
    room.result("alice", &parent, 0, 1, count(168), 6);
    assert_eq!(
        room.status(&parent, 7),
        TaskStatus::Running { done: 1, total: 3 }
    );
    // The parts are the parent submitter's work, in the fair share and for cancelling.
    assert_eq!(room.ledger.task(&first).unwrap().submitter, user("carol"));

    room.assign("alice", &first, 0, "alice", 1, 8);
    room.assign("alice", &second, 0, "alice", 1, 8);
    room.result("alice", &first, 0, 1, count(135), 9);
    assert_eq!(
        room.status(&parent, 10),
        TaskStatus::Running { done: 2, total: 3 }
    );
    room.result("alice", &second, 0, 1, count(127), 11);
    assert_eq!(
        room.status(&parent, 12),
        TaskStatus::Done {
            result: json!({"count": 168 + 135 + 127})
        }
    );
}

#[test]
fn only_the_submitter_or_a_node_running_a_task_may_split_it_and_only_before_it_is_done() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    let parent = room.send("carol", &Outgoing::task(&primes(1)), 2);
    let refused = room.send_rejected("mallory", &Outgoing::task(&part(&parent, 0, 10)), 3);
    assert_eq!(
        refused,
        Refused::NotSplitter {
            sender: user("mallory"),
            parent: parent.clone()
        }
    );
    let nested = room.send("carol", &Outgoing::task(&part(&parent, 0, 10)), 4);
    let refused = room.send_rejected("carol", &Outgoing::task(&part(&nested, 0, 5)), 5);
    assert_eq!(refused, Refused::PartOfAPart);
    room.assign("alice", &parent, 0, "alice", 1, 6);
    room.result("alice", &parent, 0, 1, count(168), 7);
    let refused = room.send_rejected("carol", &Outgoing::task(&part(&parent, 10, 20)), 8);
    assert_eq!(refused, Refused::ParentFinished { parent });
}

#[test]
fn cancelling_a_task_cancels_its_parts_and_a_failed_part_fails_it() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    let parent = room.send("carol", &Outgoing::task(&primes(1)), 2);
    let child = room.send("carol", &Outgoing::task(&part(&parent, 0, 10)), 3);
    room.send("carol", &Outgoing::cancel(&parent, Some("wrong file")), 4);
    assert!(matches!(
        room.status(&child, 5),
        TaskStatus::Cancelled { .. }
    ));
    assert!(plan(&room.ledger, 5, &InFlight::new()).is_empty());

    let parent = room.send("carol", &Outgoing::task(&primes(1)), 6);
    let child = room.send("carol", &Outgoing::task(&part(&parent, 0, 10)), 7);
    room.assign("alice", &child, 0, "alice", 1, 8);
    let broken = Outcome::Error {
        reason: "out of memory".into(),
        retriable: false,
    };
    room.result("alice", &child, 0, 1, broken, 9);
    assert_eq!(
        room.status(&parent, 10),
        TaskStatus::Failed {
            reason: "part 1 of 1: chunk 1 of 1: out of memory".into()
        }
    );
}

#[test]
fn a_part_seen_before_its_parent_waits_for_it() {
    let mut late = Room::new();
    let mut room = Room::new();
    let (parent, parent_raw) = room.raw("carol", &Outgoing::task(&primes(1)), 2);
    let (child, child_raw) = room.raw("carol", &Outgoing::task(&part(&parent, 0, 10)), 3);
    late.ledger.ingest_all([&child_raw, &parent_raw]);
    assert_eq!(
        late.ledger.task(&parent).unwrap().children,
        vec![child.clone()]
    );
    assert!(late.ledger.task(&child).is_some());
}

fn progress(name: &str, task: &EventId, attempt: u32, percent: u8) -> Outgoing {
    Outgoing::progress(
        task,
        &node(name),
        &[ChunkProgress {
            chunk: 0,
            attempt,
            percent,
        }],
    )
}

#[test]
fn progress_reports_keep_a_long_chunk_from_being_reissued() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    room.online("bob", caps(1, false), 2);
    let task = room.send("carol", &Outgoing::task(&primes(1)), 3);
    room.assign("alice", &task, 0, "bob", 1, 10);
    room.send(
        "bob",
        &progress("bob", &task, 1, 40),
        10 + LEASE_SOFT_MS / 2,
    );
    let lease = &room.ledger.task(&task).unwrap().chunks[0].leases[0];
    assert_eq!(lease.progress, 0.4);
    let after_soft = 10 + LEASE_SOFT_MS + 1;
    assert!(
        plan(&room.ledger, after_soft, &InFlight::new()).is_empty(),
        "bob's lease was renewed"
    );
    // Without further reports the renewed lease expires in its turn.
    let later = 10 + LEASE_SOFT_MS / 2 + LEASE_SOFT_MS;
    assert_eq!(plan(&room.ledger, later, &InFlight::new()).len(), 1);
    // A report after expiry does not take the chunk back.
    room.send("bob", &progress("bob", &task, 1, 90), later + 1);
    assert_eq!(plan(&room.ledger, later + 2, &InFlight::new()).len(), 1);
    // Nobody reports progress on a lease they do not hold.
    let refused = room.send_rejected("alice", &progress("alice", &task, 1, 50), later + 3);
    assert!(
        matches!(&refused, Refused::ProgressWithoutLease { node: n, .. } if *n == node("alice")),
        "{refused:?}"
    );
}

#[test]
fn a_part_references_its_parent_so_late_readers_find_it_among_the_relations() {
    let parent = EventId::parse("$parent").unwrap();
    let out = Outgoing::task(&part(&parent, 0, 10));
    assert_eq!(out.content["m.relates_to"]["event_id"], "$parent");
    assert_eq!(out.content["m.relates_to"]["rel_type"], "m.reference");
    let mut room = Room::new();
    let mut forged = Outgoing::task(&primes(1));
    forged.content["m.relates_to"] = json!({"rel_type": "m.reference", "event_id": "$other"});
    let (_, raw) = room.raw("carol", &forged, 1);
    let rejection = room.ledger.ingest(&raw).expect_err("rejected");
    assert!(
        matches!(
            &rejection.reason,
            Reason::Invalid(Invalid::Task(TaskError::ForeignRelation { target })) if target.as_str() == "$other"
        ),
        "{rejection}"
    );
}

fn script_task(url: &str, digest: char, items: usize) -> TaskSpec {
    let split = Split::List((0..items).map(|i| json!(i)).collect());
    TaskSpec::new(
        TaskKind::Script(ScriptTask {
            url: url.into(),
            integrity: format!("sha384-{}", digest.to_string().repeat(64)),
            args: json!({"zoom": 2}),
            split,
            max_seconds: DEFAULT_SCRIPT_SECONDS,
        }),
        items as u32,
    )
}

fn allow(room: &mut Room, name: &str, url: &str, digest: char, ts: u64) {
    let list = Allowlist {
        kernels: vec![],
        scripts: vec![AllowedScript {
            name: name.into(),
            url: url.into(),
            integrity: format!("sha384-{}", digest.to_string().repeat(64)),
            description: "renders tiles".into(),
        }],
    };
    room.send("mod", &Outgoing::allowlist(&list), ts);
}

#[test]
fn a_script_the_room_did_not_allow_fails_before_any_node_runs_it() {
    let mut room = Room::new();
    room.online("alice", caps(2, false), 1);
    allow(&mut room, "tiles", "https://x.org/tiles.js", 'A', 2);
    let unknown = room.send(
        "carol",
        &Outgoing::task(&script_task("https://x.org/miner.js", 'A', 2)),
        3,
    );
    let changed = room.send(
        "carol",
        &Outgoing::task(&script_task("https://x.org/tiles.js", 'B', 2)),
        4,
    );
    assert!(plan(&room.ledger, 5, &InFlight::new()).is_empty());
    let refused = |task| room.ledger.task(task).unwrap().refused.clone();
    assert_eq!(
        refused(&unknown),
        Some(NotAllowed::Script {
            url: "https://x.org/miner.js".into()
        })
    );
    assert_eq!(
        refused(&changed),
        Some(NotAllowed::OtherHash {
            url: "https://x.org/tiles.js".into()
        })
    );
    // The task fails with the refusal's words.
    assert_eq!(
        room.status(&unknown, 5),
        TaskStatus::Failed {
            reason: refused(&unknown).unwrap().to_string()
        }
    );

    let allowed = room.send(
        "carol",
        &Outgoing::task(&script_task("https://x.org/tiles.js", 'A', 2)),
        6,
    );
    let planned = plan(&room.ledger, 7, &InFlight::new());
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0].0, allowed);
}

#[test]
fn a_friend_who_declined_a_script_gets_none_of_it_and_is_told_why() {
    let mut room = Room::new();
    let mut careful = caps(2, false);
    careful.declined = vec![format!("sha384-{}", "A".repeat(64))];
    room.online("alice", careful, 1);
    room.online("bob", caps(2, false), 2);
    allow(&mut room, "tiles", "https://x.org/tiles.js", 'A', 3);
    room.send(
        "carol",
        &Outgoing::task(&script_task("https://x.org/tiles.js", 'A', 4)),
        4,
    );
    let planned = plan(&room.ledger, 5, &InFlight::new());
    assert!(
        planned[0].1.iter().all(|a| a.node == node("bob")),
        "{planned:?}"
    );
    assert_eq!(
        explain_idle(&room.ledger, &node("alice"), 5),
        IdleReason::MissingCapability { tasks: 1 }
    );
}

#[test]
fn a_node_that_takes_no_scripts_is_given_none_but_still_takes_other_work() {
    let mut room = Room::new();
    // A node outside a browser: it runs no browser scripts and says so.
    let native = NodeCaps {
        runs: Some(vec!["primes".into(), "transcribe".into(), "kernel".into()]),
        ..caps(4, false)
    };
    room.online("alice", native, 1);
    allow(&mut room, "tiles", "https://x.org/tiles.js", 'A', 2);
    let script = room.send(
        "carol",
        &Outgoing::task(&script_task("https://x.org/tiles.js", 'A', 3)),
        3,
    );
    assert!(plan(&room.ledger, 4, &InFlight::new()).is_empty());
    assert_eq!(
        explain_idle(&room.ledger, &node("alice"), 4),
        IdleReason::MissingCapability { tasks: 1 }
    );
    // A coordinator that gives it a script chunk all the same is refused.
    let to_alice = Outgoing::assign(
        &script,
        &[Assignment {
            chunk: 0,
            node: node("alice"),
            attempt: 1,
        }],
    );
    assert_eq!(
        room.send_rejected("alice", &to_alice, 5),
        Refused::CannotRun {
            chunk: 0,
            node: node("alice")
        }
    );

    let primes = room.send("carol", &Outgoing::task(&primes(1)), 6);
    let planned = plan(&room.ledger, 7, &InFlight::new());
    assert_eq!(planned.len(), 1, "{planned:?}");
    assert_eq!(planned[0].0, primes);
    assert_eq!(planned[0].1[0].node, node("alice"));

    // A browser joins: the script goes to it.
    room.online("bob", caps(2, false), 8);
    let planned = plan(&room.ledger, 9, &InFlight::new());
    let to_script: Vec<_> = planned.iter().filter(|(t, _)| *t == script).collect();
    assert!(
        to_script[0].1.iter().all(|a| a.node == node("bob")),
        "{planned:?}"
    );
}

#[test]
fn the_allowlist_is_one_state_event_with_an_empty_key() {
    let mut room = Room::new();
    let mut out = Outgoing::allowlist(&Allowlist::default());
    out.state_key = Some("tiles".into());
    let (_, raw) = room.raw("mod", &out, 1);
    let rejection = room.ledger.ingest(&raw).expect_err("rejected");
    assert_eq!(rejection.reason, Reason::Invalid(Invalid::AllowlistKey));
}

#[test]
fn a_node_that_updates_its_capabilities_stays_coordinator() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1);
    room.online("bob", caps(1, false), 2);
    let mut fewer = caps(1, false);
    fewer.declined = vec![format!("sha256-{}=", "a".repeat(43))];
    room.online("alice", fewer, 3);
    assert_eq!(room.ledger.coordinator(), Some(&node("alice")));
}

fn span_of_voice(message: &str) -> TaskSpec {
    let audio =
        serde_json::from_value(json!({"message": message, "url": "mxc://hs/voice"})).unwrap();
    let span = Span {
        start_ms: 0,
        end_ms: 10_000,
    };
    let task = TranscribeTask {
        stage: Stage::Spans(vec![span]),
        ..TranscribeTask::plan(audio, WhisperModel::TinyEn)
    };
    TaskSpec::new(TaskKind::Transcribe(Box::new(task)), 1)
}

#[test]
fn a_span_goes_to_the_idle_node_whose_workers_hold_the_model() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1); // The senior node: coordinator.
    room.online("bob", caps(1, false), 2);
    let first = room.send("carol", &Outgoing::task(&span_of_voice("$one")), 3);
    let planned = plan(&room.ledger, 4, &InFlight::new());
    assert_eq!(
        planned[0].1[0].node,
        node("bob"),
        "no one holds it yet: not the coordinator, whose account sends the assignments"
    );

    // Alice ran a span, so her worker has tiny.en loaded.
    room.assign("alice", &first, 0, "alice", 1, 5);
    let words = json!({"segments": [{"start_ms": 0, "end_ms": 9_000, "text": " Hi."}]});
    room.result("alice", &first, 0, 1, Outcome::Output(words.into()), 6);
    assert!(room
        .ledger
        .holds_model(&node("alice"), WhisperModel::TinyEn));
    assert!(!room.ledger.holds_model(&node("alice"), WhisperModel::Base));

    let second = room.send("carol", &Outgoing::task(&span_of_voice("$two")), 7);
    let planned = plan(&room.ledger, 8, &InFlight::new());
    assert_eq!(
        planned[0].1[0].node,
        node("alice"),
        "the warm node takes the next span, coordinator or not"
    );
    let primes_task = room.send("carol", &Outgoing::task(&primes(1)), 9);
    let planned = plan(&room.ledger, 10, &InFlight::new());
    let to = |task: &EventId| {
        planned
            .iter()
            .find(|(t, _)| t == task)
            .map(|(_, a)| a[0].node.clone())
    };
    assert_eq!(to(&second), Some(node("alice")));
    assert_eq!(
        to(&primes_task),
        Some(node("bob")),
        "other work is not drawn to it"
    );

    // Busy, the warm node does not hold up a span an idle one can start now.
    room.assign("alice", &second, 0, "alice", 1, 11);
    room.assign("alice", &primes_task, 0, "bob", 1, 11);
    room.result("bob", &primes_task, 0, 1, count(168), 11);
    let third = room.send("carol", &Outgoing::task(&span_of_voice("$three")), 12);
    let planned = plan(&room.ledger, 13, &InFlight::new());
    let to = |task: &EventId| {
        planned
            .iter()
            .find(|(t, _)| t == task)
            .map(|(_, a)| a[0].node.clone())
    };
    assert_eq!(to(&third), Some(node("bob")));

    // A new contribution starts with new workers: nothing loaded.
    room.send("alice", &Outgoing::node_gone(&node("alice")), 14);
    room.online("alice", caps(1, false), 15);
    assert!(!room
        .ledger
        .holds_model(&node("alice"), WhisperModel::TinyEn));
}

fn plan_of_voice(message: &str) -> TaskSpec {
    let audio =
        serde_json::from_value(json!({"message": message, "url": "mxc://hs/voice"})).unwrap();
    TaskSpec::new(
        TaskKind::Transcribe(Box::new(TranscribeTask::plan(audio, WhisperModel::TinyEn))),
        1,
    )
}

fn words_of_one_window() -> Outcome {
    Outcome::Output(
        json!({"duration_ms": 4_000, "cuts": [0, 4_000],
            "segments": [{"start_ms": 0, "end_ms": 3_000, "text": " Hi."}]})
        .into(),
    )
}

#[test]
fn the_coordinator_runs_a_plan_without_an_assignment_and_only_the_coordinator() {
    let mut room = Room::new();
    room.online("alice", caps(1, false), 1); // The senior node: coordinator.
    room.online("bob", caps(1, false), 2);

    // Bob is no coordinator: his result for a plan nobody gave him is refused.
    let first = room.send("carol", &Outgoing::task(&plan_of_voice("$one")), 3);
    room.result("bob", &first, 0, 1, words_of_one_window(), 4);
    let refused = room.ledger.rejections().last().map(|r| r.reason.clone());
    assert!(
        matches!(&refused, Some(Reason::Refused(Refused::NoLease { node: n, .. })) if *n == node("bob")),
        "{refused:?}"
    );
    // Alice's is her claim: the plan is done with its words.
    room.result("alice", &first, 0, 1, words_of_one_window(), 5);
    let TaskStatus::Done { result } = room.status(&first, 6) else {
        panic!("{:?}", room.status(&first, 6))
    };
    assert_eq!(result["text"], "Hi.");

    // Only plans: other work still needs an assignment, even from her.
    let primes_task = room.send("carol", &Outgoing::task(&primes(1)), 7);
    room.result("alice", &primes_task, 0, 1, count(168), 8);
    assert!(matches!(room.status(&primes_task, 9), TaskStatus::Queued));

    // A plan claimed for a long recording is split by the coordinator.
    let long = room.send("carol", &Outgoing::task(&plan_of_voice("$long")), 10);
    let spans = TranscribeTask {
        stage: Stage::Spans(vec![
            Span {
                start_ms: 0,
                end_ms: 20_000,
            },
            Span {
                start_ms: 20_000,
                end_ms: 40_000,
            },
        ]),
        ..TranscribeTask::plan(
            serde_json::from_value(json!({"message": "$long", "url": "mxc://hs/voice"})).unwrap(),
            WhisperModel::TinyEn,
        )
    };
    let mut part = TaskSpec::new(TaskKind::Transcribe(Box::new(spans)), 2);
    part.parent = Some(long.clone());
    let refused = room.send_rejected("bob", &Outgoing::task(&part), 11);
    assert!(
        matches!(refused, Refused::NotSplitter { .. }),
        "{refused:?}"
    );
    room.send("alice", &Outgoing::task(&part), 12);
    assert_eq!(room.ledger.task(&long).unwrap().children.len(), 1);

    // Once bob coordinates (alice left), alice's claims count no more.
    let after = room.send("carol", &Outgoing::task(&plan_of_voice("$two")), 13);
    room.send("alice", &Outgoing::node_gone(&node("alice")), 14);
    room.online("alice", caps(1, false), 15);
    assert_eq!(room.ledger.coordinator(), Some(&node("bob")));
    room.result("alice", &after, 0, 1, words_of_one_window(), 16);
    assert!(matches!(room.status(&after, 17), TaskStatus::Queued));
    room.result("bob", &after, 0, 1, words_of_one_window(), 18);
    assert!(matches!(room.status(&after, 19), TaskStatus::Done { .. }));
}
