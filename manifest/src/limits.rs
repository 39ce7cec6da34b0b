//! Every policy number of the protocol, in one place, with how it was chosen.
//! All durations are milliseconds of homeserver time (`origin_server_ts`).

/// Synapse's default `rc_message`: one event per 5 s per account, burst 10.
/// Public homeservers are no more generous.
pub const SERVER_EVENTS_PER_SECOND: f64 = 0.2;
pub const SERVER_BURST: f64 = 10.0;
/// What a node allows itself of that. The account is also its friend's own
/// chat account, and joining or creating a room already spends from the same
/// burst (measured: 9 of 10 left after `createRoom`). A refused custom event
/// is worse than a slow one: Element marks it unsent and holds back the
/// friend's later messages in the room until they resend or delete it.
pub const RATE_EVENTS_PER_SECOND: f64 = 0.15;
pub const RATE_BURST: f64 = 5.0;
/// What the friend asks for in the widget (a task, a cancel, an allowlist
/// edit) spends a small budget of its own first, then the node's: so two
/// transcripts asked for in a row do not wait for the node's budget. It is
/// half of what the node leaves of the account, so the friend's own
/// messages in the client (which Element retries when refused, unlike the
/// widget's events) keep at least 3 of the burst and 0.025 events/s.
pub const FRIEND_EVENTS_PER_SECOND: f64 = 0.025;
pub const FRIEND_BURST: f64 = 2.0;
/// What the widget's two budgets leave of the account for the client.
pub const CLIENT_BURST: f64 = SERVER_BURST - RATE_BURST - FRIEND_BURST;
pub const CLIENT_EVENTS_PER_SECOND: f64 =
    SERVER_EVENTS_PER_SECOND - RATE_EVENTS_PER_SECOND - FRIEND_EVENTS_PER_SECOND;
const _: () = assert!(CLIENT_BURST >= 3.0 && CLIENT_EVENTS_PER_SECOND >= 0.02);

/// A node restarts its dead-man switch this often. It is a delayed-event
/// restart (not a room event), which Synapse limits separately (`rc_delayed_event_mgmt`).
pub const HEARTBEAT_MS: u64 = 5_000;
/// If a node's tab closes, the homeserver publishes "node gone" this long after
/// the last heartbeat: three missed heartbeats, so one slow timer is no outage.
pub const NODE_TIMEOUT_MS: u64 = 3 * HEARTBEAT_MS;

/// A node acts as coordinator only once it has been online this long, so it
/// has seen the announcements of older nodes first (tabs see events late).
pub const COORDINATOR_SETTLE_MS: u64 = 3_000;

/// A lease's soft timeout: after this the chunk is issued again (Folding@home's
/// first stage), though a late result from the original node still counts if it
/// arrives first.
pub const LEASE_SOFT_MS: u64 = 120_000;
/// The hard deadline: results after this are dropped.
pub const LEASE_HARD_MS: u64 = 600_000;
/// Beyond one chunk per worker slot, a node is handed more chunks to queue
/// while their estimated running time (see `TaskRecord::chunk_ms_estimate`)
/// stays under this per slot. At one event per 5 s, an assignment and its
/// result take a coordinator and a node about 13 s of send budget, so short
/// chunks handed out one at a time would leave workers idle most of the time
/// (measured: 12 s of coordination per 0.45 s chunk). A quarter of the soft
/// lease timeout keeps a queued chunk well inside its lease.
pub const QUEUE_TARGET_MS: u64 = LEASE_SOFT_MS / 4;
/// The most leases a node holds per worker slot, however short the chunks:
/// a tab that closes gives back no more than this.
pub const MAX_LEASES_PER_SLOT: u32 = 32;
/// The most assignments in one event: about 80 bytes each, so an event stays
/// far below `MAX_CONTENT_BYTES`.
pub const MAX_ASSIGNMENTS_PER_EVENT: usize = 256;
/// A chunk that failed or timed out this many times fails its task (a
/// replicated chunk gets one more for each extra replica).
pub const MAX_ATTEMPTS: u32 = 5;
/// Most nodes a chunk may be replicated on. Three lets a majority outvote one
/// wrong result; five outvotes two. More would cost friends' compute for
/// little more confidence.
pub const MAX_REPLICATION: u8 = 5;

/// Issues of one chunk before it fails: `MAX_ATTEMPTS`, plus one for each
/// replica beyond the first.
pub const fn max_attempts(replication: u8) -> u32 {
    MAX_ATTEMPTS + replication.saturating_sub(1) as u32
}
/// A node reports progress on a chunk (and so renews its lease) when the lease
/// is this old: half the soft timeout, so one report delayed by the send
/// budget still arrives in time. Chunks shorter than this cost no progress event.
pub const PROGRESS_EVERY_MS: u64 = LEASE_SOFT_MS / 2;
/// Back-off after a retriable failure: `BACKOFF_BASE_MS * 2^(attempt-1)`.
pub const BACKOFF_BASE_MS: u64 = 2_000;

/// An event, all of it, must fit in 65,536 bytes; leave room for the envelope
/// the homeserver adds (ids, signatures, hashes, unsigned).
pub const MAX_CONTENT_BYTES: usize = 48 * 1024;
/// Inline results per chunk; anything bigger goes to the media repository.
pub const MAX_INLINE_OUTPUT_BYTES: usize = 4 * 1024;
/// Chunks per task, so that one task's bookkeeping stays small.
pub const MAX_CHUNKS: u32 = 1_000;
/// Parts one task may be split into (each a task of its own, with chunks).
pub const MAX_SUBTASKS: usize = 1_000;
/// The largest file a node downloads for a task (a recording, an input):
/// Synapse's default upload limit is 50 MB, a two-hour voice message in Ogg
/// Opus about 60 MB; a friend's tab should not fetch gigabytes on a word.
pub const MAX_MEDIA_BYTES: u64 = 200 * 1_000_000;
/// Input files per task; more belong in an archive.
pub const MAX_INPUTS: usize = 16;
/// Worker slots one node may announce.
pub const MAX_SLOTS: u32 = 64;
/// Reasons and other free text shown to people.
pub const MAX_REASON_CHARS: usize = 500;

/// How long a node waits before sending a result, to batch the results of
/// several chunks of one task into one event; only while another chunk of
/// that task still runs on the node (a lone chunk has nothing to wait for).
pub const RESULT_BATCH_MS: u64 = 1_000;
/// A sent event that has not come back in the timeline after this long is sent
/// again (the widget transport times out after 10 s; the event may or may not
/// have been sent, and the ledger ignores duplicates).
pub const RESEND_AFTER_MS: u64 = 30_000;

/// A contributor loads the default Whisper model ahead of any span when a
/// voice message younger than this is in the room: friends ask for a
/// transcript soon after a message arrives, if at all. The same span as
/// commands, so that a `!transcribe` still answered finds the model loaded.
pub const VOICE_RECENT_MS: u64 = COMMAND_MAX_AGE_MS;

/// A `!run` message older than this when a coordinator first sees it is
/// history (a node opening the room later), not a request to act on now.
pub const COMMAND_MAX_AGE_MS: u64 = 10 * 60_000;

/// After the homeserver refuses an event without saying how long to wait,
/// wait one event's worth of the default rate before sending again.
pub const RETRY_AFTER_REFUSAL_MS: u64 = 5_000;

/// Usage decays with this half-life, like BOINC's recent average credit.
pub const USAGE_HALF_LIFE_MS: u64 = 3_600_000;

/// Rejections kept for display; older ones are dropped.
pub const MAX_REJECTIONS_KEPT: usize = 100;

/// A chunk's time limit may not outlast its lease's hard deadline.
pub const MAX_SCRIPT_SECONDS: u32 = (LEASE_HARD_MS / 1000) as u32;
