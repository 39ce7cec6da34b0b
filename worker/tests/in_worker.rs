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

/// Deterministic Miller–Rabin for any u64 (these bases suffice below 3.3 ×
/// 10^24): an oracle for the sieve that shares none of its arithmetic.
fn is_prime(n: u64) -> bool {
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    if n < 2 {
        return false;
    }
    if let Some(&p) = BASES.iter().find(|&&p| n.is_multiple_of(p)) {
        return n == p;
    }
    let mul = |a: u64, b: u64| (u128::from(a) * u128::from(b) % u128::from(n)) as u64;
    let pow = |mut base: u64, mut exp: u64| {
        let mut acc = 1;
        while exp > 0 {
            if exp & 1 == 1 {
                acc = mul(acc, base);
            }
            base = mul(base, base);
            exp >>= 1;
        }
        acc
    };
    let (mut d, mut r) = (n - 1, 0);
    while d.is_multiple_of(2) {
        d /= 2;
        r += 1;
    }
    BASES.iter().all(|&a| {
        let mut x = pow(a, d);
        if x == 1 || x == n - 1 {
            return true;
        }
        (1..r).any(|_| {
            x = mul(x, x);
            x == n - 1
        })
    })
}

/// wasm's usize is 32 bits: a range past 10^12 once counted 3,618,385 primes
/// where there are 3,618,282 (the sieve's squares wrapped).
#[wasm_bindgen_test]
fn counts_primes_past_a_trillion_as_an_independent_test_does() {
    let (start, end) = (1_000_000_000_000, 1_000_000_000_000 + 200_000);
    let expected = (start..end).filter(|&n| is_prime(n)).count() as u64;
    assert_eq!(
        potluck_worker::primes::count_primes(start, end, |_| {}),
        expected
    );
}

/// The encoder's integer linear layers have a SIMD128 kernel of their own in
/// wasm (four input rows by two weight rows at a time): every tile edge must
/// give what the f32 product gives, within the quantisation's error.
#[wasm_bindgen_test]
fn the_integer_encoder_kernel_matches_the_f32_product_at_every_tile_edge() {
    use whisper::int_matmul::IntWeights;
    for (n, rows, cols) in [(9, 5, 20), (4, 2, 8), (1, 1, 3), (13, 7, 384)] {
        let x: Vec<f32> = (0..n * cols).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i as u64 * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1)
            .collect();
        let weights = IntWeights::new(&w, rows, cols).unwrap();
        let got = weights.matmul(&x);
        assert_eq!(got.len(), n * rows);
        for (k, g) in got.iter().enumerate() {
            let (xr, wr) = (&x[k / rows * cols..][..cols], &w[k % rows * cols..][..cols]);
            let exact: f32 = xr.iter().zip(wr).map(|(a, b)| a * b).sum();
            let bound = weights.error_bound(xr, wr);
            assert!(
                (g - exact).abs() <= bound * 1.01 + 1e-6,
                "{n}x{rows}x{cols} [{k}]: {g} vs {exact}"
            );
        }
    }
}

/// The vocabulary projection has a SIMD128 kernel of its own in wasm: it must
/// give what the f32 product gives, within the int8 quantisation's error.
#[wasm_bindgen_test]
fn the_int8_projection_kernel_matches_the_f32_product() {
    use whisper::projection::QuantizedProjection;
    let (rows, cols) = (300, 384);
    let w: Vec<f32> = (0..rows * cols)
        .map(|i| ((i as u64 * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1)
        .collect();
    let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
    let got = QuantizedProjection::new(&w, rows, cols).unwrap().apply(&x);
    for (r, g) in got.iter().enumerate() {
        let row = &w[r * cols..(r + 1) * cols];
        let exact: f32 = row.iter().zip(&x).map(|(a, b)| a * b).sum();
        // Weights and inputs are each off by at most half a quantisation step.
        let bound: f32 = row
            .iter()
            .zip(&x)
            .map(|(a, b)| 0.1 / 254.0 * b.abs() + a.abs() / 254.0)
            .sum();
        assert!((g - exact).abs() <= bound + 1e-4, "row {r}: {g} vs {exact}");
    }
}
