//! A seeded, deterministic simulation of a room: a homeserver that stamps and
//! orders events and enforces each account's rate limit, nodes that join,
//! crash mid-task and come back, and a friend who submits tasks. Every seed
//! must end with every task done exactly once and all nodes agreeing.

use manifest::events::Outcome;
use manifest::events::{NodeCaps, Outgoing, TaskSpec};
use manifest::ids::{NodeId, UserId};
use manifest::ledger::TaskStatus;
use manifest::limits::{NODE_TIMEOUT_MS, RATE_BURST, RATE_EVENTS_PER_SECOND};
use manifest::machine::{Action, Input, NodeMachine};
use manifest::task_kind::TaskKind;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// xorshift64*: small, seeded, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The homeserver: one timeline, per-account rate limits, delayed events.
struct Homeserver {
    timeline: Vec<Value>,
    next_id: u64,
    tokens: BTreeMap<String, (f64, u64)>,
    /// Dead-man switches: node → (fires at, content).
    delayed: BTreeMap<String, (u64, String, Outgoing)>,
    sends: BTreeMap<String, u64>,
}

impl Homeserver {
    fn new() -> Self {
        Self {
            timeline: vec![],
            next_id: 0,
            tokens: BTreeMap::new(),
            delayed: BTreeMap::new(),
            sends: BTreeMap::new(),
        }
    }

    /// Synapse's `rc_message`: refuses the event when the account has no token.
    fn allow(&mut self, sender: &str, now: u64) -> bool {
        let (tokens, at) = self
            .tokens
            .entry(sender.into())
            .or_insert((RATE_BURST, now));
        *tokens = (*tokens + (now - *at) as f64 / 1000.0 * RATE_EVENTS_PER_SECOND).min(RATE_BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn append(&mut self, sender: &str, out: &Outgoing, now: u64) {
        self.next_id += 1;
        let mut event = json!({
            "type": out.event_type, "event_id": format!("$ev{}", self.next_id),
            "sender": sender, "origin_server_ts": now, "content": out.content,
        });
        if let Some(key) = &out.state_key {
            event["state_key"] = json!(key);
        }
        self.timeline.push(event);
    }

    fn send(&mut self, sender: &str, out: &Outgoing, now: u64) -> bool {
        if !self.allow(sender, now) {
            return false;
        }
        *self.sends.entry(sender.into()).or_default() += 1;
        self.append(sender, out, now);
        true
    }

    fn fire_due(&mut self, now: u64) {
        let due: Vec<String> = self
            .delayed
            .iter()
            .filter(|(_, (at, _, _))| *at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let (_, sender, out) = self.delayed.remove(&key).unwrap();
            self.append(&sender, &out, now);
        }
    }
}

struct SimNode {
    user: UserId,
    machine: NodeMachine,
    node: Option<NodeId>,
    /// How far into the timeline this tab has read.
    cursor: usize,
    /// Jobs in its workers: job → finishes at.
    jobs: BTreeMap<u64, u64>,
    alive: bool,
    /// Sends the homeserver refused, retried later (as the widget does).
    retry: Vec<Action>,
}

fn caps(slots: u32) -> NodeCaps {
    NodeCaps {
        cores: slots + 1,
        slots,
        memory_mb: None,
        webgpu: false,
        models: vec![],
    }
}

struct Outcome_ {
    statuses: Vec<Vec<TaskStatus>>,
    accepted_results: usize,
    chunks_total: usize,
}

fn run(seed: u64, tasks: usize, chunks: u32) -> Outcome_ {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut hs = Homeserver::new();
    let users = ["@alice:hs", "@bob:hs", "@dan:hs"];
    let mut nodes: Vec<SimNode> = users
        .iter()
        .map(|u| {
            let user = UserId::parse(*u).unwrap();
            SimNode {
                machine: NodeMachine::new(user.clone()),
                user,
                node: None,
                cursor: 0,
                jobs: BTreeMap::new(),
                alive: true,
                retry: vec![],
            }
        })
        .collect();
    let carol = UserId::parse("@carol:hs").unwrap();
    let mut submitter = NodeMachine::new(carol.clone());
    let mut submitter_cursor = 0;
    let mut now = 1_000u64;
    let mut pending_submissions = tasks;
    let mut crashed_once = false;

    for (i, n) in nodes.iter_mut().enumerate() {
        let node = NodeId::new(&n.user, &format!("t{i}")).unwrap();
        n.node = Some(node.clone());
        let actions = n.machine.process(
            Input::StartContributing {
                node,
                caps: caps(1 + (i as u32 % 2)),
            },
            now,
        );
        n.retry.extend(actions);
    }

    for _round in 0..20_000 {
        now += 100 + rng.below(400);
        hs.fire_due(now);

        if pending_submissions > 0 && rng.below(3) == 0 {
            let spec = TaskSpec {
                kind: TaskKind::Primes {
                    start: 0,
                    end: 1000,
                },
                chunks,
                priority: 0,
                requirements: Default::default(),
            };
            let mut sends = submitter.process(Input::Submit(spec), now);
            sends.retain(|a| matches!(a, Action::Send(_)));
            for a in sends {
                if let Action::Send(out) = a {
                    if hs.send(carol.as_str(), &out, now) {
                        pending_submissions -= 1;
                    }
                }
            }
        }
        while submitter_cursor < hs.timeline.len() {
            submitter.process(Input::RoomEvent(hs.timeline[submitter_cursor].clone()), now);
            submitter_cursor += 1;
        }

        // Crash one node mid-task, once: its tab closes, its switch fires later.
        if !crashed_once && now > 20_000 && rng.below(10) == 0 {
            let victim = 1 + rng.below(2) as usize;
            if !nodes[victim].jobs.is_empty() {
                nodes[victim].alive = false;
                crashed_once = true;
            }
        }

        for n in nodes.iter_mut().filter(|n| n.alive) {
            let mut actions = std::mem::take(&mut n.retry);
            // Each tab sees the timeline with its own delay: sometimes behind.
            let lag = rng.below(3) as usize;
            let visible = hs.timeline.len().saturating_sub(lag);
            while n.cursor < visible {
                actions.extend(
                    n.machine
                        .process(Input::RoomEvent(hs.timeline[n.cursor].clone()), now),
                );
                n.cursor += 1;
            }
            let finished: Vec<u64> = n
                .jobs
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(j, _)| *j)
                .collect();
            for job in finished {
                n.jobs.remove(&job);
                actions.extend(n.machine.process(
                    Input::WorkerFinished {
                        job,
                        outcome: Outcome::Output(json!({"count": 168})),
                    },
                    now,
                ));
            }
            actions.extend(n.machine.process(Input::Tick, now));
            for action in actions {
                match action {
                    Action::Send(out) => {
                        if !hs.send(n.user.as_str(), &out, now) {
                            n.retry.push(Action::Send(out));
                        }
                    }
                    Action::ArmDeadManSwitch { node, gone } => {
                        hs.delayed.insert(
                            node.to_string(),
                            (now + NODE_TIMEOUT_MS, n.user.to_string(), gone),
                        );
                    }
                    Action::RestartDeadManSwitch => {
                        if let Some(d) = hs.delayed.get_mut(n.node.as_ref().unwrap().as_str()) {
                            d.0 = now + NODE_TIMEOUT_MS;
                        }
                    }
                    Action::FireDeadManSwitch => {}
                    Action::RunChunk { job, .. } => {
                        n.jobs.insert(job, now + 2_000 + rng.below(8_000));
                    }
                    Action::AbortJob { job } => {
                        n.jobs.remove(&job);
                    }
                    Action::Rejected(_) => {}
                }
            }
        }

        let all_done = pending_submissions == 0
            && submitter.ledger().tasks().count() == tasks
            && submitter
                .ledger()
                .tasks()
                .all(|t| submitter.ledger().task_status(t, now).is_terminal());
        if all_done {
            break;
        }
    }

    // Let every live tab catch up with the whole timeline, then compare views.
    let mut statuses = vec![];
    for n in nodes.iter_mut().filter(|n| n.alive) {
        while n.cursor < hs.timeline.len() {
            n.machine
                .process(Input::RoomEvent(hs.timeline[n.cursor].clone()), now);
            n.cursor += 1;
        }
        statuses.push(
            n.machine
                .ledger()
                .tasks()
                .map(|t| n.machine.ledger().task_status(t, now))
                .collect(),
        );
    }
    statuses.push(
        submitter
            .ledger()
            .tasks()
            .map(|t| submitter.ledger().task_status(t, now))
            .collect(),
    );
    let accepted_results = submitter
        .ledger()
        .tasks()
        .flat_map(|t| t.chunks.iter())
        .filter(|c| c.done.is_some())
        .count();
    Outcome_ {
        statuses,
        accepted_results,
        chunks_total: tasks * chunks as usize,
    }
}

#[test]
fn every_task_completes_once_and_all_nodes_agree_across_seeds() {
    for seed in 0..200 {
        let outcome = run(seed, 10, 3);
        let reference = &outcome.statuses[0];
        assert_eq!(reference.len(), 10, "seed {seed}: tasks lost");
        for status in reference {
            assert_eq!(
                status,
                &TaskStatus::Done {
                    result: json!({"count": 168 * 3})
                },
                "seed {seed}"
            );
        }
        for other in &outcome.statuses {
            assert_eq!(other, reference, "seed {seed}: nodes disagree");
        }
        assert_eq!(
            outcome.accepted_results, outcome.chunks_total,
            "seed {seed}"
        );
    }
}
