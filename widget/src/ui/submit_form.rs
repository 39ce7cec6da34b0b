//! The form that submits a "count primes" task, optionally private (its
//! result reaches the submitter alone). Its fields keep their own state, so
//! the pool's frequent re-renders never reset what a friend typed.

use manifest::events::TaskSpec;
use manifest::limits::MAX_CHUNKS;
use manifest::task_kind::TaskKind;
use web_sys::HtmlInputElement;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub on_submit: Callback<TaskSpec>,
}

/// Reads the three fields into a task, or says what is wrong.
fn to_spec(start: &str, end: &str, chunks: &str, private: bool) -> Result<TaskSpec, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("'{s}' is not a whole number."))
    };
    let (start, end) = (number(start)?, number(end)?);
    let chunks = chunks
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|c| (1..=MAX_CHUNKS).contains(c));
    let chunks = chunks.ok_or(format!("Use 1 to {MAX_CHUNKS} chunks."))?;
    let kind = TaskKind::Primes { start, end };
    kind.validate(chunks).map_err(|e| e.to_string())?;
    let mut spec = TaskSpec::new(kind, chunks);
    spec.private = private;
    Ok(spec)
}

fn bind(field: &UseStateHandle<String>) -> Callback<InputEvent> {
    let field = field.clone();
    Callback::from(move |e: InputEvent| {
        field.set(e.target_unchecked_into::<HtmlInputElement>().value())
    })
}

#[function_component(SubmitForm)]
pub fn submit_form(props: &Props) -> Html {
    let start = use_state(|| "0".to_string());
    let end = use_state(|| "50000000".to_string());
    let chunks = use_state(|| "4".to_string());
    let private = use_state(|| false);
    let error = use_state(|| None::<String>);
    let onsubmit = {
        let (start, end, chunks, private, error) = (
            start.clone(),
            end.clone(),
            chunks.clone(),
            private.clone(),
            error.clone(),
        );
        let on_submit = props.on_submit.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match to_spec(&start, &end, &chunks, *private) {
                Ok(spec) => {
                    error.set(None);
                    on_submit.emit(spec);
                }
                Err(message) => error.set(Some(message)),
            }
        })
    };
    html! {
        <section class="submit" aria-label="Submit a task">
            <h2>{ "Submit a task" }</h2>
            <form {onsubmit} data-testid="submit-form">
                { "Count primes from " }
                <input type="number" min="0" value={(*start).clone()} oninput={bind(&start)} aria-label="from" data-testid="start" />
                { " to " }
                <input type="number" min="1" value={(*end).clone()} oninput={bind(&end)} aria-label="to" data-testid="end" />
                { " in " }
                <input type="number" min="1" max={MAX_CHUNKS.to_string()} value={(*chunks).clone()} oninput={bind(&chunks)} aria-label="chunks" data-testid="chunks" />
                { " chunks " }
                <label title="The result goes to you alone, by encrypted message; the room sees only that it finished.">
                    <input type="checkbox" checked={*private} data-testid="private"
                        onchange={let private = private.clone(); Callback::from(move |e: Event|
                            private.set(e.target_unchecked_into::<HtmlInputElement>().checked()))} />
                    { " only I see the result " }
                </label>
                <button type="submit" data-testid="submit">{ "Submit" }</button>
            </form>
            if let Some(e) = &*error { <p class="error" role="alert" data-testid="submit-error">{ e }</p> }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields_become_a_task_or_a_reason() {
        let spec = to_spec("10", " 1000 ", "3", false).unwrap();
        assert_eq!(
            spec.kind,
            TaskKind::Primes {
                start: 10,
                end: 1000
            }
        );
        assert_eq!(spec.chunks, 3);
        assert!(!spec.private && to_spec("10", "1000", "3", true).unwrap().private);
        assert!(to_spec("ten", "1000", "3", false)
            .unwrap_err()
            .contains("not a whole number"));
        assert!(to_spec("0", "1000", "0", false)
            .unwrap_err()
            .contains("chunks"));
        assert!(to_spec("5", "5", "1", false).unwrap_err().contains("empty"));
    }
}
