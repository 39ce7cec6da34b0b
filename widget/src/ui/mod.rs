//! Yew components: small and dumb. `app` owns the state; the rest render props.

pub mod app;
pub mod contribute;
pub mod gpu_demo;
pub mod pool_list;
pub mod scripts;
pub mod submit_form;
pub mod task_list;
pub mod tiles;
pub mod voice_list;
