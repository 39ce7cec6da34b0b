//! The widget's URL parameters. Element adds `widgetId` and `parentUrl`; the
//! rest come from the template in the widget's URL (see the README).

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
    /// Element's "light-high-contrast".
    LightHighContrast,
}

impl Theme {
    /// Element passes its theme's name; custom themes are named by their users.
    pub fn from_client(name: &str) -> Self {
        let name = name.to_ascii_lowercase();
        if name.contains("dark") {
            Theme::Dark
        } else if name.contains("high-contrast") {
            Theme::LightHighContrast
        } else {
            Theme::Light
        }
    }

    /// The class Element's design tokens (Compound) style the page by.
    pub fn class(self) -> &'static str {
        match self {
            Theme::Light => "cpd-theme-light",
            Theme::Dark => "cpd-theme-dark",
            Theme::LightHighContrast => "cpd-theme-light-hc",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetParams {
    pub widget_id: String,
    /// Origin of the host page: the only origin whose messages we accept.
    pub parent_origin: String,
    pub user_id: String,
    pub room_id: String,
    pub theme: Theme,
    /// Where Whisper models come from: the Hugging Face Hub, or a server
    /// with its path shape that the widget URL names (`models=`).
    pub models: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamsError {
    #[error("Potluck runs inside a Matrix room. Add it to a room in Element with /addwidget and open it there.")]
    OutsideHost,
    #[error("The widget URL lacks '{0}'. Add it again with the URL from the Potluck README.")]
    Missing(&'static str),
    #[error("The host's address '{0}' is not a valid URL.")]
    BadParentUrl(String),
    #[error("The widget URL's models= '{0}' is not an http(s) address. Fix the widget's URL, or leave models= out to use the Hugging Face Hub.")]
    BadModelsUrl(String),
}

/// Reads the parameters from `(name, value)` pairs of the query string.
pub fn parse<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<WidgetParams, ParamsError> {
    let mut widget_id = None;
    let mut parent_url = None;
    let mut user_id = None;
    let mut room_id = None;
    let mut theme = Theme::Light;
    let mut models = None;
    for (name, value) in pairs {
        // An unfilled template variable (`$matrix_user_id`) means the host did not fill it.
        let value = Some(value.to_owned()).filter(|v| !v.is_empty() && !v.starts_with('$'));
        match name {
            "widgetId" => widget_id = value,
            "parentUrl" => parent_url = value,
            "user" | "matrix_user_id" => user_id = value,
            "room" | "matrix_room_id" => room_id = value,
            "theme" => theme = value.map_or(Theme::Light, |v| Theme::from_client(&v)),
            "models" => models = value,
            _ => {}
        }
    }
    let (Some(widget_id), Some(parent_url)) = (widget_id, parent_url) else {
        return Err(ParamsError::OutsideHost);
    };
    let parent_origin = origin_of(&parent_url).ok_or(ParamsError::BadParentUrl(parent_url))?;
    let models = match models {
        None => DEFAULT_MODELS_HUB.to_owned(),
        Some(url) if origin_of(&url).is_some() => url,
        Some(url) => return Err(ParamsError::BadModelsUrl(url)),
    };
    Ok(WidgetParams {
        widget_id,
        parent_origin,
        user_id: user_id.ok_or(ParamsError::Missing("user=$matrix_user_id"))?,
        room_id: room_id.ok_or(ParamsError::Missing("room=$matrix_room_id"))?,
        theme,
        models,
    })
}

/// The Hugging Face Hub, where Systran's conversions of the pinned models live.
pub const DEFAULT_MODELS_HUB: &str = "https://huggingface.co";

/// `scheme://host[:port]` of an absolute http(s) URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_element_passes() {
        let params = parse([
            ("user", "@alice:localhost"),
            ("room", "!abc:localhost"),
            ("theme", "dark"),
            ("widgetId", "potluck"),
            ("parentUrl", "http://127.0.0.1:8080/#/room/!abc:localhost"),
        ])
        .unwrap();
        assert_eq!(params.parent_origin, "http://127.0.0.1:8080");
        assert_eq!(params.theme, Theme::Dark);
        assert_eq!(params.user_id, "@alice:localhost");
        assert_eq!(params.models, DEFAULT_MODELS_HUB);
    }

    #[test]
    fn models_come_from_the_hub_unless_the_url_names_a_mirror() {
        let with = |models: &str| {
            parse([
                ("widgetId", "w"),
                ("parentUrl", "https://app.element.io/"),
                ("user", "@a:hs"),
                ("room", "!r:hs"),
                ("models", models),
            ])
        };
        assert_eq!(
            with("https://models.example.org/hub").unwrap().models,
            "https://models.example.org/hub"
        );
        assert_eq!(
            with("ftp://nope"),
            Err(ParamsError::BadModelsUrl("ftp://nope".into()))
        );
    }

    #[test]
    fn opened_directly_it_says_so() {
        assert_eq!(parse([]), Err(ParamsError::OutsideHost));
        assert_eq!(parse([("user", "@a:b")]), Err(ParamsError::OutsideHost));
    }

    #[test]
    fn unfilled_template_variables_are_missing_parameters() {
        let result = parse([
            ("widgetId", "w"),
            ("parentUrl", "https://app.element.io/"),
            ("user", "$matrix_user_id"),
            ("room", "!r:hs"),
        ]);
        assert_eq!(result, Err(ParamsError::Missing("user=$matrix_user_id")));
    }

    #[test]
    fn element_and_custom_theme_names_map_to_a_compound_theme() {
        assert_eq!(Theme::from_client("Nord Dark"), Theme::Dark);
        assert_eq!(Theme::from_client("light"), Theme::Light);
        assert_eq!(
            Theme::from_client("light-high-contrast"),
            Theme::LightHighContrast
        );
    }
}
