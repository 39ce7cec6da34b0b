//! How much each contributing computer has done today: the pool at a glance
//! shows it as a bar beside each friend, so that everyone sees who carried
//! the work without opening a task.
//!
//! Counted from the results the room accepted (a piece a node claimed but
//! lost to a majority, or never finished, is not work done), each with the
//! time it ran as the ledger bounds it (`ChunkDone::took_ms`).

use manifest::ids::NodeId;
use manifest::ledger::Ledger;
use manifest::sorted_map::SortedMap;

/// One computer's accepted work since the start of the day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkDone {
    pub pieces: u32,
    pub busy_ms: u64,
}

/// Work each node finished at or after `since` (the viewer's midnight).
pub fn work_since(ledger: &Ledger, since: u64) -> SortedMap<NodeId, WorkDone> {
    let mut done: SortedMap<NodeId, WorkDone> = SortedMap::new();
    for task in ledger.tasks() {
        for chunk in task.chunks.iter().filter_map(|c| c.done()) {
            if chunk.at >= since {
                let work = done.entry(chunk.node.clone()).or_default();
                work.pieces += 1;
                work.busy_ms += chunk.took_ms;
            }
        }
    }
    done
}

/// Milliseconds since the epoch at the viewer's last local midnight (UTC's
/// natively, where there is no viewer).
pub fn local_midnight(now: u64) -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(now as f64));
        date.set_hours(0);
        date.set_minutes(0);
        date.set_seconds(0);
        date.set_milliseconds(0);
        date.get_time() as u64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        now - now % 86_400_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_ledger::{answer, assign, node, pool, submit};
    use manifest::events::TaskSpec;
    use manifest::task_kind::TaskKind;
    use serde_json::json;

    #[test]
    fn counts_each_computers_accepted_pieces_since_midnight_and_nothing_before() {
        let mut ledger = pool();
        let primes = TaskSpec::new(TaskKind::Primes { start: 0, end: 300 }, 3);
        submit(&mut ledger, "$task", &primes, 2_000);
        for (chunk, to) in [(0, "@alice:hs"), (1, "@bob:hs"), (2, "@bob:hs")] {
            assign(
                &mut ledger,
                &format!("$a{chunk}"),
                "$task",
                chunk,
                to,
                3_000,
            );
        }
        // Alice's piece came back yesterday; bob's two today.
        answer(
            &mut ledger,
            "$r0",
            "$task",
            0,
            "@alice:hs",
            json!({"count": 62}),
            4_000,
        );
        answer(
            &mut ledger,
            "$r1",
            "$task",
            1,
            "@bob:hs",
            json!({"count": 9}),
            10_000,
        );
        answer(
            &mut ledger,
            "$r2",
            "$task",
            2,
            "@bob:hs",
            json!({"count": 11}),
            11_000,
        );

        let today = work_since(&ledger, 5_000);
        assert_eq!(
            today.get(&node("@alice:hs")),
            None,
            "yesterday's piece is not today's work"
        );
        let bob = today[&node("@bob:hs")];
        assert_eq!(bob.pieces, 2);
        assert!(
            bob.busy_ms > 0 && bob.busy_ms <= 2 * 100,
            "{bob:?}: at most what bob reported"
        );
        assert_eq!(work_since(&ledger, 0)[&node("@alice:hs")].pieces, 1);
    }
}
