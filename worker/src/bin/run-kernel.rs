//! `run-kernel < task.json`: runs every chunk of a WebGPU kernel task (the
//! `params` of a `kernel` task) on this machine's GPU through wgpu, and
//! prints `{"adapter", "integrity", "outputs", "ms"}` (`integrity`: the hash a
//! moderator allows; `ms`: each chunk's wall time, the first with the
//! shader's compilation). The end-to-end tests compare the pool's
//! result in the browser with it; a friend can check a kernel before
//! submitting it. Without a GPU, Mesa's lavapipe (`mesa-vulkan-drivers`) does.

use manifest::kernel::KernelTask;
use potluck_worker::kernel::Gpu;
use serde_json::json;
use std::io::Read;
use std::time::Instant;

fn main() {
    let mut text = String::new();
    let task: KernelTask = match std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(task) => task,
        Err(e) => fail(&format!("usage: run-kernel < task.json ({e})")),
    };
    if let Err(e) = task.validate(task.chunks.len() as u32) {
        fail(&e.to_string());
    }
    let gpu = pollster::block_on(Gpu::open()).unwrap_or_else(|e| fail(&e));
    let mut ms = Vec::new();
    let outputs: Vec<_> = (0..task.chunks.len() as u32)
        .map(|i| {
            let chunk = task.chunk(i);
            let started = Instant::now();
            let bytes = pollster::block_on(gpu.run(&chunk)).unwrap_or_else(|e| fail(&e));
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
            chunk.output_from(&bytes)
        })
        .collect();
    println!(
        "{}",
        json!({ "adapter": gpu.name, "outputs": outputs, "ms": ms })
    );
}

fn fail(reason: &str) -> ! {
    eprintln!("run-kernel: {reason}");
    std::process::exit(1);
}
