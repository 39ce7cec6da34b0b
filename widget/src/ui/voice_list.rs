//! The room's voice messages, newest first, each with its transcript's state.
//! Transcribe from the row's context menu (right-click, the context-menu key
//! or Shift+F10) or its button (touch screens).

use crate::view::{VoiceRow, VoiceState};
use crate::words;
use manifest::ids::EventId;
use manifest::transcription::WhisperModel;
use manifest::voice::VoiceMessage;
use wasm_bindgen_futures::JsFuture;
use web_sys::{HtmlElement, HtmlSelectElement, KeyboardEvent, MouseEvent};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub rows: Vec<VoiceRow>,
    pub on_transcribe: Callback<(VoiceMessage, WhisperModel)>,
}

/// The open context menu: which message, and where (page coordinates).
#[derive(Clone, PartialEq)]
struct Menu {
    message: EventId,
    x: i32,
    y: i32,
}

fn clock_time(ms: u64) -> String {
    let date = js_sys::Date::new(&(ms as f64).into());
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

fn duration(ms: Option<u64>) -> String {
    ms.map(|ms| format!(" · {}", words::duration(ms)))
        .unwrap_or_default()
}

fn state_class(state: &VoiceState) -> &'static str {
    match state {
        VoiceState::NotTranscribed => "none",
        VoiceState::Queued => "queued",
        VoiceState::Running { .. } => "running",
        VoiceState::Done { .. } => "done",
        VoiceState::Failed { .. } => "failed",
    }
}

/// Whether asking again makes sense: never while one runs.
fn can_transcribe(state: &VoiceState) -> bool {
    !matches!(state, VoiceState::Queued | VoiceState::Running { .. })
}

#[function_component(VoiceList)]
pub fn voice_list(props: &Props) -> Html {
    let model = use_state(WhisperModel::default);
    let menu = use_state(|| None::<Menu>);
    let copied = use_state(|| None::<EventId>);
    // `autofocus` is refused in a cross-origin frame: focus the menu by hand,
    // so that the keyboard lands in it.
    let first_item = use_node_ref();
    {
        let first_item = first_item.clone();
        use_effect_with((*menu).clone(), move |open| {
            if open.is_some() {
                if let Some(button) = first_item.cast::<HtmlElement>() {
                    let _ = button.focus();
                }
            }
        });
    }

    let on_model = {
        let model = model.clone();
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            model.set(WhisperModel::parse(&select.value()).unwrap_or_default());
        })
    };
    let transcribe = {
        let on_transcribe = props.on_transcribe.clone();
        let model = model.clone();
        let menu = menu.clone();
        move |message: VoiceMessage| {
            menu.set(None);
            on_transcribe.emit((message, *model));
        }
    };

    let rows = props.rows.iter().map(|row| {
        let message = row.message.clone();
        let id = message.event_id.clone();
        let open_at = {
            let menu = menu.clone();
            let id = id.clone();
            move |x: i32, y: i32| menu.set(Some(Menu { message: id.clone(), x, y }))
        };
        let on_context = {
            let open_at = open_at.clone();
            Callback::from(move |e: MouseEvent| {
                e.prevent_default();
                open_at(e.page_x(), e.page_y());
            })
        };
        let on_key = {
            let open_at = open_at.clone();
            Callback::from(move |e: KeyboardEvent| {
                if e.key() == "ContextMenu" || (e.shift_key() && e.key() == "F10") {
                    e.prevent_default();
                    let row: HtmlElement = e.target_unchecked_into();
                    let rect = row.get_bounding_client_rect();
                    let scroll = gloo::utils::window().scroll_y().unwrap_or_default();
                    open_at(rect.left() as i32 + 16, (rect.top() + scroll) as i32 + 16);
                }
            })
        };
        let on_button = {
            let transcribe = transcribe.clone();
            let message = message.clone();
            Callback::from(move |_| transcribe(message.clone()))
        };
        let on_copy = |text: String| {
            let copied = copied.clone();
            let id = id.clone();
            Callback::from(move |_| {
                let clipboard = gloo::utils::window().navigator().clipboard();
                let copied = copied.clone();
                let id = id.clone();
                let promise = clipboard.write_text(&text);
                wasm_bindgen_futures::spawn_local(async move {
                    // Refused in a frame without clipboard permission: the text stays selectable.
                    if JsFuture::from(promise).await.is_ok() {
                        copied.set(Some(id));
                    }
                });
            })
        };
        let kind = if message.voice { "voice" } else { "audio" };
        html! {
            <li class={classes!("voice", state_class(&row.state))} tabindex="0" data-testid="voice"
                data-event-id={id.to_string()} data-state={state_class(&row.state)}
                oncontextmenu={on_context} onkeydown={on_key}
                aria-label={format!("{} from {}, right-click or Shift+F10 for actions", message.body, message.sender.localpart())}>
                <div class="what">
                    <span class="kind">{ kind }</span>{ " " }
                    <strong>{ message.sender.localpart() }</strong>
                    { format!(" · {}{}", clock_time(message.sent_at), duration(message.duration_ms)) }
                </div>
                { match &row.state {
                    VoiceState::NotTranscribed => html! { <span class="status" role="status">{ "Not transcribed yet" }</span> },
                    VoiceState::Queued => html! { <span class="status" role="status">{ "Waiting for a friend's machine to transcribe it" }</span> },
                    VoiceState::Running { fraction } => html! {
                        <><progress max="100" value={words::whole_percent(*fraction).to_string()} aria-label="Transcribing" />
                        <span class="status" role="status">{ format!("Transcribing: {}", words::percent(*fraction)) }</span></>
                    },
                    VoiceState::Done { text } => html! {
                        <div class="transcript">
                            <textarea readonly=true data-testid="transcript" rows="3" value={text.clone()}
                                aria-label={format!("Transcript of {}'s voice message", message.sender.localpart())} />
                            <button class="copy" onclick={on_copy(text.clone())}>
                                { if copied.as_ref() == Some(&id) { "Copied" } else { "Copy" } }
                            </button>
                        </div>
                    },
                    VoiceState::Failed { reason } => html! {
                        <span class="status failed" role="status" data-testid="voice-failure">{ format!("Failed: {reason}") }</span>
                    },
                } }
                if can_transcribe(&row.state) {
                    <button class="transcribe" data-testid="transcribe-button" onclick={on_button}>
                        { if matches!(row.state, VoiceState::NotTranscribed) { "Transcribe" } else { "Transcribe again" } }
                    </button>
                }
            </li>
        }
    });

    let context_menu = (*menu).clone().and_then(|open| {
        let row = props.rows.iter().find(|r| r.message.event_id == open.message)?;
        let message = row.message.clone();
        let on_item = {
            let transcribe = transcribe.clone();
            Callback::from(move |_| transcribe(message.clone()))
        };
        let close = {
            let menu = menu.clone();
            Callback::from(move |_| menu.set(None))
        };
        let on_menu_key = {
            let menu = menu.clone();
            Callback::from(move |e: KeyboardEvent| {
                if e.key() == "Escape" {
                    menu.set(None);
                }
            })
        };
        Some(html! {
            <div class="context-menu" role="menu" data-testid="voice-menu" onkeydown={on_menu_key}
                style={format!("left: {}px; top: {}px", open.x, open.y)}>
                <button role="menuitem" data-testid="menu-transcribe" ref={first_item.clone()}
                    disabled={!can_transcribe(&row.state)} onclick={on_item}>{ "Transcribe" }</button>
                <button role="menuitem" onclick={close}>{ "Close" }</button>
            </div>
        })
    });

    html! {
        <section class="voices" aria-label="Voice messages">
            <h2>{ format!("Voice messages ({})", words::number(props.rows.len() as u64)) }</h2>
            <label class="model">{ "Model " }
                <select data-testid="model" onchange={on_model}>
                    { for WhisperModel::ALL.iter().map(|m| html! {
                        <option value={m.name()} selected={*m == *model}>{ m.label() }</option>
                    }) }
                </select>
            </label>
            if props.rows.is_empty() {
                <p class="hint">{ "No voice messages yet." }</p>
            }
            <ul>{ for rows }</ul>
            { context_menu.unwrap_or_default() }
            <p class="hint">{ "Only messages your Matrix client has loaded show here. For an older one, forward it into this room and it appears here. In the chat, replying “!transcribe” to a voice message works too, without the widget." }</p>
        </section>
    }
}
