//! The runner inside a real Web Worker in headless Chromium.
#![cfg(target_arch = "wasm32")]

use manifest::task_kind::TaskKind;
use manifest::worker_protocol::{FromWorker, ToWorker};
use potluck_worker::runner;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[wasm_bindgen_test]
fn counts_primes_inside_a_dedicated_worker() {
    assert!(js_sys::global()
        .dyn_into::<web_sys::DedicatedWorkerGlobalScope>()
        .is_ok());
    let job = serde_json::to_string(&ToWorker::Run {
        job: 1,
        work: TaskKind::Primes {
            start: 0,
            end: 1_000_000,
        },
    })
    .unwrap();
    let mut last = None;
    runner::handle(&job, |reply| last = Some(reply));
    assert_eq!(
        last,
        Some(FromWorker::Done {
            job: 1,
            output: serde_json::json!({"count": 78_498})
        })
    );
}
