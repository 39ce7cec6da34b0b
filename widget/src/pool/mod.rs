//! The friend's contribution: the Web Workers that run chunks, and what this
//! machine can offer.

pub mod machine_info;
pub mod sandbox;
pub mod workers;
