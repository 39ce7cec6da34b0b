//! The protocol's event types and version: every Potluck content carries
//! `"v": PROTOCOL_VERSION`, and other versions are refused, not guessed at.

/// Namespace of every Potluck event type.
pub const NAMESPACE: &str = "org.potluck";
/// The protocol version this code speaks; other versions are rejected, not guessed at.
pub const PROTOCOL_VERSION: u32 = 1;

pub mod event_type {
    /// State event, one per node (state key = node id): announce, or gone.
    pub const NODE: &str = "org.potluck.node";
    /// A task submitted to the pool.
    pub const TASK: &str = "org.potluck.task";
    /// The coordinator hands chunks of a task to nodes.
    pub const ASSIGN: &str = "org.potluck.assign";
    /// A node reports the outcomes of chunks it ran.
    pub const RESULT: &str = "org.potluck.result";
    /// A node says how far it got with long chunks, which renews their leases.
    pub const PROGRESS: &str = "org.potluck.progress";
    /// The submitter withdraws a task.
    pub const CANCEL: &str = "org.potluck.cancel";
    /// State event (empty state key): the scripts the room allows.
    pub const ALLOWLIST: &str = "org.potluck.allowlist";
    /// Every Potluck event type.
    pub const ALL: [&str; 7] = [NODE, TASK, ASSIGN, RESULT, PROGRESS, CANCEL, ALLOWLIST];
}

/// Room membership (state key = user id): a member who leaves takes their
/// nodes with them (not one of Potluck's types; nodes read it).
pub const MEMBER: &str = "m.room.member";

/// A redaction: how the room says an event is gone (not one of Potluck's
/// types; nodes read it to forget what it removed).
pub const REDACTION: &str = "m.room.redaction";
