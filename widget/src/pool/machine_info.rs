//! What this machine offers the pool, read from the browser.

use manifest::events::NodeCaps;
use wasm_bindgen::JsCast;

/// Logical cores the browser reports (at least 1).
pub fn logical_cores() -> u32 {
    let cores = gloo::utils::window().navigator().hardware_concurrency();
    (cores as u32).max(1)
}

/// Workers to give by default: leave one core for the friend's own use.
pub fn default_slots(cores: u32) -> u32 {
    cores.saturating_sub(1).max(1)
}

/// `navigator.deviceMemory` (GiB, Chromium only, rounded) in MiB.
fn memory_mb() -> Option<u32> {
    let navigator = gloo::utils::window().navigator();
    js_sys::Reflect::get(&navigator, &"deviceMemory".into())
        .ok()
        .and_then(|v| v.as_f64())
        .map(|gib| (gib * 1024.0) as u32)
}

/// Whether a WebGPU adapter is available (asks for one; `navigator.gpu` alone is not enough).
pub async fn has_webgpu() -> bool {
    let navigator = gloo::utils::window().navigator();
    let Ok(gpu) = js_sys::Reflect::get(&navigator, &"gpu".into()) else {
        return false;
    };
    if gpu.is_undefined() {
        return false;
    }
    // Called through Reflect: web-sys's WebGPU types need an unstable cfg flag.
    let Ok(request) = js_sys::Reflect::get(&gpu, &"requestAdapter".into()) else {
        return false;
    };
    let Ok(promise) = request.unchecked_ref::<js_sys::Function>().call0(&gpu) else {
        return false;
    };
    match wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(promise)).await {
        Ok(adapter) => !adapter.is_null() && !adapter.is_undefined(),
        Err(_) => false,
    }
}

pub fn caps(slots: u32, webgpu: bool) -> NodeCaps {
    NodeCaps {
        cores: logical_cores(),
        slots,
        memory_mb: memory_mb(),
        webgpu,
        models: Vec::new(),
        declined: vec![],
        runs: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_core_is_left_free_but_never_zero_workers() {
        assert_eq!(default_slots(8), 7);
        assert_eq!(default_slots(2), 1);
        assert_eq!(default_slots(1), 1);
    }
}
