//! A button that renders the Mandelbrot set on friends' GPUs: a WebGPU kernel
//! task, one picture tile per chunk, assembled live in the task list with
//! each tile tinted by the friend whose GPU computed it. Like a script, the
//! kernel runs only once the room's allowlist names its source's hash; a
//! moderator allows it here.

use crate::read_json::read_json;
use manifest::allowlist::AllowedKernel;
use manifest::events::{Outgoing, TaskSpec};
use manifest::kernel::{KernelOutput, KernelTask, DEFAULT_KERNEL_SECONDS};
use manifest::task_kind::TaskKind;
use manifest::validate::parse_task;
use web_sys::{HtmlInputElement, HtmlTextAreaElement};
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
        max_seconds: DEFAULT_KERNEL_SECONDS,
    };
    let mut spec = TaskSpec::new(TaskKind::Kernel(Box::new(kernel)), TILES * TILES);
    spec.requirements.webgpu = true;
    spec
}

/// The allowlist entry for the demo's kernel.
pub fn mandelbrot_entry() -> AllowedKernel {
    let TaskKind::Kernel(kernel) = mandelbrot_task().kind else {
        unreachable!("the demo is a kernel task")
    };
    AllowedKernel {
        name: "mandelbrot-gpu".into(),
        integrity: kernel.integrity(),
        description: "the Mandelbrot set, one tile per piece".into(),
    }
}

#[derive(Properties, PartialEq)]
pub struct Props {
    pub on_submit: Callback<TaskSpec>,
    /// The kernels the room allows.
    pub allowed: Vec<AllowedKernel>,
    pub on_allow: Callback<AllowedKernel>,
    /// Why allowing failed, if it did.
    pub allow_error: Option<String>,
}

#[function_component(GpuDemo)]
pub fn gpu_demo(props: &Props) -> Html {
    let entry = mandelbrot_entry();
    let allowed = props.allowed.iter().any(|k| k.integrity == entry.integrity);
    let onclick = props.on_submit.reform(|_| mandelbrot_task());
    let allow = props.on_allow.reform(move |_| entry.clone());
    html! {
        <section class="gpu-demo" aria-label="WebGPU demo">
            <h2>{ "WebGPU" }</h2>
            <button {onclick} data-testid="submit-mandelbrot-gpu">
                { "Render the Mandelbrot set on friends' GPUs" }
            </button>
            <p class="hint">{ "A WGSL kernel draws one tile per piece; only friends whose browser has WebGPU get tiles." }</p>
            if !allowed {
                <p class="hint">{ "The room has not allowed this kernel yet. " }
                    <button onclick={allow} data-testid="allow-mandelbrot-gpu">{ "Allow it (moderators)" }</button></p>
            }
            if let Some(e) = &props.allow_error { <p class="error" role="alert">{ e }</p> }
            <KernelForms on_submit={props.on_submit.clone()} on_allow={props.on_allow.clone()} />
        </section>
    }
}

/// A kernel task from its JSON (what `run-kernel` reads), or what is wrong.
pub fn kernel_spec(json: &str) -> Result<TaskSpec, String> {
    let kernel: KernelTask = read_json(json).map_err(|e| {
        format!("'Kernel task' is not a kernel task as docs/writing-tasks.md describes ({e}).")
    })?;
    let chunks = kernel.chunks.len() as u32;
    let mut spec = TaskSpec::new(TaskKind::Kernel(Box::new(kernel)), chunks);
    spec.requirements.webgpu = true;
    // Exactly the checks every node applies.
    parse_task(&Outgoing::task(&spec).content).map_err(|e| e.to_string())?;
    Ok(spec)
}

#[derive(Properties, PartialEq)]
struct FormsProps {
    on_submit: Callback<TaskSpec>,
    on_allow: Callback<AllowedKernel>,
}

/// Any kernel: submit its task JSON; moderators allow a source by its hash
/// (`run-kernel` prints it).
#[function_component(KernelForms)]
fn kernel_forms(props: &FormsProps) -> Html {
    let task = use_state(String::new);
    let (name, integrity) = (use_state(String::new), use_state(String::new));
    let error = use_state(|| None::<String>);
    let bind = |field: &UseStateHandle<String>| {
        let field = field.clone();
        Callback::from(move |e: InputEvent| {
            field.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_task = {
        let task = task.clone();
        Callback::from(move |e: InputEvent| {
            task.set(e.target_unchecked_into::<HtmlTextAreaElement>().value())
        })
    };
    let submit = {
        let (task, error, on_submit) = (task.clone(), error.clone(), props.on_submit.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match kernel_spec(&task) {
                Ok(spec) => {
                    error.set(None);
                    on_submit.emit(spec);
                }
                Err(reason) => error.set(Some(reason)),
            }
        })
    };
    let allow = {
        let (name, integrity, on_allow) = (name.clone(), integrity.clone(), props.on_allow.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            on_allow.emit(AllowedKernel {
                name: name.trim().to_owned(),
                integrity: integrity.trim().to_owned(),
                description: String::new(),
            });
        })
    };
    html! {
        <details>
            <summary>{ "Your own kernel" }</summary>
            <form onsubmit={submit} data-testid="kernel-form">
                <textarea rows="4" placeholder="the kernel task as JSON (docs/writing-tasks.md)" value={(*task).clone()} oninput={on_task} aria-label="kernel task" data-testid="kernel-task" />
                <button type="submit" data-testid="kernel-submit">{ "Submit" }</button>
            </form>
            if let Some(e) = &*error { <p class="error" role="alert" data-testid="kernel-error">{ e }</p> }
            <form onsubmit={allow} data-testid="allow-kernel-form">
                <input type="text" placeholder="name" value={(*name).clone()} oninput={bind(&name)} aria-label="kernel name" />
                <input type="text" placeholder="sha256-…" value={(*integrity).clone()} oninput={bind(&integrity)} aria-label="kernel hash" />
                <button type="submit">{ "Allow (moderators)" }</button>
            </form>
        </details>
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
        assert!(mandelbrot_entry().integrity.starts_with("sha256-"));
    }

    #[test]
    fn a_kernel_task_typed_as_json_becomes_a_task_or_a_reason() {
        let TaskKind::Kernel(demo) = mandelbrot_task().kind else {
            panic!()
        };
        let spec = kernel_spec(&serde_json::to_string(&demo).unwrap()).unwrap();
        assert_eq!(spec.chunks, 16);
        assert!(spec.requirements.webgpu);
        assert!(kernel_spec("{}").unwrap_err().contains("not a kernel task"));
        let no_chunks = serde_json::json!({"wgsl": "", "entry": "main", "workgroups": [1, 1, 1], "output_words": 1, "chunks": []});
        assert!(kernel_spec(&no_chunks.to_string()).is_err());
    }
}
