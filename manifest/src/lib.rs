//! The contract every Potluck node shares.
//!
//! Event schemas, validation of everything that comes in, the ledger (a pure
//! fold from the events a node saw to the state of every task and node), the
//! scheduler and the node state machine. Nothing here touches a browser, a
//! clock or a network: callers pass in what they saw and `now`, and carry out
//! the actions that come back. That is what makes every node agree, and what
//! lets the whole protocol be tested natively.

// Layers, bottom to top: a module uses only modules of its own layer or
// below, and no two modules use each other (`scripts/check-module-cycles.mjs`
// checks this in CI).

// Identifiers, limits, text and digests: no Potluck concepts.
pub mod audio_split;
pub mod base64;
pub mod digest;
pub mod fairness;
pub mod ids;
pub mod limits;
pub mod rate;
pub mod sort;
pub mod sorted_map;
pub mod text;

// Task kinds: what a task asks for, how it splits and merges, and who may run it.
pub mod allowlist;
pub mod kernel;
pub mod kind_error;
pub mod seal;
pub mod task_kind;
pub mod transcription;

// Room events: their content, validation of what comes in, chat commands.
pub mod commands;
pub mod events;
pub mod validate;
pub mod voice;
pub mod worker_protocol;

// State folded from the events: the ledger, the scheduler, private outputs.
pub mod agreement;
pub mod capabilities;
pub mod ledger;
pub mod private;
pub mod rejection;
pub mod scheduler;

// The node state machine every driver (the widget) feeds.
pub mod node;

pub use events::{NodeCaps, PotluckEvent, SeenEvent, TaskSpec};
pub use ids::{EventId, IdError, NodeId, UserId};
pub use ledger::Ledger;
pub use node::{Action, Input, NodeMachine};
pub use rejection::Rejection;
pub use task_kind::TaskKind;
