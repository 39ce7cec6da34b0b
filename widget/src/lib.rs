//! The Potluck widget: what a friend sees in the room, and the glue that runs
//! their node. Decisions live in `manifest`; this crate moves messages between
//! it and the browser (widget API, Web Workers, timers) and renders.

pub mod audio;
pub mod clock;
pub mod driver;
pub mod host;
pub mod media;
pub mod pool;
pub mod read_json;
#[cfg(test)]
mod test_ledger;
pub mod ui;
pub mod view;
pub mod words;
pub mod work_today;

/// Mounts the app on the page's `<main id="app">` (or the body).
pub fn start() {
    console_error_panic_hook::set_once();
    let root = gloo::utils::document().get_element_by_id("app");
    match root {
        Some(root) => yew::Renderer::<ui::app::App>::with_root(root).render(),
        None => yew::Renderer::<ui::app::App>::new().render(),
    };
}
