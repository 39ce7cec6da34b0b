//! The form that submits a "count primes" task.

use manifest::events::{Requirements, TaskSpec};
use manifest::task_kind::TaskKind;
use web_sys::HtmlInputElement;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub on_submit: Callback<TaskSpec>,
}

#[function_component(SubmitForm)]
pub fn submit_form(props: &Props) -> Html {
    let start = use_node_ref();
    let end = use_node_ref();
    let chunks = use_node_ref();
    let error = use_state(|| None::<String>);
    let onsubmit = {
        let (start, end, chunks, error) = (start.clone(), end.clone(), chunks.clone(), error.clone());
        let on_submit = props.on_submit.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let read = |r: &NodeRef| r.cast::<HtmlInputElement>().map(|i| i.value()).unwrap_or_default();
            let parsed = (read(&start).parse::<u64>(), read(&end).parse::<u64>(), read(&chunks).parse::<u32>());
            let (Ok(start), Ok(end), Ok(chunks)) = parsed else {
                error.set(Some("Enter whole numbers.".into()));
                return;
            };
            let spec = TaskSpec { kind: TaskKind::Primes { start, end }, chunks, priority: 0, requirements: Requirements::default() };
            match spec.kind.validate(chunks) {
                Ok(()) if (1..=manifest::limits::MAX_CHUNKS).contains(&chunks) => {
                    error.set(None);
                    on_submit.emit(spec);
                }
                Ok(()) => error.set(Some(format!("Use 1 to {} chunks.", manifest::limits::MAX_CHUNKS))),
                Err(e) => error.set(Some(e.to_string())),
            }
        })
    };
    html! {
        <section class="submit" aria-label="Submit a task">
            <h2>{ "Submit a task" }</h2>
            <form {onsubmit} data-testid="submit-form">
                { "Count primes from " }
                <input ref={start} type="number" min="0" value="0" aria-label="from" data-testid="start" />
                { " to " }
                <input ref={end} type="number" min="1" value="50000000" aria-label="to" data-testid="end" />
                { " in " }
                <input ref={chunks} type="number" min="1" max="1000" value="4" aria-label="chunks" data-testid="chunks" />
                { " chunks " }
                <button type="submit" data-testid="submit">{ "Submit" }</button>
            </form>
            if let Some(e) = &*error { <p class="error" role="alert">{ e }</p> }
        </section>
    }
}
