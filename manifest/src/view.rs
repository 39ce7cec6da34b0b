//! What the widget shows, derived from the ledger: who contributes and what
//! each node is doing, every task with its progress, and why this node idles.

use crate::events::NodeCaps;
use crate::ids::{EventId, NodeId, UserId};
use crate::ledger::{Ledger, TaskStatus};
use crate::scheduler::{explain_idle, work_of};

#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub id: NodeId,
    pub owner: UserId,
    pub caps: NodeCaps,
    pub is_coordinator: bool,
    /// "chunk 2/4 of carol's task", one line per chunk it holds.
    pub doing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub id: EventId,
    pub submitter: UserId,
    pub description: String,
    pub status: TaskStatus,
    pub chunks_done: u32,
    pub chunks_total: u32,
    /// Which nodes' results were accepted, one per finished chunk.
    pub done_by: Vec<NodeId>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolView {
    pub nodes: Vec<NodeView>,
    /// Newest first.
    pub tasks: Vec<TaskView>,
    /// Why this node has nothing to do, when it contributes and idles.
    pub idle_reason: Option<String>,
}

impl PoolView {
    pub fn build(ledger: &Ledger, me: Option<&NodeId>, now: u64) -> Self {
        let coordinator = ledger.coordinator();
        let nodes = ledger
            .online_nodes()
            .map(|n| NodeView {
                id: n.id.clone(),
                owner: n.id.owner(),
                caps: n.caps.clone(),
                is_coordinator: coordinator == Some(&n.id),
                doing: work_of(ledger, n, now)
                    .into_iter()
                    .map(|(task, chunk)| {
                        let total = ledger.task(&task).map_or(0, |t| t.spec.chunks);
                        format!("chunk {}/{} of task {}", chunk + 1, total, task.short())
                    })
                    .collect(),
            })
            .collect();
        let mut tasks: Vec<TaskView> = ledger
            .tasks()
            .map(|t| TaskView {
                id: t.id.clone(),
                submitter: t.submitter.clone(),
                description: format!("{} in {} chunk(s)", t.spec.kind.describe(), t.spec.chunks),
                status: ledger.task_status(t, now),
                chunks_done: t.chunks.iter().filter(|c| c.done.is_some()).count() as u32,
                chunks_total: t.spec.chunks,
                done_by: t
                    .chunks
                    .iter()
                    .filter_map(|c| c.done.as_ref().map(|d| d.node.clone()))
                    .collect(),
            })
            .collect();
        tasks.sort_by_key(|t| std::cmp::Reverse(ledger.task(&t.id).map_or(0, |r| r.submitted_at)));
        let idle_reason = me.and_then(|node| {
            let busy = ledger
                .online_nodes()
                .any(|n| &n.id == node && !work_of(ledger, n, now).is_empty());
            (!busy).then(|| explain_idle(ledger, node, now).describe())
        });
        Self {
            nodes,
            tasks,
            idle_reason,
        }
    }
}
