//! The "Contribute compute" switch and how many workers to give.

use manifest::ids::EventId;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub contributing: bool,
    pub busy: bool,
    pub workers: u32,
    pub max: u32,
    pub idle_reason: Option<String>,
    pub local_jobs: Vec<(EventId, u32, f32)>,
    pub on_toggle: Callback<bool>,
    pub on_workers: Callback<u32>,
}

#[function_component(Contribute)]
pub fn contribute(props: &Props) -> Html {
    let toggle = {
        let on_toggle = props.on_toggle.clone();
        let on = !props.contributing;
        Callback::from(move |_| on_toggle.emit(on))
    };
    let change_workers = {
        let on_workers = props.on_workers.clone();
        Callback::from(move |e: Event| {
            let select: web_sys::HtmlSelectElement = e.target_unchecked_into();
            if let Ok(n) = select.value().parse() {
                on_workers.emit(n);
            }
        })
    };
    html! {
        <section class="contribute" aria-label="Contribute compute">
            <button class={classes!("toggle", props.contributing.then_some("on"))} onclick={toggle}
                disabled={props.busy} aria-pressed={props.contributing.to_string()} data-testid="contribute">
                { if props.contributing { "Stop contributing" } else { "Contribute compute" } }
            </button>
            <label>
                { "Workers " }
                <select onchange={change_workers} disabled={props.contributing} data-testid="workers">
                    { for (1..=props.max).map(|n| html! {
                        <option value={n.to_string()} selected={n == props.workers}>{ n }</option>
                    }) }
                </select>
                <span class="hint">{ format!(" of {} cores", props.max) }</span>
            </label>
            if props.contributing {
                if props.local_jobs.is_empty() {
                    <p class="idle" data-testid="idle-reason">{ format!("Idle: {}", props.idle_reason.clone().unwrap_or_default()) }</p>
                } else {
                    <ul class="local-jobs">
                        { for props.local_jobs.iter().map(|(task, chunk, fraction)| html! {
                            <li data-testid="local-job" data-task-id={task.to_string()} data-chunk={chunk.to_string()}>
                                { format!("Running chunk {} of task {}", chunk + 1, task.short()) }
                                <progress max="1" value={fraction.to_string()} />
                            </li>
                        }) }
                    </ul>
                }
            }
        </section>
    }
}
