//! A seeded, deterministic simulation of a Potluck room, shared by the
//! simulation test and the pool benchmark.
//!
//! The homeserver stamps and orders events, enforces each account's
//! `rc_message` limit (0.2 events/s, burst 10; a refused send goes back to the
//! machine as `SendFailed`, as the widget does it) and fires delayed events. Every tab sees the timeline with
//! its own random delays, some events twice and so in its own order. Nodes
//! join, crash mid-chunk (their dead-man switch fires later), the coordinator
//! crashes, crashed friends come back as new nodes. One friend floods the pool;
//! another submits a single task in the middle of the flood. A hostile member
//! may send crafted events all along (see `mallory`).

#![allow(dead_code)] // Each user of this module reads a different part of the report.

mod mallory;

pub use mallory::Moves;

use manifest::events::{event_type, NodeCaps, Outcome, Outgoing, TaskSpec, NAMESPACE, REDACTION};
use manifest::ids::{EventId, NodeId, UserId};
use manifest::ledger::{Ledger, TaskStatus};
use manifest::limits::{MAX_SLOTS, NODE_TIMEOUT_MS, SERVER_BURST, SERVER_EVENTS_PER_SECOND};
use manifest::node::{Action, Input, NodeMachine};
use manifest::task_kind::TaskKind;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// How long the room runs on after the friends' tasks are done, before
/// every tab's view is compared.
const SETTLE_MS: u64 = 30_000;

/// When the first nodes have seen each other's announcements.
const SETTLED_MS: u64 = 20_000;

/// xorshift64*: small, seeded, no dependency.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub contributors: usize,
    pub slots: u32,
    /// Tasks the flooding friend submits at the start.
    pub flood_tasks: usize,
    /// Friends the flood comes from, each submitting their share at the
    /// start (1: the flooding friend alone).
    pub flood_friends: usize,
    pub chunks: u32,
    /// Milliseconds one chunk takes in a worker, at least and at most.
    pub chunk_ms: (u64, u64),
    /// Percent chance per second that some contributor's tab closes.
    pub crash_percent_per_s: u64,
    pub crash_coordinator: bool,
    /// Nodes that run each chunk of the flood (1: no replication).
    pub replication: u8,
    /// The first friend's machines answer every chunk wrongly (a broken
    /// browser, or a cheat), always with the same wrong output.
    pub first_friend_lies: bool,
    /// Each tab sees each event up to this late.
    pub max_lag_ms: u64,
    /// Percent of events a tab sees twice.
    pub duplicate_percent: u64,
    /// Percent of events a tab sees only 30 to 60 s late (a limited sync
    /// whose gap the tab reads back later), once the pool's first nodes
    /// know each other (`SETTLED_MS`). Before, a late announcement makes
    /// two coordinators: the ledger counts the first output only, but the
    /// room holds both.
    pub late_percent: u64,
    /// Percent of sends the homeserver takes whose answer never reaches the
    /// tab (a timeout): the tab hears it failed, not why.
    pub lost_answer_percent: u64,
    pub give_up_after_ms: u64,
    /// A member's node (mallory's) announces `MAX_SLOTS` workers and never
    /// runs or answers anything it is given.
    pub silent_node: bool,
    /// Mallory's account also sends crafted events of every type, as fast
    /// as its rate limit allows (see `mallory`).
    pub hostile_member: bool,
}

impl Config {
    pub fn hostile(seed: u64) -> Self {
        Self {
            seed,
            contributors: 3,
            slots: 2,
            flood_tasks: 6,
            flood_friends: 1,
            chunks: 3,
            chunk_ms: (2_000, 20_000),
            crash_percent_per_s: 2,
            crash_coordinator: true,
            replication: 1,
            first_friend_lies: false,
            max_lag_ms: 3_000,
            duplicate_percent: 10,
            late_percent: 0,
            lost_answer_percent: 0,
            give_up_after_ms: 3 * 3_600_000,
            silent_node: false,
            hostile_member: false,
        }
    }
}

/// What one tab shows: every task's submitter, status and who did each chunk.
pub type View = Vec<(UserId, TaskStatus, Vec<Option<NodeId>>)>;

#[derive(Debug)]
pub struct Report {
    /// Each observer's view, the tabs open all along first.
    pub views: Vec<View>,
    /// The view of a tab opened at the end, from the room's current state and
    /// its events as the homeserver keeps them (redacted ones without content).
    pub late_view: View,
    /// The friends' tasks (not mallory's) in the ledger, and how many they
    /// submitted.
    pub tasks: usize,
    pub tasks_submitted: usize,
    pub chunks_total: usize,
    pub chunks_accepted: usize,
    pub events_total: u64,
    pub events_by_type: BTreeMap<String, u64>,
    /// Minutes of contributing, summed over nodes.
    pub node_minutes: f64,
    pub finished_at_ms: u64,
    /// From the single task's submission to its completion.
    pub single_task_wait_ms: Option<u64>,
    /// When each of the flooding friend's tasks was done, in the order she
    /// submitted them (`None`: not done).
    pub flood_done_at_ms: Vec<Option<u64>>,
    pub crashes: u32,
    /// Chunks issued more than their replication asks for (reissued after a
    /// lease expired or a node failed).
    pub reissues: u32,
    /// Outputs in the room for a chunk that already had one from the
    /// same attempt or no lease to answer: what a friend reading the room
    /// sees twice. Only a lease that lapsed may add another.
    pub surplus_outputs: usize,
    /// Accepted outputs that are wrong.
    pub wrong_outputs: usize,
    /// Chunks where the lying friend's machines cast a majority of the votes.
    pub chunks_outvoted_by_liar: usize,
    pub mallory: Moves,
}

impl Report {
    /// The friends' tasks in a view (mallory's own may end any way).
    pub fn honest(view: &View) -> impl Iterator<Item = &(UserId, TaskStatus, Vec<Option<NodeId>>)> {
        view.iter()
            .filter(|(by, ..)| by.as_str() != mallory::MALLORY)
    }
}

struct Homeserver {
    timeline: Vec<Value>,
    next_id: u64,
    tokens: BTreeMap<String, (f64, u64)>,
    /// Dead-man switches: node → (fires at, owner, content).
    delayed: BTreeMap<String, (u64, String, Outgoing)>,
    events_by_type: BTreeMap<String, u64>,
}

impl Homeserver {
    fn allow(&mut self, sender: &str, now: u64) -> bool {
        let (tokens, at) = self
            .tokens
            .entry(sender.into())
            .or_insert((SERVER_BURST, now));
        *tokens =
            (*tokens + (now - *at) as f64 / 1000.0 * SERVER_EVENTS_PER_SECOND).min(SERVER_BURST);
        *at = now;
        let allowed = *tokens >= 1.0;
        if allowed {
            *tokens -= 1.0;
        }
        allowed
    }

    fn append(&mut self, sender: &str, out: &Outgoing, now: u64) {
        self.next_id += 1;
        let mut event = json!({
            "type": out.event_type, "event_id": opaque_event_id(self.next_id),
            "sender": sender, "origin_server_ts": now, "content": out.content,
        });
        if let Some(key) = &out.state_key {
            event["state_key"] = json!(key);
        }
        *self
            .events_by_type
            .entry(out.event_type.to_owned())
            .or_default() += 1;
        self.timeline.push(event);
    }

    fn send(&mut self, sender: &str, out: &Outgoing, now: u64) -> bool {
        let allowed = self.allow(sender, now);
        if allowed {
            self.append(sender, out, now);
        }
        allowed
    }

    /// A redaction, as a default room's power levels allow it: a member
    /// redacts their own events only (`Err` for anyone else's). The event
    /// keeps its place in the timeline without its content.
    fn redact(&mut self, sender: &str, target: &EventId, now: u64) -> Result<bool, ()> {
        let index = self
            .timeline
            .iter()
            .position(|e| e["event_id"] == target.as_str())
            .ok_or(())?;
        if self.timeline[index]["sender"] != sender {
            return Err(());
        }
        if !self.allow(sender, now) {
            return Ok(false);
        }
        self.timeline[index]["content"] = json!({});
        let redaction = Outgoing {
            event_type: REDACTION,
            state_key: None,
            content: json!({ "redacts": target }),
        };
        self.append(sender, &redaction, now);
        Ok(true)
    }

    /// What a tab opening now reads: the room's current state (the latest
    /// event of each type and key) and every other Potluck event, redacted
    /// ones without their content. No redactions: they are not relations.
    fn as_read_later(&self) -> Vec<Value> {
        let mut state: BTreeMap<(String, String), Value> = BTreeMap::new();
        let mut events = Vec::new();
        for event in &self.timeline {
            let event_type = event["type"].as_str().unwrap_or_default();
            match event.get("state_key").and_then(Value::as_str) {
                Some(key) => {
                    state.insert((event_type.into(), key.into()), event.clone());
                }
                None if event_type.starts_with(NAMESPACE) => events.push(event.clone()),
                None => {}
            }
        }
        state.into_values().chain(events).collect()
    }

    fn fire_due(&mut self, now: u64) {
        let due: Vec<String> = self
            .delayed
            .iter()
            .filter(|(_, d)| d.0 <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some((_, sender, out)) = self.delayed.remove(&key) {
                self.append(&sender, &out, now);
            }
        }
    }
}

/// One browser tab: a machine, its view of the timeline, its workers.
struct Tab {
    user: UserId,
    machine: NodeMachine,
    node: Option<NodeId>,
    /// Events on their way to this tab: (visible at, index in the timeline).
    inbox: Vec<(u64, usize)>,
    delivered_up_to: usize,
    /// Running jobs: job → (started at, finishes at, its outcome if not
    /// the usual output).
    jobs: BTreeMap<u64, (u64, u64, Option<Outcome>)>,
    retry: Vec<Action>,
    joined_at: u64,
    /// Takes work and never runs it (see `Config::silent_node`).
    silent: bool,
}

impl Tab {
    fn new(user: UserId, now: u64) -> Self {
        Self {
            machine: NodeMachine::new(user.clone()),
            user,
            node: None,
            inbox: Vec::new(),
            delivered_up_to: 0,
            jobs: BTreeMap::new(),
            retry: Vec::new(),
            joined_at: now,
            silent: false,
        }
    }

    /// Schedules delivery of new timeline events with this tab's own lag.
    fn receive(&mut self, hs: &Homeserver, now: u64, rng: &mut Rng, config: &Config) {
        while self.delivered_up_to < hs.timeline.len() {
            let index = self.delivered_up_to;
            let lag = if now > SETTLED_MS && rng.chance(config.late_percent) {
                30_000 + rng.below(30_001)
            } else {
                rng.below(config.max_lag_ms + 1)
            };
            self.inbox.push((now + lag, index));
            if rng.chance(config.duplicate_percent) {
                self.inbox
                    .push((now + rng.below(2 * config.max_lag_ms + 1), index));
            }
            self.delivered_up_to += 1;
        }
    }

    fn step(
        &mut self,
        hs: &mut Homeserver,
        now: u64,
        rng: &mut Rng,
        config: &Config,
        output: &Value,
    ) {
        let lies = config.first_friend_lies && self.user.as_str() == "@friend0:hs";
        let output = if lies { &json!({"count": 666}) } else { output };
        let mut actions = std::mem::take(&mut self.retry);
        let (due, later): (Vec<_>, Vec<_>) = self.inbox.drain(..).partition(|(at, _)| *at <= now);
        self.inbox = later;
        for (_, index) in due {
            actions.extend(self.machine.process(as_input(&hs.timeline[index]), now));
        }
        let finished: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, (_, end, _))| *end <= now)
            .map(|(j, _)| *j)
            .collect();
        for (&job, &(start, end, _)) in &self.jobs {
            let done = (now - start) as f32 / (end - start).max(1) as f32;
            actions.extend(
                self.machine
                    .process(Input::WorkerProgress { job, done }, now),
            );
        }
        for job in finished {
            let Some((_, _, outcome)) = self.jobs.remove(&job) else {
                continue;
            };
            let outcome = outcome.unwrap_or_else(|| Outcome::Output(output.clone().into()));
            actions.extend(
                self.machine
                    .process(Input::WorkerFinished { job, outcome }, now),
            );
        }
        actions.extend(self.machine.process(Input::Tick, now));
        for action in actions {
            self.carry_out(action, hs, now, rng, config);
        }
    }

    fn carry_out(
        &mut self,
        action: Action,
        hs: &mut Homeserver,
        now: u64,
        rng: &mut Rng,
        config: &Config,
    ) {
        match action {
            Action::Send { request, out } => {
                if hs.send(self.user.as_str(), &out, now) {
                    let answer = if rng.chance(config.lost_answer_percent) {
                        Input::SendFailed {
                            request,
                            retry_after_ms: None,
                            permanent: false,
                            reason: "timed out".into(),
                        }
                    } else {
                        Input::Sent { request }
                    };
                    let actions = self.machine.process(answer, now);
                    self.retry.extend(actions);
                } else {
                    // M_LIMIT_EXCEEDED with retry_after_ms, as Synapse answers.
                    let refused = Input::SendFailed {
                        request,
                        retry_after_ms: Some(1_000 + rng.below(4_000)),
                        permanent: false,
                        reason: "M_LIMIT_EXCEEDED".into(),
                    };
                    let actions = self.machine.process(refused, now);
                    self.retry.extend(actions);
                }
            }
            Action::ArmDeadManSwitch { node, gone } => {
                hs.delayed.insert(
                    node.to_string(),
                    (now + NODE_TIMEOUT_MS, self.user.to_string(), gone),
                );
            }
            Action::RestartDeadManSwitch => {
                if let Some(d) = self
                    .node
                    .as_ref()
                    .and_then(|n| hs.delayed.get_mut(n.as_str()))
                {
                    d.0 = now + NODE_TIMEOUT_MS;
                }
            }
            Action::FireDeadManSwitch => {
                if let Some((_, sender, out)) = self
                    .node
                    .as_ref()
                    .and_then(|n| hs.delayed.remove(n.as_str()))
                {
                    hs.append(&sender, &out, now);
                }
            }
            Action::RunChunk { .. } | Action::RunTranscription { .. } if self.silent => {}
            // A transcription runs once its audio is decoded (below).
            Action::RunChunk {
                work: TaskKind::Transcribe(_),
                ..
            } => {}
            Action::RunChunk { job, .. } => {
                let (min, max) = config.chunk_ms;
                let end = now + min + rng.below(max - min + 1);
                self.jobs.insert(job, (now, end, None));
            }
            // Every recording in the simulation is a minute of silence.
            Action::DecodeAudio { audio } => {
                let decoded = Input::AudioDecoded {
                    message: audio.message,
                    samples: Ok(vec![0.0; RECORDING_SAMPLES]),
                };
                let actions = self.machine.process(decoded, now);
                self.retry.extend(actions);
            }
            Action::RunTranscription { job, samples, .. } => {
                assert!(
                    samples.len() <= RECORDING_SAMPLES,
                    "a span inside the recording"
                );
                let no_whisper = Outcome::Error {
                    reason: "the simulation has no Whisper".into(),
                    retriable: false,
                };
                self.jobs.insert(job, (now, now + 1_000, Some(no_whisper)));
            }
            Action::AbortJob { job } => {
                self.jobs.remove(&job);
            }
            // No transcriptions in the simulation.
            Action::ReadThread { .. }
            | Action::ReadHistory { .. }
            | Action::AskConsent { .. }
            | Action::PrepareModel { .. }
            | Action::Rejected(_)
            | Action::SendToDevice { .. } => {}
        }
    }
}

/// A room event as the widget hands it to its machine.
fn as_input(event: &Value) -> Input {
    Input::from_room_message(event).unwrap_or_else(|| Input::RoomEvent(event.clone()))
}

/// The simulation runs no Whisper: a transcription (only mallory submits
/// them) plans a minute of silence, which fails, and her crafted spans are
/// cut out of it by the node machine, which must keep them inside it.
const RECORDING_SAMPLES: usize = 16_000 * 60;

/// An event id as a homeserver makes them: unique, and in no order (room
/// versions 4+ use a hash), so nothing may rely on ids sorting as events came.
fn opaque_event_id(serial: u64) -> String {
    // splitmix64: a bijection, so ids stay unique.
    let mut z = serial.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("$ev{:016x}", z ^ (z >> 31))
}

/// Outputs in result events beyond the first for each chunk of `tasks`.
fn surplus_outputs(timeline: &[Value], tasks: &[&str]) -> usize {
    let mut outputs: BTreeMap<(&str, u64), usize> = BTreeMap::new();
    for event in timeline.iter().filter(|e| e["type"] == event_type::RESULT) {
        let Some(task) = event["content"]["m.relates_to"]["event_id"].as_str() else {
            continue;
        };
        if !tasks.contains(&task) {
            continue;
        }
        let outcomes = event["content"]["outcomes"]
            .as_array()
            .into_iter()
            .flatten();
        for outcome in outcomes.filter(|o| o.get("output").is_some()) {
            let chunk = outcome["chunk"].as_u64().unwrap_or(u64::MAX);
            *outputs.entry((task, chunk)).or_default() += 1;
        }
    }
    outputs.values().map(|n| n - 1).sum()
}

fn view(ledger: &Ledger, now: u64) -> View {
    ledger
        .tasks()
        .map(|t| {
            let by = t
                .chunks
                .iter()
                .map(|c| c.done().map(|d| d.node.clone()))
                .collect();
            (t.submitter.clone(), ledger.task_status(t, now), by)
        })
        .collect()
}

pub fn run(config: &Config) -> Report {
    let mut rng = Rng::new(config.seed);
    let mut hs = Homeserver {
        timeline: vec![],
        next_id: 0,
        tokens: BTreeMap::new(),
        delayed: BTreeMap::new(),
        events_by_type: BTreeMap::new(),
    };
    let output = json!({"count": 1});
    let mut names: Vec<UserId> = (0..config.contributors)
        .map(|i| UserId::parse(format!("@friend{i}:hs")).unwrap())
        .collect();
    let mallory = UserId::parse("@mallory:hs").unwrap();
    if config.silent_node {
        names.push(mallory.clone());
    }
    let mut now = 1_000u64;
    let mut tabs: Vec<Tab> = Vec::new();
    let mut generation = 0u32;
    let mut join = |tabs: &mut Vec<Tab>, user: &UserId, now: u64| {
        generation += 1;
        let mut tab = Tab::new(user.clone(), now);
        tab.silent = *user == mallory;
        let node = NodeId::new(user, &format!("g{generation}")).unwrap();
        tab.node = Some(node.clone());
        let slots = if tab.silent { MAX_SLOTS } else { config.slots };
        let caps = NodeCaps {
            cores: slots + 1,
            slots,
            memory_mb: None,
            webgpu: false,
            models: vec![],
            declined: vec![],
            runs: None,
        };
        tab.retry = tab
            .machine
            .process(Input::StartContributing { node, caps }, now);
        tabs.push(tab);
    };
    for user in &names {
        join(&mut tabs, user, now);
    }
    let carol = UserId::parse("@carol:hs").unwrap();
    let dan = UserId::parse("@dan:hs").unwrap();
    let mut submitters = vec![Tab::new(carol, now), Tab::new(dan, now)];
    // The flood's other friends, after carol and dan.
    for k in 1..config.flood_friends {
        submitters.push(Tab::new(
            UserId::parse(format!("@flooder{k}:hs")).unwrap(),
            now,
        ));
    }
    let spec = TaskSpec {
        replication: config.replication,
        ..TaskSpec::new(
            TaskKind::Primes {
                start: 0,
                end: 1_000,
            },
            config.chunks,
        )
    };
    for i in 0..config.flood_tasks {
        let friend = match i % config.flood_friends.max(1) {
            0 => 0,
            k => 1 + k,
        };
        let actions = submitters[friend]
            .machine
            .process(Input::Submit(spec.clone()), now);
        submitters[friend].retry.extend(actions);
    }
    let mut single_submitted = false;
    let mut crashed_coordinator = false;
    let mut crashes = 0;
    let mut rejoin_at: Vec<(u64, UserId)> = Vec::new();
    let mut node_ms: u64 = 0;
    let total_tasks = config.flood_tasks + 1;
    let mut mallory_member = config.hostile_member.then(mallory::Mallory::default);
    let mut finished_at: Option<u64> = None;

    loop {
        let dt = 100 + rng.below(400);
        now += dt;
        node_ms += dt * tabs.len() as u64;
        hs.fire_due(now);

        // The single task arrives once the flood has the pool busy.
        if !single_submitted && now > 30_000 {
            let actions = submitters[1].machine.process(
                Input::Submit(TaskSpec {
                    chunks: 1,
                    replication: 1,
                    ..spec.clone()
                }),
                now,
            );
            submitters[1].retry.extend(actions);
            single_submitted = true;
        }

        // Tabs close: a random contributor now and then, the coordinator once.
        let may_crash = tabs.len() > 1;
        let coordinator_crash = config.crash_coordinator && !crashed_coordinator && now > 60_000;
        if may_crash && (coordinator_crash || rng.chance(config.crash_percent_per_s * dt / 1000)) {
            let victim = if coordinator_crash {
                crashed_coordinator = true;
                let coordinator = tabs[0].machine.ledger().coordinator().cloned();
                tabs.iter().position(|t| t.node == coordinator).unwrap_or(0)
            } else {
                rng.below(tabs.len() as u64) as usize
            };
            let tab = tabs.remove(victim);
            rejoin_at.push((now + 20_000 + rng.below(60_000), tab.user));
            crashes += 1;
        }
        let (due, later): (Vec<_>, Vec<_>) = rejoin_at.drain(..).partition(|(at, _)| *at <= now);
        rejoin_at = later;
        for (_, user) in due {
            join(&mut tabs, &user, now);
        }

        for tab in tabs.iter_mut().chain(submitters.iter_mut()) {
            tab.receive(&hs, now, &mut rng, config);
            tab.step(&mut hs, now, &mut rng, config, &output);
        }

        if let Some(mallory) = mallory_member.as_mut().filter(|_| finished_at.is_none()) {
            mallory.act(&mut hs, now, &mut rng);
        }

        let ledger = submitters[0].machine.ledger();
        let honest = || ledger.tasks().filter(|t| t.submitter != mallory);
        let finished = honest().count() == total_tasks
            && honest().all(|t| ledger.task_status(t, now).is_terminal());
        if (finished || now > config.give_up_after_ms) && finished_at.is_none() {
            finished_at = Some(now);
        }
        // Then the room settles a while (mallory stopped): nodes put back
        // the state she overwrote last.
        if finished_at.is_some_and(|at| now >= at + SETTLE_MS) {
            break;
        }
    }

    // Let every tab see the whole timeline, in its own order, then compare.
    let finished_at_ms = finished_at.unwrap_or(now);
    now += 2 * config.max_lag_ms + 1;
    let mut views = Vec::new();
    for tab in tabs.iter_mut().chain(submitters.iter_mut()) {
        tab.receive(&hs, finished_at_ms, &mut rng, config);
        let mut pending = std::mem::take(&mut tab.inbox);
        pending.sort();
        for (_, index) in pending {
            tab.machine.process(as_input(&hs.timeline[index]), now);
        }
        views.push(view(tab.machine.ledger(), finished_at_ms));
    }
    let mut late = NodeMachine::new(UserId::parse("@late:hs").unwrap());
    late.process(Input::RoomEvents(hs.as_read_later()), now);
    let late_view = view(late.ledger(), finished_at_ms);
    let ledger = submitters[0].machine.ledger();
    let single_task_wait_ms = submitters[1]
        .machine
        .ledger()
        .tasks()
        .find(|t| t.submitter.as_str() == "@dan:hs")
        .and_then(|t| t.chunks[0].done().map(|d| d.at - t.submitted_at));
    let flood_done_at_ms = ledger
        .tasks()
        .filter(|t| t.submitter.as_str() == "@carol:hs")
        .map(|t| {
            let done: Option<Vec<u64>> = t.chunks.iter().map(|c| c.done().map(|d| d.at)).collect();
            done.and_then(|at| at.into_iter().max())
        })
        .collect();
    let chunks = || {
        ledger
            .tasks()
            .filter(|t| t.submitter != mallory)
            .flat_map(|t| t.chunks.iter())
    };
    // A chunk that is not replicated is decided by its one output (Dan's
    // single task is), so there the liar's output is its own majority.
    let liar_votes = |c: &manifest::ledger::ChunkRecord| {
        let decided_alone = c.replicas == 1;
        let voters = c
            .votes
            .iter()
            .chain(c.done().into_iter().filter(|_| decided_alone));
        voters
            .filter(|v| v.node.owner().as_str() == "@friend0:hs")
            .count()
    };
    let honest_tasks: Vec<&str> = ledger
        .tasks()
        .filter(|t| t.submitter != mallory)
        .map(|t| t.id.as_str())
        .collect();
    Report {
        surplus_outputs: surplus_outputs(&hs.timeline, &honest_tasks),
        reissues: chunks()
            .map(|c| c.attempts.saturating_sub(u32::from(c.replicas)))
            .sum(),
        wrong_outputs: chunks()
            .filter(|c| c.done().is_some_and(|d| *d.output != output))
            .count(),
        chunks_outvoted_by_liar: chunks()
            .filter(|c| config.first_friend_lies && liar_votes(c) >= c.quorum())
            .count(),
        views,
        late_view,
        tasks: ledger.tasks().filter(|t| t.submitter != mallory).count(),
        tasks_submitted: total_tasks,
        chunks_total: total_tasks.saturating_sub(1) * config.chunks as usize + 1,
        chunks_accepted: chunks().filter(|c| c.done().is_some()).count(),
        events_total: hs.events_by_type.values().sum(),
        events_by_type: hs.events_by_type,
        node_minutes: node_ms as f64 / 60_000.0,
        finished_at_ms,
        single_task_wait_ms,
        flood_done_at_ms,
        crashes,
        mallory: mallory_member.map(|m| m.moves).unwrap_or_default(),
    }
}
