//! The coordinator's decisions: which ready chunk goes to which node, and, for
//! any node, why it is not getting work.
//!
//! Pure function of the ledger and `now`. Only the coordinator acts on a plan,
//! but every node can compute one, which is what lets a node explain itself.

use crate::events::Assignment;
use crate::ids::{EventId, NodeId, UserId};
use crate::ledger::{ChunkRecord, ChunkStatus, Ledger, NodeRecord, TaskRecord, TaskStatus};
use crate::limits::{MAX_LEASES_PER_SLOT, QUEUE_TARGET_MS};
use crate::sort;
use crate::sorted_map::{SortedMap, SortedSet};
use std::collections::VecDeque;

/// One replica of a chunk waiting for a node (a chunk that is not replicated
/// has one).
#[derive(Debug, Clone)]
struct ReadyChunk<'a> {
    task: &'a TaskRecord,
    chunk: u32,
    attempt: u32,
    /// Its estimated running time (see `chunk_ms`).
    ms: u64,
}

/// Assignments the coordinator sent and has not seen back yet: (task, chunk, node).
pub type InFlight = SortedSet<(EventId, u32, NodeId)>;

/// Nodes that must not get another replica of a chunk: those holding a live
/// lease on it, those whose output is in, and those it is on its way to.
fn nodes_on_chunk<'a>(
    ledger: &'a Ledger,
    task: &'a TaskRecord,
    chunk: u32,
    now: u64,
    in_flight: &'a InFlight,
) -> impl Iterator<Item = &'a NodeId> {
    let record = task.chunks.get(chunk as usize);
    let leased = record
        .map(|c| ledger.held_leases(c, now))
        .unwrap_or_default()
        .into_iter()
        .map(|l| &l.node);
    let voted = record.into_iter().flat_map(|c| {
        c.votes
            .iter()
            .map(|v| &v.node)
            .chain(c.errors.iter().map(|(node, _)| node))
    });
    leased
        .chain(voted)
        .chain(sent_to(in_flight, &task.id, chunk))
}

/// Nodes an assignment of this chunk is on its way to.
fn sent_to<'a>(
    in_flight: &'a InFlight,
    task: &'a EventId,
    chunk: u32,
) -> impl Iterator<Item = &'a NodeId> {
    in_flight
        .range((task.clone(), chunk, NodeId::min())..)
        .take_while(move |(t, c, _)| t == task && *c == chunk)
        .map(|(_, _, n)| n)
}

/// Nodes assignments of any chunk of `task` are on their way to.
fn sent_to_task<'a>(
    in_flight: &'a InFlight,
    task: &'a EventId,
) -> impl Iterator<Item = &'a NodeId> {
    in_flight
        .range((task.clone(), 0, NodeId::min())..)
        .take_while(move |(t, _, _)| t == task)
        .map(|(_, _, n)| n)
}

/// What an online node holds: live leases and assignments on their way,
/// and the running time they add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLoad {
    pub slots: u32,
    pub leases: u32,
    /// Estimated milliseconds of the chunks it holds.
    pub queued_ms: u64,
    /// A lease of this node lapsed since it last answered (see
    /// `on_probation`): it holds one chunk at a time.
    pub probation: bool,
}

impl NodeLoad {
    /// Whether the node can take one more chunk that runs about `chunk_ms`:
    /// always while a worker slot has nothing, then while its queue holds less
    /// than `QUEUE_TARGET_MS` of work per slot. A node on probation holds one
    /// chunk at a time, however many workers it announces.
    pub fn can_take(&self, chunk_ms: u64) -> bool {
        if self.probation {
            return self.leases == 0;
        }
        self.leases < self.slots
            || (self.leases < self.slots.saturating_mul(MAX_LEASES_PER_SLOT)
                && self.queued_ms.saturating_add(chunk_ms)
                    <= u64::from(self.slots).saturating_mul(QUEUE_TARGET_MS))
    }

    fn take(&mut self, chunk_ms: u64) {
        self.leases += 1;
        self.queued_ms = self.queued_ms.saturating_add(chunk_ms);
    }

    /// Worker slots with no chunk at all: the first thing to fill.
    fn idle_slots(&self) -> u32 {
        self.slots.saturating_sub(self.leases)
    }
}

/// The running time to count for one chunk of `task`: its estimate, or, before
/// any chunk is done, a whole queue's worth, so unknown chunks go out one per slot.
fn chunk_ms(task: &TaskRecord) -> u64 {
    task.chunk_ms_estimate().unwrap_or(QUEUE_TARGET_MS)
}

/// Nodes on probation: those with a lease that lapsed (no answer, no
/// progress before its soft timeout, or the hard deadline) more recently
/// than they last answered. Judged from the ledger alone, so every node
/// reaches the same verdict; one answer ends it, so a tab the browser
/// throttled for a while is soon trusted again.
pub fn on_probation(ledger: &Ledger, now: u64) -> SortedSet<NodeId> {
    let mut last_lapse: SortedMap<&NodeId, u64> = SortedMap::new();
    let open_chunks = ledger
        .tasks()
        .filter(|t| !ledger.task_status(t, now).is_terminal())
        .flat_map(|t| &t.chunks)
        .filter(|c| c.done().is_none() && c.failed().is_none());
    for lease in open_chunks.flat_map(|c| &c.leases) {
        if lease.soft_expired(now) {
            let at = last_lapse.entry(&lease.node).or_default();
            *at = (*at).max(lease.lapsed_at());
        }
    }
    ledger
        .nodes()
        .filter(|n| {
            let record = ledger.reliability(&n.id);
            let lapse = last_lapse
                .get(&n.id)
                .copied()
                .unwrap_or(0)
                .max(record.last_lapse);
            lapse > record.last_answer
        })
        .map(|n| n.id.clone())
        .collect()
}

/// The load of every online node: its live leases and the assignments on
/// their way to it.
pub fn node_loads(ledger: &Ledger, now: u64, in_flight: &InFlight) -> SortedMap<NodeId, NodeLoad> {
    node_loads_with(ledger, now, in_flight, &on_probation(ledger, now))
}

fn node_loads_with(
    ledger: &Ledger,
    now: u64,
    in_flight: &InFlight,
    probation: &SortedSet<NodeId>,
) -> SortedMap<NodeId, NodeLoad> {
    let mut loads: SortedMap<NodeId, NodeLoad> = ledger
        .online_nodes()
        .map(|n| {
            let load = NodeLoad {
                slots: n.caps.slots,
                leases: 0,
                queued_ms: 0,
                probation: probation.contains(&n.id),
            };
            (n.id.clone(), load)
        })
        .collect();
    // A stopped task's leases hold nothing: its nodes aborted the work.
    for task in ledger.tasks().filter(|t| !ledger.is_stopped(t, now)) {
        let mut ms = None;
        let held = task.chunks.iter().flat_map(|c| ledger.held_leases(c, now));
        let sent = sent_to_task(in_flight, &task.id);
        for node in held.map(|lease| &lease.node).chain(sent) {
            if let Some(load) = loads.get_mut(node) {
                load.take(*ms.get_or_insert_with(|| chunk_ms(task)));
            }
        }
    }
    loads
}

/// Chunks ready to run per submitter, each queue in the submitter's own order
/// (priority, then submission order).
fn ready_by_submitter<'a>(
    ledger: &'a Ledger,
    now: u64,
    in_flight: &InFlight,
    probation: &SortedSet<NodeId>,
) -> SortedMap<&'a UserId, VecDeque<ReadyChunk<'a>>> {
    let mut tasks: Vec<&TaskRecord> = ledger
        .tasks()
        .filter(|t| !ledger.task_status(t, now).is_terminal())
        .collect();
    sort::sort_by_key(&mut tasks, |t| {
        (-i16::from(t.spec.priority), t.submitted_at, t.id.clone())
    });
    let mut queues: SortedMap<&UserId, VecDeque<ReadyChunk>> = SortedMap::new();
    for task in tasks {
        let ms = chunk_ms(task);
        for (index, chunk) in task.chunks.iter().enumerate() {
            let index = index as u32;
            let sent = sent_to(in_flight, &task.id, index).count() as u32;
            let backup = needs_backup(ledger, chunk, ms, now, probation);
            let wanted =
                (ledger.replicas_wanted(chunk, now) + u32::from(backup)).saturating_sub(sent);
            // Each replica gets an attempt number of its own.
            for replica in 1..=wanted {
                queues
                    .entry(&task.submitter)
                    .or_default()
                    .push_back(ReadyChunk {
                        task,
                        chunk: index,
                        attempt: chunk.attempts.saturating_add(sent + replica),
                        ms,
                    });
            }
        }
    }
    queues
}

/// Whether a chunk held only by suspect nodes (on probation, or that never
/// answered a chunk), with no progress reported, for longer than
/// `backup_after_ms`, should also go to another node (a backup, as MapReduce
/// runs stragglers twice): a node that keeps a lease alive with empty
/// progress reports but never answers would otherwise hold it until the hard
/// deadline. The first valid output wins; the other is ignored.
fn needs_backup(
    ledger: &Ledger,
    chunk: &ChunkRecord,
    chunk_ms: u64,
    now: u64,
    probation: &SortedSet<NodeId>,
) -> bool {
    if chunk.replicas != 1 {
        return false; // Replicated chunks are already run more than once.
    }
    let [lease] = ledger.held_leases(chunk, now)[..] else {
        return false; // Nobody holds it, or a backup is already out.
    };
    let suspect =
        probation.contains(&lease.node) || ledger.reliability(&lease.node).last_answer == 0;
    suspect
        && lease.progress == 0.0
        && now >= lease.granted_at.saturating_add(backup_after_ms(chunk_ms))
}

/// How long a suspect node holds a chunk before a backup goes out:
/// twice the chunk's estimate, and never before a queue's worth of time
/// (`QUEUE_TARGET_MS`), so a new friend's first, quick chunk is not doubled.
fn backup_after_ms(chunk_ms: u64) -> u64 {
    chunk_ms.saturating_mul(2).max(QUEUE_TARGET_MS)
}

/// Chunks currently leased per submitter: the first key of fairness.
pub fn running_by_submitter(ledger: &Ledger, now: u64) -> SortedMap<UserId, u32> {
    let mut running = SortedMap::new();
    for task in ledger.tasks() {
        let count = task
            .chunks
            .iter()
            .map(|c| ledger.held_leases(c, now).len() as u32)
            .sum::<u32>();
        if count > 0 {
            *running.entry(task.submitter.clone()).or_default() += count;
        }
    }
    running
}

/// The assignments to make now, grouped by task (one event per task), in the
/// order they were placed: when the coordinator's send budget runs out, the
/// events it still sends are the fairest and oldest, not the lowest task ids.
///
/// `in_flight` holds what the coordinator already assigned but has not seen
/// come back from the homeserver yet, so it neither assigns those chunks twice
/// nor fills the same slots again.
pub fn plan(ledger: &Ledger, now: u64, in_flight: &InFlight) -> Vec<(EventId, Vec<Assignment>)> {
    plan_within(ledger, now, in_flight, usize::MAX)
}

/// `plan`, for a coordinator that can send only `events` assignment events
/// now: once that many tasks have chunks placed, free slots go to more
/// chunks of those tasks, not to other tasks' chunks. Chunk by chunk, the
/// fairness order would spread one round over a chunk of each friend's task,
/// each needing an event of its own, and all but the first would wait for
/// budget; so under load each event carries one chunk instead of a task's
/// worth. Which tasks get the events is still fairness's order. A plan the
/// coordinator claims for itself needs no event (see `coordinate`) and
/// counts for nothing here.
pub fn plan_within(
    ledger: &Ledger,
    now: u64,
    in_flight: &InFlight,
    events: usize,
) -> Vec<(EventId, Vec<Assignment>)> {
    let probation = on_probation(ledger, now);
    let mut loads = node_loads_with(ledger, now, in_flight, &probation);
    let mut queues = ready_by_submitter(ledger, now, in_flight, &probation);
    let mut running = running_by_submitter(ledger, now);
    let mut plan: Vec<(EventId, Vec<Assignment>)> = Vec::new();
    // Replicas placed this round count as on their way.
    let mut placed_now = InFlight::new();

    while loads.values().any(|l| l.can_take(0)) {
        // The friend with the fewest chunks running, then the least recent usage.
        let next = queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(user, _)| *user)
            .min_by(|a, b| {
                let key = |u: &UserId| {
                    (
                        running.get(u).copied().unwrap_or(0),
                        ledger.usage().recent(u, now),
                    )
                };
                let (ra, ua) = key(a);
                let (rb, ub) = key(b);
                ra.cmp(&rb).then(ua.total_cmp(&ub)).then(a.cmp(b))
            });
        let Some(user) = next else { break };
        let queue = queues.get_mut(user).expect("picked from the map");
        let events_used = plan
            .iter()
            .filter(|(task, a)| needs_event(ledger, task, a))
            .count();
        // The friend's first chunk that some free node can run, and that an
        // event can carry.
        let placed = queue.iter().enumerate().find_map(|(i, ready)| {
            let taken: Vec<&NodeId> =
                nodes_on_chunk(ledger, ready.task, ready.chunk, now, in_flight)
                    .chain(sent_to(&placed_now, &ready.task.id, ready.chunk))
                    .collect();
            let node = best_node(ledger, &loads, ready, &taken, now)?;
            let sent_anyway = plan
                .iter()
                .any(|(task, a)| task == &ready.task.id && needs_event(ledger, task, a));
            let fits = sent_anyway
                || !needs_event(ledger, &ready.task.id, &[assigned(ready, &node)])
                || events_used < events;
            fits.then_some((i, node))
        });
        let Some((index, node)) = placed else {
            queue.clear(); // Nothing of theirs fits any free node this round.
            continue;
        };
        let ready = queue.remove(index).expect("index came from this queue");
        loads
            .get_mut(&node)
            .expect("node came from loads")
            .take(ready.ms);
        *running.entry(user.clone()).or_default() += 1;
        placed_now.insert((ready.task.id.clone(), ready.chunk, node.clone()));
        let assignment = assigned(&ready, &node);
        match plan.iter_mut().find(|(task, _)| task == &ready.task.id) {
            Some((_, assignments)) => assignments.push(assignment),
            None => plan.push((ready.task.id.clone(), vec![assignment])),
        }
    }
    plan
}

fn assigned(ready: &ReadyChunk, node: &NodeId) -> Assignment {
    Assignment {
        chunk: ready.chunk,
        node: node.clone(),
        attempt: ready.attempt,
    }
}

/// Whether `task`'s `assignments` go out in an event: all but a plan the
/// coordinator gives itself to claim.
fn needs_event(ledger: &Ledger, task: &EventId, assignments: &[Assignment]) -> bool {
    let claimable = ledger
        .task(task)
        .is_some_and(|t| t.spec.claimed_by_coordinator());
    !claimable
        || assignments
            .iter()
            .any(|a| ledger.coordinator() != Some(&a.node))
}

/// The node that meets the chunk's requirements and has room for it, among
/// those not already on this chunk: one not on probation, then one with an
/// idle worker, then one whose workers hold the chunk's Whisper model (a
/// browser takes 1–2 s to load it), then the coordinator for a chunk it may
/// claim (that saves an assignment event) and another node for any other
/// chunk (the coordinator's result would spend the budget its assignments
/// need), then the one with the most idle
/// workers, then the shortest queue per worker. A replica goes
/// to another friend's machine where one has room: a majority of one
/// friend's tabs proves less.
fn best_node(
    ledger: &Ledger,
    loads: &SortedMap<NodeId, NodeLoad>,
    ready: &ReadyChunk,
    taken: &[&NodeId],
    now: u64,
) -> Option<NodeId> {
    let fresh_friend = |n: &NodeRecord| !taken.iter().any(|t| t.owner() == n.id.owner());
    // Queues compared per worker slot, without dividing: a/sa < b/sb.
    let shorter_queue = |a: &NodeLoad, b: &NodeLoad| {
        let per_slot = |l: &NodeLoad, other: &NodeLoad| {
            u128::from(l.queued_ms) * u128::from(other.slots.max(1))
        };
        per_slot(b, a).cmp(&per_slot(a, b))
    };
    // Nodes whose lease on this very chunk lapsed: another node gets it if
    // any can take it, so one silent node cannot burn all its attempts.
    let lapsed_here: Vec<&NodeId> = ready
        .task
        .chunks
        .get(ready.chunk as usize)
        .into_iter()
        .flat_map(|c| &c.leases)
        .filter(|l| l.soft_expired(now))
        .map(|l| &l.node)
        .collect();
    let candidates = || {
        loads
            .iter()
            .filter(|(id, load)| load.can_take(ready.ms) && !taken.contains(id))
            .filter_map(|(id, load)| ledger.node(id).map(|n| (n, load)))
            .filter(|(n, _)| ready.task.spec.runs_on(&n.caps))
    };
    let model = ready.task.spec.kind.whisper_model();
    let warm = |n: &NodeRecord| model.is_some_and(|m| ledger.holds_model(&n.id, m));
    let claims = ready.task.spec.claimed_by_coordinator();
    // The coordinator's account sends every assignment: a chunk it claims
    // saves one, and a chunk it is assigned costs its budget a result too.
    let spends_coordinator_least = |n: &NodeRecord| claims == (ledger.coordinator() == Some(&n.id));
    let best = |pool: &mut dyn Iterator<Item = (&NodeRecord, &NodeLoad)>| {
        pool.max_by(|(a, la), (b, lb)| {
            let key = |n: &NodeRecord, l: &NodeLoad| {
                let idle = l.idle_slots();
                (
                    !l.probation,
                    fresh_friend(n),
                    idle > 0,
                    warm(n),
                    spends_coordinator_least(n),
                    idle,
                )
            };
            key(a, la)
                .cmp(&key(b, lb))
                .then_with(|| shorter_queue(la, lb))
                .then(b.id.cmp(&a.id))
        })
        .map(|(n, _)| n.id.clone())
    };
    best(&mut candidates().filter(|(n, _)| !lapsed_here.contains(&&n.id)))
        .or_else(|| best(&mut candidates()))
}

/// Why a node is not running anything, in words a friend understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdleReason {
    /// The node is not (or no longer) announced in the room.
    NotContributing,
    /// Every slot has a chunk.
    AllSlotsBusy,
    /// Nothing is waiting.
    NoWork,
    /// Work is waiting, but it needs something this node lacks.
    MissingCapability { tasks: usize },
    /// Work this node could run is waiting for a retry back-off.
    BackingOff,
    /// Work this node could run is waiting for the coordinator's next round.
    WaitingForCoordinator,
    /// Work this node could run is going to nodes with more free slots, or to
    /// friends who got less so far.
    OthersFirst,
}

impl IdleReason {
    pub fn describe(&self) -> String {
        match self {
            Self::NotContributing => "not contributing".into(),
            Self::AllSlotsBusy => "all workers busy".into(),
            Self::NoWork => "no tasks waiting".into(),
            Self::MissingCapability { tasks } => {
                format!(
                    "{tasks} waiting task(s) need something this machine lacks (WebGPU or memory), run a script you declined or are work it does not take"
                )
            }
            Self::BackingOff => "waiting to retry chunks that failed".into(),
            Self::WaitingForCoordinator => "waiting for the coordinator to hand out work".into(),
            Self::OthersFirst => "other nodes have more free workers right now".into(),
        }
    }
}

/// Explains why `node` has a free slot and no work (or that it has none free).
pub fn explain_idle(ledger: &Ledger, node: &NodeId, now: u64) -> IdleReason {
    let Some(record) = ledger.node(node).filter(|n| n.online) else {
        return IdleReason::NotContributing;
    };
    if node_loads(ledger, now, &InFlight::new())
        .get(node)
        .is_none_or(|load| load.idle_slots() == 0)
    {
        return IdleReason::AllSlotsBusy;
    }
    let mut unmet = 0;
    let mut backing_off = false;
    let mut runnable = false;
    for task in ledger.tasks() {
        if ledger.task_status(task, now).is_terminal() {
            continue;
        }
        let waiting: Vec<ChunkStatus> = task
            .chunks
            .iter()
            .filter(|c| !c.leases.iter().any(|l| &l.node == node) && !c.answered_by(node))
            .map(|c| ledger.chunk_status(c, now))
            .filter(|s| matches!(s, ChunkStatus::Ready | ChunkStatus::BackingOff { .. }))
            .collect();
        if waiting.is_empty() {
            continue;
        }
        if !task.spec.runs_on(&record.caps) {
            unmet += 1;
        } else if waiting.contains(&ChunkStatus::Ready) {
            runnable = true;
        } else {
            backing_off = true;
        }
    }
    if runnable {
        let planned_here = plan(ledger, now, &InFlight::new())
            .iter()
            .any(|(_, assignments)| assignments.iter().any(|a| &a.node == node));
        return if planned_here {
            IdleReason::WaitingForCoordinator
        } else {
            IdleReason::OthersFirst
        };
    }
    if backing_off {
        return IdleReason::BackingOff;
    }
    if unmet > 0 {
        return IdleReason::MissingCapability { tasks: unmet };
    }
    IdleReason::NoWork
}

/// Chunks a node holds a live lease on, for "what is each node doing".
pub fn work_of(ledger: &Ledger, node: &NodeRecord, now: u64) -> Vec<(EventId, u32)> {
    let mut work = Vec::new();
    for task in ledger.tasks() {
        if matches!(ledger.task_status(task, now), TaskStatus::Cancelled { .. }) {
            continue;
        }
        for (index, chunk) in task.chunks.iter().enumerate() {
            if ledger
                .held_leases(chunk, now)
                .iter()
                .any(|l| l.node == node.id)
            {
                work.push((task.id.clone(), index as u32));
            }
        }
    }
    work
}
