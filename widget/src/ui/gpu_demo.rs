//! A button that renders the Mandelbrot set on friends' GPUs: a WebGPU kernel
//! task, one picture tile per chunk, assembled live in the task list with
//! each tile tinted by the friend whose GPU computed it.

use manifest::events::TaskSpec;
use manifest::kernel::{KernelOutput, KernelTask};
use manifest::task_kind::TaskKind;
use yew::prelude::*;

/// The shader, served beside the widget too, for friends who want to read it.
pub const MANDELBROT_WGSL: &str = include_str!("../../../static/kernels/mandelbrot.wgsl");
/// Tiles per side, pixels per tile side, escape-time iterations.
const TILES: u32 = 4;
const TILE_SIZE: u32 = 48;
const MAX_ITER: u32 = 256;

/// The Mandelbrot set as `TILES²` tiles, centred on −0.5 + 0i, 3 wide.
pub fn mandelbrot_task() -> TaskSpec {
    // The view in the shader's fixed point (1/8192ths); it reads the centre as i32 bits.
    let (cx, cy, span) = ((-4096i32) as u32, 0, 3 << 13);
    let kernel = KernelTask {
        wgsl: MANDELBROT_WGSL.to_owned(),
        entry: "main".into(),
        workgroups: [TILE_SIZE.div_ceil(8), TILE_SIZE.div_ceil(8), 1],
        output_words: TILE_SIZE * TILE_SIZE / 4,
        chunks: (0..TILES * TILES)
            .map(|i| {
                vec![
                    i % TILES,
                    i / TILES,
                    TILE_SIZE,
                    TILES,
                    cx,
                    cy,
                    span,
                    MAX_ITER,
                ]
            })
            .collect(),
        output: KernelOutput::Tile { size: TILE_SIZE },
    };
    let mut spec = TaskSpec::new(TaskKind::Kernel(Box::new(kernel)), TILES * TILES);
    spec.requirements.webgpu = true;
    spec
}

#[derive(Properties, PartialEq)]
pub struct Props {
    pub on_submit: Callback<TaskSpec>,
}

#[function_component(GpuDemo)]
pub fn gpu_demo(props: &Props) -> Html {
    let onclick = props.on_submit.reform(|_| mandelbrot_task());
    html! {
        <section class="gpu-demo" aria-label="WebGPU demo">
            <h2>{ "WebGPU" }</h2>
            <button {onclick} data-testid="submit-mandelbrot-gpu">
                { "Render the Mandelbrot set on friends' GPUs" }
            </button>
            <p class="hint">{ "A WGSL kernel, one tile per chunk; only friends whose browser has WebGPU get its tiles." }</p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_is_a_valid_kernel_task_that_needs_webgpu() {
        let spec = mandelbrot_task();
        spec.kind.validate(spec.chunks).unwrap();
        assert!(spec.requirements.webgpu);
        let content = serde_json::to_string(&spec).unwrap();
        assert!(
            content.len() < 16 * 1024,
            "the task event stays small: {} bytes",
            content.len()
        );
    }
}
