//! The contract every Potluck node shares.
//!
//! Event schemas, validation of everything that comes in, the ledger (a pure
//! fold from the events a node saw to the state of every task and node), the
//! scheduler and the node state machine. Nothing here touches a browser, a
//! clock or a network: callers pass in what they saw and `now`, and carry out
//! the actions that come back. That is what makes every node agree, and what
//! lets the whole protocol be tested natively.

pub mod allowlist;
pub mod audio_split;
pub mod base64;
pub mod capabilities;
pub mod commands;
pub mod events;
pub mod fairness;
pub mod ids;
pub mod kernel;
pub mod ledger;
pub mod limits;
pub mod machine;
pub mod private;
pub mod rate;
pub mod scheduler;
pub mod task_kind;
pub mod text;
pub mod transcription;
pub mod validate;
pub mod view;
pub mod voice;
pub mod worker_protocol;

pub use events::{NodeCaps, PotluckEvent, SeenEvent, TaskSpec};
pub use ids::{EventId, IdError, NodeId, UserId};
pub use ledger::Ledger;
pub use machine::{Action, Input, NodeMachine};
pub use task_kind::TaskKind;
pub use validate::Rejection;
