//! The widget in headless Chromium.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::*;
use widget::ui::app::App;

wasm_bindgen_test_configure!(run_in_browser);

async fn render_app() -> web_sys::Element {
    let document = gloo::utils::document();
    let root = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&root).unwrap();
    yew::Renderer::<App>::with_root(root.clone()).render();
    // Yew renders on its own schedule: wait until something is on screen.
    for _ in 0..100 {
        if root.child_element_count() > 0 {
            return root;
        }
        gloo::timers::future::TimeoutFuture::new(50).await;
    }
    panic!("the app rendered nothing within 5 s");
}

#[wasm_bindgen_test]
async fn opened_outside_a_matrix_client_it_explains_and_sends_nothing() {
    // The test page has no widgetId/parentUrl: exactly what a friend sees
    // when opening the widget's URL directly in a tab.
    let root = render_app().await;
    let text = root.text_content().unwrap_or_default();
    assert!(text.contains("Potluck is not running"), "{text}");
    assert!(text.contains("/addwidget"), "{text}");
    assert!(root
        .query_selector("[data-testid=contribute]")
        .unwrap()
        .is_none());
}

#[wasm_bindgen_test]
fn the_browser_reports_at_least_one_core() {
    let cores = widget::pool::machine_info::logical_cores();
    assert!(cores >= 1);
    assert!(widget::pool::machine_info::default_slots(cores) >= 1);
}
