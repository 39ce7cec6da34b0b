// Bootstrap of a Potluck Web Worker: loads the worker's wasm, which then
// listens for jobs and posts {"type":"ready"} (see worker/src/entry.rs).
importScripts("./potluck_worker.js");
wasm_bindgen({ module_or_path: "./potluck_worker_bg.wasm" });
