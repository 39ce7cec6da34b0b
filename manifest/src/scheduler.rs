//! The coordinator's decisions: which ready chunk goes to which node, and, for
//! any node, why it is not getting work.
//!
//! Pure function of the ledger and `now`. Only the coordinator acts on a plan,
//! but every node can compute one, which is what lets a node explain itself.

use crate::events::Assignment;
use crate::ids::{EventId, NodeId, UserId};
use crate::ledger::{ChunkStatus, Ledger, NodeRecord, TaskRecord, TaskStatus};
use crate::limits::LEASES_PER_SLOT;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One replica of a chunk waiting for a node (a chunk that is not replicated
/// has one).
#[derive(Debug, Clone)]
struct ReadyChunk<'a> {
    task: &'a TaskRecord,
    chunk: u32,
    attempt: u32,
}

/// Assignments the coordinator sent and has not seen back yet: (task, chunk, node).
pub type InFlight = BTreeSet<(EventId, u32, NodeId)>;

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
    let voted = record
        .into_iter()
        .flat_map(|c| c.votes.iter().map(|v| &v.node));
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

/// Room for more leases per online node: `LEASES_PER_SLOT` per announced
/// slot, minus the live leases it holds and the assignments on their way to it.
pub fn free_slots(ledger: &Ledger, now: u64, in_flight: &InFlight) -> BTreeMap<NodeId, u32> {
    let mut busy: BTreeMap<&NodeId, u32> = BTreeMap::new();
    for (_, _, node) in in_flight {
        *busy.entry(node).or_default() += 1;
    }
    for task in ledger.tasks() {
        for chunk in &task.chunks {
            for lease in ledger.held_leases(chunk, now) {
                *busy.entry(&lease.node).or_default() += 1;
            }
        }
    }
    ledger
        .online_nodes()
        .map(|n| {
            let used = busy.get(&n.id).copied().unwrap_or(0);
            let capacity = n.caps.slots.saturating_mul(LEASES_PER_SLOT);
            (n.id.clone(), capacity.saturating_sub(used))
        })
        .collect()
}

/// Chunks ready to run per submitter, each queue in the submitter's own order
/// (priority, then submission order).
fn ready_by_submitter<'a>(
    ledger: &'a Ledger,
    now: u64,
    in_flight: &InFlight,
) -> BTreeMap<&'a UserId, VecDeque<ReadyChunk<'a>>> {
    let mut tasks: Vec<&TaskRecord> = ledger
        .tasks()
        .filter(|t| !ledger.task_status(t, now).is_terminal())
        .collect();
    tasks.sort_by_key(|t| (-i16::from(t.spec.priority), t.submitted_at, t.id.clone()));
    let mut queues: BTreeMap<&UserId, VecDeque<ReadyChunk>> = BTreeMap::new();
    for task in tasks {
        for (index, chunk) in task.chunks.iter().enumerate() {
            let index = index as u32;
            let sent = sent_to(in_flight, &task.id, index).count() as u32;
            let wanted = ledger.replicas_wanted(chunk, now).saturating_sub(sent);
            // Each replica gets an attempt number of its own.
            for replica in 1..=wanted {
                queues
                    .entry(&task.submitter)
                    .or_default()
                    .push_back(ReadyChunk {
                        task,
                        chunk: index,
                        attempt: chunk.attempts.saturating_add(sent + replica),
                    });
            }
        }
    }
    queues
}

/// Chunks currently leased per submitter: the first key of fairness.
pub fn running_by_submitter(ledger: &Ledger, now: u64) -> BTreeMap<UserId, u32> {
    let mut running = BTreeMap::new();
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

/// The assignments to make now, grouped by task (one event per task).
///
/// `in_flight` holds what the coordinator already assigned but has not seen
/// come back from the homeserver yet, so it neither assigns those chunks twice
/// nor fills the same slots again.
pub fn plan(ledger: &Ledger, now: u64, in_flight: &InFlight) -> Vec<(EventId, Vec<Assignment>)> {
    let mut free = free_slots(ledger, now, in_flight);
    let mut queues = ready_by_submitter(ledger, now, in_flight);
    let mut running = running_by_submitter(ledger, now);
    let mut plan: BTreeMap<EventId, Vec<Assignment>> = BTreeMap::new();
    // Replicas placed this round count as on their way.
    let mut placed_now = InFlight::new();

    while free.values().any(|&f| f > 0) {
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
        // The friend's first chunk that some free node can run.
        let placed = queue.iter().enumerate().find_map(|(i, ready)| {
            let taken: Vec<&NodeId> =
                nodes_on_chunk(ledger, ready.task, ready.chunk, now, in_flight)
                    .chain(sent_to(&placed_now, &ready.task.id, ready.chunk))
                    .collect();
            best_node(ledger, &free, ready, &taken).map(|node| (i, node))
        });
        let Some((index, node)) = placed else {
            queue.clear(); // Nothing of theirs fits any free node this round.
            continue;
        };
        let ready = queue.remove(index).expect("index came from this queue");
        *free.get_mut(&node).expect("node came from free") -= 1;
        *running.entry(user.clone()).or_default() += 1;
        placed_now.insert((ready.task.id.clone(), ready.chunk, node.clone()));
        plan.entry(ready.task.id.clone())
            .or_default()
            .push(Assignment {
                chunk: ready.chunk,
                node,
                attempt: ready.attempt,
            });
    }
    plan.into_iter().collect()
}

/// The free node that meets the chunk's requirements with the most free
/// slots, among those not already on this chunk. A replica goes to another
/// friend's machine where one is free: a majority of one friend's tabs proves less.
fn best_node(
    ledger: &Ledger,
    free: &BTreeMap<NodeId, u32>,
    ready: &ReadyChunk,
    taken: &[&NodeId],
) -> Option<NodeId> {
    let fresh_friend = |n: &NodeRecord| !taken.iter().any(|t| t.owner() == n.id.owner());
    free.iter()
        .filter(|(id, &slots)| slots > 0 && !taken.contains(id))
        .filter_map(|(id, &slots)| ledger.node(id).map(|n| (n, slots)))
        .filter(|(n, _)| ready.task.spec.runs_on(&n.caps))
        .max_by(|(a, sa), (b, sb)| {
            (fresh_friend(a), sa)
                .cmp(&(fresh_friend(b), sb))
                .then(b.id.cmp(&a.id))
        })
        .map(|(n, _)| n.id.clone())
}

/// Why a node is not running anything, in words a friend understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdleReason {
    /// The node is not (or no longer) announced in the room.
    NotContributing,
    /// Every slot has a chunk, and its queue is full.
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
                    "{tasks} waiting task(s) need something this machine lacks (WebGPU or memory) or run a script you declined"
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
    if free_slots(ledger, now, &InFlight::new())
        .get(node)
        .copied()
        .unwrap_or(0)
        == 0
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
            .filter(|c| {
                !c.leases.iter().any(|l| &l.node == node)
                    && !c.votes.iter().any(|v| &v.node == node)
            })
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
