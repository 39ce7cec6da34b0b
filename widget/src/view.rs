//! What the widget shows, derived from the ledger, in words a friend reads:
//! who contributes and what each machine is doing, every task the room asked
//! for (a transcription's internal parts folded into it) with its progress,
//! and why this machine idles. It never shows an event id: tasks are named by
//! what they do.

use crate::words::{self, count, large, number, plural};
use manifest::events::NodeCaps;
use manifest::ids::{EventId, NodeId, UserId};
use manifest::ledger::{Ledger, NodeRecord, TaskRecord, TaskStatus};
use manifest::private::PrivateOutputs;
use manifest::scheduler::{explain_idle, node_loads, work_of, IdleReason, InFlight};
use manifest::sort;
use manifest::sorted_map::SortedMap;
use manifest::task_kind::TaskKind;
use manifest::voice::VoiceMessage;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub id: NodeId,
    pub owner: UserId,
    pub caps: NodeCaps,
    pub is_coordinator: bool,
    /// "2 of 4 cores · WebGPU".
    pub machine: String,
    /// One line per task it has pieces of: "Transcribing carol's voice
    /// message — 40%", "Counting primes — 2 of 4 pieces"; empty when idle.
    pub doing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub id: EventId,
    pub submitter: UserId,
    /// What it does: "Count primes below 50 million".
    pub title: String,
    /// The numbers a prime count covers, `[start, end)`.
    pub range: Option<(u64, u64)>,
    pub submitted_at: u64,
    /// "12 s ago", as of the view's `now`.
    pub submitted_ago: String,
    pub status: TaskStatus,
    /// Why it waits, while it is queued: "nobody is contributing right now".
    pub waiting: Option<String>,
    /// Its internal parts' chunks count as its own (a transcription's spans).
    pub folded: bool,
    /// Chunks done and in all, its parts' chunks included.
    pub chunks_done: u32,
    pub chunks_total: u32,
    /// Fraction done, counting what running chunks last reported.
    pub progress: f32,
    /// Which nodes' results were accepted, one per finished chunk (its own
    /// chunks in order, then its parts').
    pub done_by: Vec<NodeId>,
    /// Pieces each friend's machines ran, most first: who did the work.
    pub by_friend: Vec<(UserId, u32)>,
    /// Friends whose machines answered a replicated chunk differently from
    /// the majority, or failed it: outvoted, and shown.
    pub outvoted: Vec<UserId>,
    /// Finished chunks that are image tiles (`{"x", "y", "size", "pixels"}`),
    /// shown as they arrive, each with the friend whose machine computed it.
    pub tiles: Vec<Tile>,
}

/// How a task's state reads, and the one-word class the page and the tests key on.
impl TaskView {
    pub fn status_class(&self) -> &'static str {
        match self.status {
            TaskStatus::Queued => "queued",
            TaskStatus::Running { .. } => "running",
            TaskStatus::Done { .. } => "done",
            TaskStatus::Failed { .. } => "failed",
            TaskStatus::Cancelled { .. } => "cancelled",
        }
    }

    /// "Waiting for a free machine: …", "Running: 3 of 4 pieces",
    /// "Done: 21,336,326 primes", "Failed: …", "Cancelled".
    pub fn status_words(&self) -> String {
        match &self.status {
            TaskStatus::Queued => match &self.waiting {
                Some(why) => format!("Waiting for a free machine: {why}"),
                None => "Waiting for a free machine".into(),
            },
            TaskStatus::Running { done, total } => format!(
                "Running: {} of {} {}",
                number(u64::from(*done)),
                number(u64::from(*total)),
                plural(u64::from(*total), "piece", "pieces")
            ),
            TaskStatus::Done { result } => match done_words(result, &self.submitter) {
                Some(what) => format!("Done: {what}"),
                None => "Done".into(),
            },
            TaskStatus::Failed { reason } => {
                format!("Failed: {}", failure_words(reason, self.folded))
            }
            TaskStatus::Cancelled { reason: Some(why) } => format!("Cancelled: {why}"),
            TaskStatus::Cancelled { reason: None } => "Cancelled".into(),
        }
    }
}

/// What a finished task's result is, in a few words, where it has a shape
/// the widget knows.
fn done_words(result: &Value, submitter: &UserId) -> Option<String> {
    let whole = |key: &str| result.get(key).and_then(Value::as_u64);
    if let Some(primes) = whole("count") {
        return Some(count(primes, "prime", "primes"));
    }
    if let Some(outputs) = result.get("outputs").and_then(Value::as_array) {
        return Some(count(outputs.len() as u64, "result", "results"));
    }
    if let Some(waiting) = whole("waiting") {
        return Some(format!(
            "{} still on {} way to you",
            count(waiting, "private result", "private results"),
            plural(waiting, "its", "their")
        ));
    }
    if result.get("private").is_some() {
        return Some(format!("only {} sees the result", submitter.localpart()));
    }
    if let Some(text) = result.get("text").and_then(Value::as_str) {
        let spoken = text.split_whitespace().count() as u64;
        return Some(format!(
            "a transcript of {}",
            count(spoken, "word", "words")
        ));
    }
    None
}

/// The ledger's reason, without the inner workings a friend does not need:
/// which internal part of a transcription failed says nothing to them, and
/// a chunk is a "piece" everywhere else on screen.
fn failure_words(reason: &str, folded: bool) -> String {
    let mut rest = reason;
    let mut pieces = Vec::new();
    while let Some((piece, tail)) = rest
        .split_once(": ")
        .and_then(|(head, tail)| Some((inner_part(head)?, tail)))
    {
        pieces.push(piece);
        rest = tail;
    }
    match pieces[..] {
        [(n, of)] if !folded && of > 1 => format!("piece {n} of {of}: {rest}"),
        _ => rest.to_owned(),
    }
}

/// "chunk 2 of 4" or "part 1 of 3" as (2, 4) or (1, 3).
fn inner_part(words: &str) -> Option<(u64, u64)> {
    let (what, numbers) = words.split_once(' ')?;
    let (n, of) = numbers.split_once(" of ")?;
    matches!(what, "chunk" | "part").then_some(())?;
    Some((n.parse().ok()?, of.parse().ok()?))
}

/// One square tile of a picture a task renders, as a chunk's output carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tile {
    pub x: u32,
    pub y: u32,
    pub size: u32,
    /// `size × size` grey levels, row by row, base64.
    pub pixels: String,
    pub by: UserId,
}

impl Tile {
    fn from_output(output: &serde_json::Value, by: &NodeId) -> Option<Self> {
        let number = |key: &str| {
            output
                .get(key)?
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
        };
        Some(Self {
            x: number("x")?,
            y: number("y")?,
            size: number("size").filter(|s| (1..=256).contains(s))?,
            pixels: output.get("pixels")?.as_str()?.to_owned(),
            by: by.owner(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolView {
    pub nodes: Vec<NodeView>,
    /// Newest first; a task's internal parts are folded into it.
    pub tasks: Vec<TaskView>,
    /// Why this friend's machine has nothing to run, in a clause that
    /// follows "Ready, nothing to run: " ("no task is waiting"); `Some`
    /// whenever they contribute.
    pub idle_reason: Option<String>,
    /// What each task (and each part) has a machine do: "Counting primes".
    pub doing_words: SortedMap<EventId, String>,
}

/// Who can run work now: the machines contributing and their workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capacity {
    pub machines: u32,
    pub workers: u32,
}

impl Capacity {
    /// "about 40 min on the pool's 3 machines", for `ms` of one worker's
    /// work in `pieces` that can run side by side.
    pub fn estimate(self, ms: u64, pieces: u32) -> String {
        let side_by_side = u64::from(self.workers.min(pieces).max(1));
        let took = words::roughly(ms / side_by_side);
        match self.machines {
            0 => format!("{took} on one worker, once a friend contributes"),
            1 => format!("{took} on the one contributing machine"),
            n => format!("{took} on the pool's {n} machines"),
        }
    }
}

impl PoolView {
    /// The machines contributing now and the workers they give.
    pub fn capacity(&self) -> Capacity {
        Capacity {
            machines: self.nodes.len() as u32,
            workers: self.nodes.iter().map(|n| n.caps.slots).sum(),
        }
    }

    /// A chunk running in this browser, in words: "Counting primes — 40%".
    pub fn job_words(&self, task: &EventId, fraction: f32) -> String {
        let doing = self
            .doing_words
            .get(task)
            .map_or("Running a piece of a task", String::as_str);
        if fraction > 0.0 {
            format!("{doing} — {}", words::percent(fraction))
        } else {
            doing.to_owned()
        }
    }
}

/// The voice messages the widget knows, by event id, to name transcriptions.
type Voices<'a> = SortedMap<&'a EventId, &'a VoiceMessage>;

impl PoolView {
    pub fn build<'a>(
        ledger: &Ledger,
        me: Option<&NodeId>,
        voices: impl IntoIterator<Item = &'a VoiceMessage>,
        now: u64,
    ) -> Self {
        let voices: Voices = voices.into_iter().map(|v| (&v.event_id, v)).collect();
        let coordinator = ledger.coordinator();
        let doing_words: SortedMap<EventId, String> = ledger
            .tasks()
            .map(|t| (t.id.clone(), doing(ledger, t, &voices)))
            .collect();
        let nodes = ledger
            .online_nodes()
            .map(|n| NodeView {
                id: n.id.clone(),
                owner: n.id.owner(),
                caps: n.caps.clone(),
                is_coordinator: coordinator == Some(&n.id),
                machine: machine_words(&n.caps),
                doing: node_doing(ledger, n, &doing_words, now),
            })
            .collect();
        let mut tasks: Vec<TaskView> = ledger
            .tasks()
            .filter(|t| parent_of(ledger, t).is_none())
            .map(|t| task_view(ledger, t, &voices, now))
            .collect();
        sort::sort_by_key(&mut tasks, |t| std::cmp::Reverse(t.submitted_at));
        let idle_reason = me.map(|node| idle_words(ledger, node, now));
        Self {
            nodes,
            tasks,
            idle_reason,
            doing_words,
        }
    }
}

/// A friend's machine as the pool shows it: "2 of 4 cores · WebGPU", and
/// "· no scripts" for one that takes no friends' scripts (a node outside a
/// browser).
fn machine_words(caps: &NodeCaps) -> String {
    let cores = if caps.slots >= caps.cores {
        count(u64::from(caps.cores), "core", "cores")
    } else {
        format!(
            "{} of {}",
            number(u64::from(caps.slots)),
            count(u64::from(caps.cores), "core", "cores")
        )
    };
    let mut words = cores;
    if caps.webgpu {
        words.push_str(" · WebGPU");
    }
    if !caps.takes("script") {
        words.push_str(" · no scripts");
    }
    words
}

/// What a task has a machine do, in a few words: "Counting primes",
/// "Transcribing carol's voice message". A part says what its task does.
fn doing(ledger: &Ledger, task: &TaskRecord, voices: &Voices) -> String {
    let task = parent_of(ledger, task).unwrap_or(task);
    match &task.spec.kind {
        TaskKind::Primes { .. } => "Counting primes".into(),
        TaskKind::Script(script) => match ledger.allowlist().allows(script) {
            Ok(allowed) => format!("Running {}", allowed.name),
            Err(_) => "Running a script".into(),
        },
        TaskKind::Transcribe(transcription) => {
            let message = voices.get(&transcription.audio.message).copied();
            match message {
                Some(message) => format!(
                    "Transcribing {}'s {}",
                    message.sender.localpart(),
                    if message.voice {
                        "voice message"
                    } else {
                        "recording"
                    }
                ),
                None => "Transcribing a voice message".into(),
            }
        }
        TaskKind::Kernel(_) => format!("Rendering {} on the GPU", kernel_name(ledger, task)),
    }
}

/// What a machine is doing now, one line per task it has pieces of (a
/// task's parts count as the task): "Counting primes — 2 of 4 pieces",
/// "Transcribing carol's voice message — 40%".
fn node_doing(
    ledger: &Ledger,
    node: &NodeRecord,
    doing_words: &SortedMap<EventId, String>,
    now: u64,
) -> Vec<String> {
    // (task, pieces of it held here, the progress of the last one)
    let mut held: Vec<(&TaskRecord, u32, f32)> = Vec::new();
    for (id, chunk) in work_of(ledger, node, now) {
        let Some(record) = ledger.task(&id) else {
            continue;
        };
        let progress = record
            .chunks
            .get(chunk as usize)
            .and_then(|c| c.leases.iter().find(|l| l.node == node.id))
            .map_or(0.0, |l| l.progress);
        let root = parent_of(ledger, record).unwrap_or(record);
        match held.iter_mut().find(|(task, ..)| task.id == root.id) {
            Some((_, pieces, last)) => {
                *pieces += 1;
                *last = progress;
            }
            None => held.push((root, 1, progress)),
        }
    }
    held.into_iter()
        .map(|(task, pieces, progress)| {
            let what = doing_words
                .get(&task.id)
                .map_or("Running a piece of a task", String::as_str);
            let total: u64 = family(ledger, task).map(|t| t.chunks.len() as u64).sum();
            if pieces > 1 {
                format!(
                    "{what} — {} of {} {}",
                    number(u64::from(pieces)),
                    number(total),
                    plural(total, "piece", "pieces")
                )
            } else if progress > 0.0 {
                format!("{what} — {}", words::percent(progress))
            } else {
                what.to_owned()
            }
        })
        .collect()
}

/// Why this friend's machine has nothing to run, as a clause that follows
/// "Ready, nothing to run: ".
fn idle_words(ledger: &Ledger, node: &NodeId, now: u64) -> String {
    let record = ledger.online_nodes().find(|n| &n.id == node);
    if record.is_some_and(|n| !work_of(ledger, n, now).is_empty()) {
        // The room still counts pieces it finished or stopped here.
        return "the room has not yet heard back about your last piece".into();
    }
    match explain_idle(ledger, node, now) {
        IdleReason::NotContributing => "telling the room your machine is here".into(),
        IdleReason::AllSlotsBusy => "all your workers are busy".into(),
        IdleReason::NoWork => "no task is waiting".into(),
        IdleReason::MissingCapability { tasks } => format!(
            "{} {} WebGPU or more memory than this machine has, or {} a script you declined",
            count(tasks as u64, "waiting task", "waiting tasks"),
            plural(tasks as u64, "needs", "need"),
            plural(tasks as u64, "runs", "run"),
        ),
        IdleReason::BackingOff => "pieces that failed are tried again in a moment".into(),
        IdleReason::WaitingForCoordinator => "the coordinator is handing you a piece".into(),
        IdleReason::OthersFirst => {
            "machines with more free workers, or friends who got less so far, go first".into()
        }
    }
}

/// The task `task` is an internal part of, if the ledger knows it: then it
/// has no row of its own.
fn parent_of<'a>(ledger: &'a Ledger, task: &TaskRecord) -> Option<&'a TaskRecord> {
    task.spec.parent.as_ref().and_then(|p| ledger.task(p))
}

/// A task and its parts, in order.
fn family<'a>(ledger: &'a Ledger, task: &'a TaskRecord) -> impl Iterator<Item = &'a TaskRecord> {
    std::iter::once(task).chain(task.children.iter().filter_map(|c| ledger.task(c)))
}

fn task_view(ledger: &Ledger, t: &TaskRecord, voices: &Voices, now: u64) -> TaskView {
    let status = ledger.task_status(t, now);
    let parts: Vec<&TaskRecord> = family(ledger, t).collect();
    let all_chunks = || parts.iter().flat_map(|p| p.chunks.iter());
    let total = all_chunks().count() as u32;
    let (chunks_done, chunks_total) = match status {
        TaskStatus::Running { done, total } => (done, total),
        TaskStatus::Done { .. } => (total, total),
        _ => (
            all_chunks().filter(|c| c.done().is_some()).count() as u32,
            total,
        ),
    };
    let waiting = matches!(status, TaskStatus::Queued).then(|| why_waiting(ledger, t, now));
    let done_by: Vec<NodeId> = all_chunks()
        .filter_map(|c| c.done().map(|d| d.node.clone()))
        .collect();
    TaskView {
        id: t.id.clone(),
        submitter: t.submitter.clone(),
        title: title(ledger, t, voices),
        range: match t.spec.kind {
            TaskKind::Primes { start, end } => Some((start, end)),
            _ => None,
        },
        submitted_at: t.submitted_at,
        submitted_ago: words::ago(now.saturating_sub(t.submitted_at)),
        progress: progress(ledger, &parts, chunks_done, chunks_total, now),
        waiting,
        folded: parts.len() > 1,
        status,
        chunks_done,
        chunks_total,
        by_friend: by_friend(&done_by),
        done_by,
        outvoted: {
            let mut users: Vec<UserId> = all_chunks()
                .filter_map(|c| c.done())
                .flat_map(|d| d.dissent.iter().map(NodeId::owner))
                .collect();
            sort::sort(&mut users);
            users.dedup();
            users
        },
        tiles: t
            .chunks
            .iter()
            .filter_map(|c| c.done())
            .filter_map(|d| Tile::from_output(&d.output, &d.node))
            .collect(),
    }
}

/// Pieces per friend, most first (then by name, so the order holds still).
fn by_friend(done_by: &[NodeId]) -> Vec<(UserId, u32)> {
    let mut pieces: SortedMap<UserId, u32> = SortedMap::new();
    for node in done_by {
        *pieces.entry(node.owner()).or_default() += 1;
    }
    let mut friends: Vec<(UserId, u32)> = pieces.into_iter().collect();
    sort::sort_by(&mut friends, |a, b| {
        b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0))
    });
    friends
}

/// What a task does, as its row's title.
fn title(ledger: &Ledger, task: &TaskRecord, voices: &Voices) -> String {
    let what = match &task.spec.kind {
        TaskKind::Primes { start, end } => primes_title(*start, *end),
        // A script is best known by the name the room's allowlist gives it.
        TaskKind::Script(script) => match ledger.allowlist().allows(script) {
            Ok(allowed) => format!("Run {}", allowed.name),
            Err(_) => task.spec.kind.describe(),
        },
        TaskKind::Transcribe(transcription) => {
            let of = recording(voices.get(&transcription.audio.message).copied());
            if transcription.is_plan() {
                format!("Transcript of {of}")
            } else {
                format!("Transcript of part of {of}")
            }
        }
        TaskKind::Kernel(_) => format!("{} on friends' GPUs", kernel_name(ledger, task)),
    };
    if task.spec.replication > 1 {
        let machines = count(u64::from(task.spec.replication), "machine", "machines");
        format!("{what}, each piece on {machines}")
    } else {
        what
    }
}

/// "Count primes below 50 million", "Count primes from 2,700,000,000 to
/// 3,000,000,000": both ends in words, or both in digits.
fn primes_title(start: u64, end: u64) -> String {
    if start <= 2 {
        return format!("Count primes below {}", large(end));
    }
    if words::reads_in_words(start) && words::reads_in_words(end) {
        format!("Count primes from {} to {}", large(start), large(end))
    } else {
        format!("Count primes from {} to {}", number(start), number(end))
    }
}

/// "carol's voice message, 0:07", or "a voice message" when the widget has
/// not seen it (sent before the loaded timeline).
fn recording(message: Option<&VoiceMessage>) -> String {
    let Some(message) = message else {
        return "a voice message".into();
    };
    let kind = if message.voice {
        "voice message"
    } else {
        "recording"
    };
    let name = message.sender.localpart();
    match message.duration_ms {
        Some(ms) => format!("{name}'s {kind}, {}", words::duration(ms)),
        None => format!("{name}'s {kind}"),
    }
}

/// A kernel's name from the allowlist, as a title: "mandelbrot-gpu" reads
/// "Mandelbrot".
fn kernel_name(ledger: &Ledger, task: &TaskRecord) -> String {
    let TaskKind::Kernel(kernel) = &task.spec.kind else {
        return "A WebGPU kernel".into();
    };
    let integrity = kernel.integrity();
    let Some(allowed) = ledger
        .allowlist()
        .kernels
        .iter()
        .find(|k| k.integrity == integrity)
    else {
        return "A WebGPU kernel".into();
    };
    let name = allowed.name.trim_end_matches("-gpu").replace('-', " ");
    let mut letters = name.chars();
    match letters.next() {
        Some(first) => first.to_uppercase().chain(letters).collect(),
        None => "A WebGPU kernel".into(),
    }
}

/// Why a queued task waits, in words that say what would change it.
fn why_waiting(ledger: &Ledger, task: &TaskRecord, now: u64) -> String {
    let online: Vec<&NodeRecord> = ledger.online_nodes().collect();
    if online.is_empty() {
        return "nobody is contributing right now".into();
    }
    let able: Vec<&NodeRecord> = online
        .iter()
        .copied()
        .filter(|n| task.spec.runs_on(&n.caps))
        .collect();
    if able.is_empty() {
        if !online.iter().any(|n| n.caps.takes(task.spec.kind.name())) {
            return match &task.spec.kind {
                TaskKind::Script(_) => "the contributing machines run no friends' scripts".into(),
                _ => "no contributing machine takes this kind of work".into(),
            };
        }
        return match &task.spec.kind {
            TaskKind::Script(script)
                if online
                    .iter()
                    .any(|n| n.caps.declined.contains(&script.integrity)) =>
            {
                "the contributing friends who could run it declined this script".into()
            }
            TaskKind::Kernel(_) => "it needs WebGPU, which no contributing machine has".into(),
            _ if task.spec.requirements.webgpu => {
                "it needs WebGPU, which no contributing machine has".into()
            }
            _ => "it needs more memory than any contributing machine has".into(),
        };
    }
    let loads = node_loads(ledger, now, &InFlight::new());
    let free = able
        .iter()
        .any(|n| loads.get(&n.id).is_some_and(|l| l.leases < l.slots));
    if free {
        return "it is handed out in a moment".into();
    }
    let workers: u64 = able.iter().map(|n| u64::from(n.caps.slots)).sum();
    match workers {
        1 => "the only worker is busy".into(),
        n => format!("all {} are busy", count(n, "worker", "workers")),
    }
}

/// Done chunks, plus what the running ones of this task and its parts
/// reported, over all chunks.
fn progress(ledger: &Ledger, parts: &[&TaskRecord], done: u32, total: u32, now: u64) -> f32 {
    if total == 0 {
        return 0.0;
    }
    let running: f32 = parts
        .iter()
        .flat_map(|t| t.chunks.iter())
        .map(|c| {
            ledger
                .held_leases(c, now)
                .iter()
                .map(|l| l.progress)
                .fold(0.0, f32::max)
        })
        .sum();
    ((done as f32 + running) / total as f32).min(1.0)
}

/// Where a voice message's transcript stands.
#[derive(Debug, Clone, PartialEq)]
pub enum VoiceState {
    NotTranscribed,
    Queued,
    Running { fraction: f32 },
    Done { text: String },
    Failed { reason: String },
}

/// One row of the voice message list.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceRow {
    pub message: VoiceMessage,
    pub state: VoiceState,
    /// The latest transcription asked for this message.
    pub task: Option<EventId>,
}

/// The room's audio messages, newest first, each with its latest
/// transcription's state (a failed one can be asked for again).
pub fn voice_rows<'a>(
    ledger: &Ledger,
    messages: impl Iterator<Item = &'a VoiceMessage>,
    now: u64,
) -> Vec<VoiceRow> {
    // Collected, so that later tasks replace earlier ones for the same message.
    let latest: SortedMap<&EventId, &TaskRecord> = ledger
        .tasks()
        .filter_map(|task| match &task.spec.kind {
            TaskKind::Transcribe(t) if t.is_plan() && task.spec.parent.is_none() => {
                Some((&t.audio.message, task))
            }
            _ => None,
        })
        .collect();
    let mut rows: Vec<VoiceRow> = messages
        .map(|message| {
            let task = latest.get(&message.event_id);
            let state = match task.map(|t| ledger.task_status(t, now)) {
                None | Some(TaskStatus::Cancelled { .. }) => VoiceState::NotTranscribed,
                Some(TaskStatus::Queued) => VoiceState::Queued,
                Some(TaskStatus::Running { done, total }) => VoiceState::Running {
                    fraction: done as f32 / total.max(1) as f32,
                },
                Some(TaskStatus::Done { result }) => VoiceState::Done {
                    text: result
                        .get("text")
                        .and_then(|t| t.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                },
                Some(TaskStatus::Failed { reason }) => VoiceState::Failed {
                    reason: failure_words(&reason, true),
                },
            };
            VoiceRow {
                message: message.clone(),
                state,
                task: task.map(|t| t.id.clone()),
            }
        })
        .collect();
    sort::sort_by_key(&mut rows, |row| std::cmp::Reverse(row.message.sent_at));
    rows
}

/// Shows `me` the results only they received: each of their private tasks
/// that the room says is done gets what `PrivateOutputs` holds for it.
pub fn reveal_private(
    outputs: &PrivateOutputs,
    tasks: &mut [TaskView],
    ledger: &Ledger,
    me: &UserId,
) {
    for view in tasks.iter_mut().filter(|t| &t.submitter == me) {
        if let TaskStatus::Done { result } = &mut view.status {
            if let Some(shown) = outputs.shown_result(ledger, &view.id) {
                *result = shown;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_ledger::{answer, assign, delivered, delivered_as, id, node, pool, submit};
    use manifest::events::{Outgoing, TaskSpec};
    use manifest::ids::MxcUri;
    use manifest::transcription::{AudioRef, WhisperModel};
    use serde_json::json;

    fn audio(message: &str) -> AudioRef {
        AudioRef {
            message: EventId::parse(message).unwrap(),
            url: Some(MxcUri::parse("mxc://hs/voice").unwrap()),
            file: None,
            mimetype: Some("audio/ogg".into()),
            size: Some(1000),
        }
    }

    fn voice_message(id: &str, sent_at: u64) -> VoiceMessage {
        VoiceMessage {
            event_id: EventId::parse(id).unwrap(),
            sender: UserId::parse("@carol:hs").unwrap(),
            sent_at,
            body: "Voice message".into(),
            duration_ms: Some(5000),
            voice: true,
            size: Some(1000),
            audio: audio(id),
        }
    }

    #[test]
    fn prime_counts_are_named_by_their_range_in_words_or_digits() {
        assert_eq!(primes_title(0, 50_000_000), "Count primes below 50 million");
        assert_eq!(
            primes_title(2_700_000_000, 3_000_000_000),
            "Count primes from 2,700,000,000 to 3,000,000,000"
        );
        assert_eq!(
            primes_title(1_000_000_000, 3_000_000_000),
            "Count primes from 1 billion to 3 billion"
        );
        assert_eq!(primes_title(2, 1_000), "Count primes below 1,000");
    }

    #[test]
    fn a_task_no_contributing_machine_takes_says_so() {
        let mut ledger = Ledger::new();
        let native = NodeCaps {
            runs: Some(vec!["transcribe".into()]),
            ..crate::test_ledger::caps(1)
        };
        let online = Outgoing::node_online(&node("@alice:hs"), &native);
        ledger
            .ingest(&delivered_as("$on", "@alice:hs", &online, 1_000))
            .unwrap();
        let spec = TaskSpec::new(TaskKind::Primes { start: 0, end: 9 }, 1);
        submit(&mut ledger, "$primes", &spec, 2_000);
        let view = PoolView::build(&ledger, None, [], 3_000);
        assert_eq!(
            view.tasks[0].status_words(),
            "Waiting for a free machine: no contributing machine takes this kind of work"
        );
    }

    #[test]
    fn a_prime_count_reads_from_waiting_to_done_in_words() {
        let mut ledger = Ledger::new();
        let spec = TaskSpec::new(
            TaskKind::Primes {
                start: 0,
                end: 50_000_000,
            },
            2,
        );
        submit(&mut ledger, "$primes", &spec, 2_000);
        let view = PoolView::build(&ledger, None, [], 14_500);
        let [task] = &view.tasks[..] else {
            panic!("one task")
        };
        assert_eq!(task.title, "Count primes below 50 million");
        assert_eq!(task.submitted_ago, "12 s ago");
        assert_eq!(task.range, Some((0, 50_000_000)));
        assert_eq!(
            task.status_words(),
            "Waiting for a free machine: nobody is contributing right now"
        );

        let mut ledger = pool();
        submit(&mut ledger, "$primes", &spec, 2_000);
        assign(&mut ledger, "$a0", "$primes", 0, "@alice:hs", 2_100);
        assign(&mut ledger, "$a1", "$primes", 1, "@bob:hs", 2_100);
        answer(
            &mut ledger,
            "$r0",
            "$primes",
            0,
            "@alice:hs",
            json!({"count": 1_664_579}),
            3_000,
        );
        let view = PoolView::build(&ledger, None, [], 3_500);
        assert_eq!(view.tasks[0].status_words(), "Running: 1 of 2 pieces");
        answer(
            &mut ledger,
            "$r1",
            "$primes",
            1,
            "@bob:hs",
            json!({"count": 1_336_326}),
            3_100,
        );
        let view = PoolView::build(&ledger, None, [], 3_500);
        assert_eq!(view.tasks[0].status_words(), "Done: 3,000,905 primes");
        assert_eq!(view.tasks[0].status_class(), "done");
    }

    #[test]
    fn a_task_waits_with_the_reason_it_waits() {
        let mut ledger = pool();
        let spec = TaskSpec::new(
            TaskKind::Primes {
                start: 0,
                end: 1_000,
            },
            2,
        );
        submit(&mut ledger, "$busy", &spec, 2_000);
        assign(&mut ledger, "$a0", "$busy", 0, "@alice:hs", 2_100);
        assign(&mut ledger, "$a1", "$busy", 1, "@bob:hs", 2_100);
        submit(&mut ledger, "$next", &spec, 2_200);
        let view = PoolView::build(&ledger, None, [], 2_500);
        let next = view.tasks.iter().find(|t| t.id == id("$next")).unwrap();
        assert_eq!(
            next.status_words(),
            "Waiting for a free machine: all 2 workers are busy"
        );

        // Cancelled, the first task frees the workers at once.
        let cancel = Outgoing::cancel(&id("$busy"), None);
        ledger
            .ingest(&delivered_as("$stop", "@carol:hs", &cancel, 2_300))
            .unwrap();
        let view = PoolView::build(&ledger, None, [], 2_500);
        let next = view.tasks.iter().find(|t| t.id == id("$next")).unwrap();
        assert_eq!(
            next.status_words(),
            "Waiting for a free machine: it is handed out in a moment"
        );
        let busy = view.tasks.iter().find(|t| t.id == id("$busy")).unwrap();
        assert_eq!(busy.status_words(), "Cancelled");
    }

    #[test]
    fn a_transcription_is_one_row_named_after_the_message_with_its_parts_folded_in() {
        let mut ledger = pool();
        let spec = TaskSpec::transcription(audio("$voice"), WhisperModel::TinyEn);
        submit(&mut ledger, "$plan", &spec, 2_000);
        assign(&mut ledger, "$a", "$plan", 0, "@alice:hs", 2_100);
        let plan = json!({"duration_ms": 5_000, "cuts": [0, 2_500, 5_000]});
        let part = spec.part_after(&id("$plan"), &plan).unwrap();
        ledger
            .ingest(&delivered_as(
                "$spans",
                "@alice:hs",
                &Outgoing::task(&part),
                2_400,
            ))
            .unwrap();
        answer(&mut ledger, "$r", "$plan", 0, "@alice:hs", plan, 2_500);
        assign(&mut ledger, "$b0", "$spans", 0, "@alice:hs", 2_600);
        assign(&mut ledger, "$b1", "$spans", 1, "@bob:hs", 2_600);
        let segment =
            |text: &str| json!({"segments": [{"start_ms": 0, "end_ms": 2_000, "text": text}]});
        answer(
            &mut ledger,
            "$s0",
            "$spans",
            0,
            "@alice:hs",
            segment("Hello there"),
            3_000,
        );

        let voices = [voice_message("$voice", 1_000)];
        let view = PoolView::build(&ledger, None, voices.iter(), 3_500);
        let [task] = &view.tasks[..] else {
            panic!("the part has no row of its own: {:?}", view.tasks)
        };
        assert_eq!(task.title, "Transcript of carol's voice message, 0:05");
        assert_eq!(task.status_words(), "Running: 2 of 3 pieces");
        assert!(task.folded);

        answer(
            &mut ledger,
            "$s1",
            "$spans",
            1,
            "@bob:hs",
            segment("general Kenobi"),
            3_200,
        );
        let view = PoolView::build(&ledger, None, voices.iter(), 3_500);
        let task = &view.tasks[0];
        assert_eq!(task.status_words(), "Done: a transcript of 4 words");
        let by: Vec<String> = task
            .done_by
            .iter()
            .map(|n| n.owner().localpart().to_owned())
            .collect();
        assert_eq!(by, ["alice", "alice", "bob"], "the parts' pieces count");
        let friends: Vec<(&str, u32)> = task
            .by_friend
            .iter()
            .map(|(u, n)| (u.localpart(), *n))
            .collect();
        assert_eq!(friends, [("alice", 2), ("bob", 1)]);

        // Unknown to this widget (sent before its timeline), it is still named.
        let view = PoolView::build(&ledger, None, [], 3_500);
        assert_eq!(view.tasks[0].title, "Transcript of a voice message");
    }

    #[test]
    fn a_machine_says_its_cores_its_gpu_and_that_it_takes_no_scripts() {
        let browser = NodeCaps {
            cores: 4,
            slots: 4,
            memory_mb: None,
            webgpu: true,
            models: vec![],
            declined: vec![],
            runs: None,
        };
        assert_eq!(machine_words(&browser), "4 cores · WebGPU");
        let native = NodeCaps {
            slots: 3,
            webgpu: false,
            runs: Some(vec!["primes".into(), "transcribe".into()]),
            ..browser
        };
        assert_eq!(machine_words(&native), "3 of 4 cores · no scripts");
    }

    #[test]
    fn each_machine_says_what_it_is_doing_in_words() {
        let mut ledger = pool();
        let alice = node("@alice:hs");
        let view = PoolView::build(&ledger, Some(&alice), [], 1_500);
        assert_eq!(view.nodes[0].machine, "1 of 4 cores");
        assert_eq!(view.nodes[0].doing, Vec::<String>::new());
        assert_eq!(view.idle_reason.as_deref(), Some("no task is waiting"));
        let stranger = node("@dan:hs");
        let view = PoolView::build(&ledger, Some(&stranger), [], 1_500);
        assert_eq!(
            view.idle_reason.as_deref(),
            Some("telling the room your machine is here")
        );

        let primes = TaskSpec::new(
            TaskKind::Primes {
                start: 0,
                end: 1_000,
            },
            4,
        );
        submit(&mut ledger, "$primes", &primes, 2_000);
        for chunk in 0..2 {
            assign(
                &mut ledger,
                &format!("$a{chunk}"),
                "$primes",
                chunk,
                "@alice:hs",
                2_100,
            );
        }
        let voice = TaskSpec::transcription(audio("$voice"), WhisperModel::TinyEn);
        submit(&mut ledger, "$plan", &voice, 2_200);
        assign(&mut ledger, "$b", "$plan", 0, "@bob:hs", 2_300);
        let progress = manifest::events::ChunkProgress {
            chunk: 0,
            attempt: 1,
            percent: 40,
        };
        let report = Outgoing::progress(&id("$plan"), &node("@bob:hs"), &[progress]);
        ledger
            .ingest(&delivered_as("$p", "@bob:hs", &report, 2_400))
            .unwrap();

        let voices = [voice_message("$voice", 1_000)];
        let view = PoolView::build(&ledger, Some(&alice), voices.iter(), 2_500);
        let doing: Vec<&[String]> = view.nodes.iter().map(|n| &n.doing[..]).collect();
        assert_eq!(
            doing,
            [
                &["Counting primes — 2 of 4 pieces".to_owned()][..],
                &["Transcribing carol's voice message — 40%".to_owned()][..],
            ]
        );
        assert_eq!(
            view.job_words(&id("$primes"), 0.25),
            "Counting primes — 25%"
        );
        assert_eq!(
            view.job_words(&id("$plan"), 0.0),
            "Transcribing carol's voice message"
        );

        // Cancelled, it frees alice's worker at once.
        let cancel = Outgoing::cancel(&id("$primes"), None);
        ledger
            .ingest(&delivered_as("$stop", "@carol:hs", &cancel, 2_600))
            .unwrap();
        let view = PoolView::build(&ledger, Some(&alice), voices.iter(), 2_700);
        assert_eq!(view.nodes[0].doing, Vec::<String>::new());
        assert_eq!(view.idle_reason.as_deref(), Some("no task is waiting"));
    }

    #[test]
    fn failures_lose_the_inner_workings() {
        assert_eq!(
            failure_words("chunk 2 of 4: out of memory", false),
            "piece 2 of 4: out of memory"
        );
        assert_eq!(
            failure_words("chunk 1 of 1: out of memory", false),
            "out of memory"
        );
        assert_eq!(
            failure_words(
                "part 1 of 1: chunk 3 of 7: the span is outside the recording",
                true
            ),
            "the span is outside the recording"
        );
        assert_eq!(
            failure_words("gave up: 3 of 3 nodes", false),
            "gave up: 3 of 3 nodes"
        );
    }

    fn states(
        ledger: &Ledger,
        messages: &[VoiceMessage],
    ) -> Vec<(String, VoiceState, Option<String>)> {
        voice_rows(ledger, messages.iter(), 10_000)
            .into_iter()
            .map(|row| {
                let task = row.task.map(|t| t.as_str().to_owned());
                (row.message.event_id.as_str().to_owned(), row.state, task)
            })
            .collect()
    }

    #[test]
    fn each_voice_message_shows_its_latest_transcription_newest_first() {
        let messages = [
            voice_message("$older", 1_000),
            voice_message("$newer", 2_000),
        ];
        let transcribe = Outgoing::task(&TaskSpec::transcription(
            audio("$older"),
            WhisperModel::TinyEn,
        ));
        let mut ledger = Ledger::new();
        ledger
            .ingest(&delivered("$first", &transcribe, 3_000))
            .unwrap();
        assert_eq!(
            states(&ledger, &messages),
            [
                ("$newer".into(), VoiceState::NotTranscribed, None),
                ("$older".into(), VoiceState::Queued, Some("$first".into())),
            ]
        );

        // Cancelled: it may be transcribed again, and the next request is the one shown.
        let first = EventId::parse("$first").unwrap();
        ledger
            .ingest(&delivered("$stop", &Outgoing::cancel(&first, None), 4_000))
            .unwrap();
        assert_eq!(states(&ledger, &messages)[1].1, VoiceState::NotTranscribed);
        ledger
            .ingest(&delivered("$again", &transcribe, 5_000))
            .unwrap();
        assert_eq!(
            states(&ledger, &messages)[1],
            ("$older".into(), VoiceState::Queued, Some("$again".into()))
        );
    }
}
