//! Everything about the widget's host (Element, or the test host): the URL it
//! opened us with, and the widget API.

pub mod params;
pub mod room;
pub mod widget_api;
