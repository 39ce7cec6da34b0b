//! Any bytes that parse as JSON go through validation and into a ledger:
//! nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifest::ledger::Ledger;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let _ = manifest::validate::parse_event(&raw);
    let mut ledger = Ledger::new();
    // A stream of events in one array, the way a relations page arrives.
    for event in raw.as_array().into_iter().flatten().chain(std::iter::once(&raw)) {
        let _ = ledger.ingest(event);
    }
    for task in ledger.tasks() {
        let _ = ledger.task_status(task, u64::MAX / 2);
    }
});
