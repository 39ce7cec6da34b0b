//! Friends' own scripts: the room's allowlist, the question a contributor
//! answers before a new script first runs on their machine, and the form that
//! submits a script task. Parsing what was typed is a plain function, tested
//! natively; the components only render and send messages.

use crate::words;
use manifest::allowlist::AllowedScript;
use manifest::events::{Outgoing, TaskSpec};
use manifest::limits::MAX_CHUNKS;
use manifest::task_kind::{ScriptTask, Split, TaskKind, DEFAULT_SCRIPT_SECONDS};
use manifest::validate::parse_task;
use serde_json::Value;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

/// What the submit form holds, as typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScriptForm {
    pub script: String,
    pub args: String,
    /// `start end size`, or a JSON array of chunk items.
    pub split: String,
    pub max_seconds: String,
}

/// Reads the form into a task running an allowed script, or says what is wrong.
pub fn to_script_spec(form: &ScriptForm, allowed: &[AllowedScript]) -> Result<TaskSpec, String> {
    let script = allowed
        .iter()
        .find(|s| s.name == form.script)
        .ok_or("'Script': pick one the room allows.")?;
    let args: Value = if form.args.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&form.args)
            .map_err(|e| format!("'Parameters' must be JSON, like {{\"power\": 2}} ({e})."))?
    };
    let split_text = form.split.trim();
    let split = if split_text.starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(split_text)
            .map_err(|e| format!("'Split' must be a JSON array, one item per piece ({e})."))?;
        Split::List(items)
    } else {
        let numbers: Vec<&str> = split_text.split_whitespace().collect();
        let [start, end, size] = numbers[..] else {
            return Err(
                "'Split' must be 'start end size' (a range) or a JSON array, one item per piece."
                    .into(),
            );
        };
        let number = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| format!("'Split': '{s}' is not a whole number."))
        };
        let size = number(size)?;
        let size = u64::try_from(size)
            .map_err(|_| "'Split': the size of each piece must be more than 0.")?;
        Split::Range {
            start: number(start)?,
            end: number(end)?,
            size,
        }
    };
    let chunks = split.len();
    if chunks == 0 || chunks > u64::from(MAX_CHUNKS) {
        return Err(format!(
            "'Split' makes {} pieces; it must make 1 to {}.",
            words::number(chunks),
            words::number(u64::from(MAX_CHUNKS))
        ));
    }
    let max_seconds = match form.max_seconds.trim() {
        "" => DEFAULT_SCRIPT_SECONDS,
        text => text
            .parse()
            .map_err(|_| "'Time limit' must be a whole number of seconds.".to_owned())?,
    };
    let kind = TaskKind::Script(ScriptTask {
        url: script.url.clone(),
        integrity: script.integrity.clone(),
        args,
        split,
        max_seconds,
    });
    let spec = TaskSpec::new(kind, chunks as u32);
    // Exactly the checks every node applies, so nothing is sent that they (or
    // the homeserver) would refuse.
    parse_task(&Outgoing::task(&spec).content).map_err(|e| e.to_string())?;
    Ok(spec)
}

#[derive(Properties, PartialEq)]
pub struct ConsentProps {
    pub asks: Vec<AllowedScript>,
    /// (integrity, allow)
    pub on_answer: Callback<(String, bool)>,
}

/// Before a script first runs on this machine, its friend sees what it is.
#[function_component(ConsentPrompt)]
pub fn consent_prompt(props: &ConsentProps) -> Html {
    html! {
        { for props.asks.iter().map(|script| {
            let answer = |allow: bool| {
                let on_answer = props.on_answer.clone();
                let integrity = script.integrity.clone();
                Callback::from(move |_| on_answer.emit((integrity.clone(), allow)))
            };
            html! {
                <div class="notice consent" role="alertdialog" aria-label={format!("Run {}?", script.name)} data-testid="consent">
                    <p><strong>{ format!("Run “{}” on this computer?", script.name) }</strong></p>
                    if !script.description.is_empty() { <p>{ &script.description }</p> }
                    <p class="who"><code>{ &script.url }</code></p>
                    <p class="who">{ "It runs sandboxed: it cannot read Potluck's storage or your Matrix account, but it can use the network." }</p>
                    <button onclick={answer(true)} data-testid="consent-allow">{ "Run it" }</button>
                    <button onclick={answer(false)} data-testid="consent-decline">{ "Decline" }</button>
                </div>
            }
        }) }
    }
}

#[derive(Properties, PartialEq)]
pub struct ScriptsProps {
    pub allowed: Vec<AllowedScript>,
    pub on_submit: Callback<TaskSpec>,
    /// A task with input files to upload first.
    pub on_submit_files: Callback<(TaskSpec, Vec<web_sys::File>)>,
    pub on_allow: Callback<AllowedScript>,
    /// Why the last allowlist change failed, if it did.
    pub allow_error: Option<String>,
}

fn bind_input(field: &UseStateHandle<String>) -> Callback<InputEvent> {
    let field = field.clone();
    Callback::from(move |e: InputEvent| {
        field.set(e.target_unchecked_into::<HtmlInputElement>().value())
    })
}

/// The allowlist, a form to submit a script task and one to allow a script.
#[function_component(Scripts)]
pub fn scripts(props: &ScriptsProps) -> Html {
    let form = use_state(|| ScriptForm {
        split: "0 100000 10000".into(),
        ..ScriptForm::default()
    });
    let error = use_state(|| None::<String>);
    let update = |apply: fn(&mut ScriptForm, String)| {
        let form = form.clone();
        move |value: String| {
            let mut next = (*form).clone();
            apply(&mut next, value);
            form.set(next);
        }
    };
    let on_script = {
        let set = update(|f, v| f.script = v);
        Callback::from(move |e: Event| set(e.target_unchecked_into::<HtmlSelectElement>().value()))
    };
    let on_args = {
        let set = update(|f, v| f.args = v);
        Callback::from(move |e: InputEvent| {
            set(e.target_unchecked_into::<HtmlTextAreaElement>().value())
        })
    };
    let on_split = {
        let set = update(|f, v| f.split = v);
        Callback::from(move |e: InputEvent| {
            set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_seconds = {
        let set = update(|f, v| f.max_seconds = v);
        Callback::from(move |e: InputEvent| {
            set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let files = use_node_ref();
    let onsubmit = {
        let (form, error, on_submit) = (form.clone(), error.clone(), props.on_submit.clone());
        let (files, on_submit_files) = (files.clone(), props.on_submit_files.clone());
        let allowed = props.allowed.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let mut typed = (*form).clone();
            if typed.script.is_empty() {
                typed.script = allowed.first().map(|s| s.name.clone()).unwrap_or_default();
            }
            match to_script_spec(&typed, &allowed) {
                Ok(spec) => {
                    error.set(None);
                    let chosen: Vec<web_sys::File> = files
                        .cast::<HtmlInputElement>()
                        .and_then(|input| input.files())
                        .map(|list| (0..list.length()).filter_map(|i| list.get(i)).collect())
                        .unwrap_or_default();
                    if chosen.is_empty() {
                        on_submit.emit(spec);
                    } else {
                        on_submit_files.emit((spec, chosen));
                    }
                }
                Err(message) => error.set(Some(message)),
            }
        })
    };

    let (name, url, integrity, description) = (
        use_state(String::new),
        use_state(String::new),
        use_state(String::new),
        use_state(String::new),
    );
    let on_allow_submit = {
        let (name, url, integrity, description) = (
            name.clone(),
            url.clone(),
            integrity.clone(),
            description.clone(),
        );
        let on_allow = props.on_allow.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            on_allow.emit(AllowedScript {
                name: name.trim().to_owned(),
                url: url.trim().to_owned(),
                integrity: integrity.trim().to_owned(),
                description: description.trim().to_owned(),
            });
        })
    };

    html! {
        <section class="scripts" aria-label="Your own scripts">
            <h2>{ "Run your own script" }</h2>
            if props.allowed.is_empty() {
                <p class="who">{ "This room allows no scripts yet. A moderator can allow one below." }</p>
            } else {
                <ul data-testid="allowlist">
                    { for props.allowed.iter().map(|s| html! {
                        <li><strong>{ &s.name }</strong>{ " " }<code class="who">{ &s.url }</code>
                            if !s.description.is_empty() { { format!(" — {}", s.description) } }</li>
                    }) }
                </ul>
                <form onsubmit={onsubmit} data-testid="script-form">
                    <select onchange={on_script} aria-label="Script" data-testid="script-name">
                        { for props.allowed.iter().map(|s| html! {
                            <option value={s.name.clone()} selected={s.name == form.script}>{ &s.name }</option>
                        }) }
                    </select>
                    <input type="text" value={form.split.clone()} oninput={on_split} aria-label="Split: start end size, or a JSON array" data-testid="script-split" />
                    <input type="number" min="1" placeholder={DEFAULT_SCRIPT_SECONDS.to_string()} value={form.max_seconds.clone()} oninput={on_seconds} aria-label="Time limit per piece (s)" data-testid="script-seconds" />
                    <textarea rows="2" placeholder="parameters (JSON)" value={form.args.clone()} oninput={on_args} aria-label="Parameters" data-testid="script-args" />
                    <label>{ "Input files " }<input type="file" multiple=true ref={files} aria-label="input files" data-testid="script-inputs" /></label>
                    <button type="submit" data-testid="script-submit">{ "Submit" }</button>
                </form>
                if let Some(e) = &*error { <p class="error" role="alert" data-testid="script-error">{ e }</p> }
            }
            <details>
                <summary>{ "Allow a script (moderators)" }</summary>
                <form onsubmit={on_allow_submit} data-testid="allow-form">
                    <input type="text" placeholder="name" value={(*name).clone()} oninput={bind_input(&name)} aria-label="name" />
                    <input type="url" placeholder="https://…/task.js" value={(*url).clone()} oninput={bind_input(&url)} aria-label="address" />
                    <input type="text" placeholder="sha384-…" value={(*integrity).clone()} oninput={bind_input(&integrity)} aria-label="integrity" />
                    <input type="text" placeholder="what it does" value={(*description).clone()} oninput={bind_input(&description)} aria-label="description" />
                    <button type="submit">{ "Allow" }</button>
                </form>
                if let Some(e) = &props.allow_error { <p class="error" role="alert" data-testid="allow-error">{ e }</p> }
            </details>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<AllowedScript> {
        vec![AllowedScript {
            name: "squares".into(),
            url: "https://x.org/squares.js".into(),
            integrity: format!("sha384-{}", "A".repeat(64)),
            description: String::new(),
        }]
    }

    fn form(split: &str, args: &str) -> ScriptForm {
        ScriptForm {
            script: "squares".into(),
            args: args.into(),
            split: split.into(),
            max_seconds: String::new(),
        }
    }

    #[test]
    fn a_range_or_a_list_becomes_a_task_of_the_allowed_script() {
        let spec = to_script_spec(&form("0 20000 1000", r#"{"power": 2}"#), &allowed()).unwrap();
        assert_eq!(spec.chunks, 20);
        let TaskKind::Script(script) = &spec.kind else {
            panic!()
        };
        assert_eq!(script.url, "https://x.org/squares.js");
        assert_eq!(script.args["power"], 2);
        let list = to_script_spec(&form(r#"["a", "b", "c"]"#, ""), &allowed()).unwrap();
        assert_eq!(list.chunks, 3);
    }

    #[test]
    fn typing_mistakes_get_a_reason() {
        let bad =
            |split: &str, args: &str| to_script_spec(&form(split, args), &allowed()).unwrap_err();
        assert!(bad("0 10", "").contains("start end size"));
        assert!(bad("0 10 1", "{oops").contains("must be JSON"));
        assert!(bad("0 10 -1", "").contains("more than 0"));
        assert!(bad("0 0 1", "").contains("makes 0 pieces"));
        assert!(bad("0 ten 1", "").starts_with("'Split'"));
        assert!(bad("0 10 1", r#"{"cx": -0.5}"#).contains("send it as a string"));
        let mut unknown = form("0 10 1", "");
        unknown.script = "miner".into();
        assert!(to_script_spec(&unknown, &allowed())
            .unwrap_err()
            .contains("allows"));
    }
}
