//! Everything about the widget's host (Element, or the test host): the URL it
//! opened us with, the capabilities we ask for, and the widget API.

pub mod capabilities;
pub mod params;
pub mod room;
pub mod widget_api;
