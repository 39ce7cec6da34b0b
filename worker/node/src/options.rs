//! `potluck node`'s command line: which room, as whom, and what this machine
//! gives to it.

use potluck_worker::catalog::DEFAULT_HUB;
use std::path::PathBuf;

pub const USAGE: &str = "potluck node --homeserver URL --user @you:example.org --room '!room:example.org'|'#alias:example.org' [--data-dir DIR] [--accept primes,transcribe,kernels] [--workers N] [--memory MB] [--models URL]
    The password (first start only) in POTLUCK_PASSWORD, or an access token in POTLUCK_ACCESS_TOKEN.";

/// The kinds of work a native node can take: every kind but friends'
/// browser scripts, which need a browser's sandbox.
pub const NATIVE_KINDS: [&str; 3] = ["primes", "transcribe", "kernel"];

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub homeserver: String,
    pub user: String,
    /// A room id (`!…`) or alias (`#…`).
    pub room: String,
    /// Where the Matrix session, its encryption keys and the node's name are kept.
    pub data_dir: PathBuf,
    /// The kinds of work this node takes, as `caps.runs` names them.
    pub accept: Vec<String>,
    /// Chunks run at once, each on its own thread.
    pub workers: u32,
    /// Memory the owner lets Potluck count on, in MiB (announced to the room).
    pub memory_mb: Option<u32>,
    /// Where missing Whisper models are fetched from: the Hugging Face Hub,
    /// or a server with its path shape (the files are pinned either way).
    pub models: String,
}

/// `~/.local/share/potluck`, as the XDG base directories put a program's data.
fn default_data_dir() -> PathBuf {
    match std::env::var_os("XDG_DATA_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("potluck"),
        _ => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share/potluck")
        }
    }
}

/// One fewer than the machine's cores, so that its owner keeps one; at least one.
pub fn default_workers() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    cores.saturating_sub(1).max(1)
}

/// `--accept primes,transcribe,kernels`: the kinds, checked and in protocol
/// order. A browser script is refused with the reason.
fn parse_accept(list: &str) -> Result<Vec<String>, String> {
    let mut kinds = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = match name {
            "primes" => "primes",
            "transcribe" | "transcription" => "transcribe",
            "kernel" | "kernels" => "kernel",
            "script" | "scripts" => {
                return Err(
                    "a native node runs no browser scripts: they need a browser's sandbox".into(),
                )
            }
            other => {
                return Err(format!(
                    "--accept: unknown kind of work '{other}' (primes, transcribe, kernels)"
                ))
            }
        };
        kinds.push(kind);
    }
    if kinds.is_empty() {
        return Err("--accept names no kind of work (primes, transcribe, kernels)".into());
    }
    Ok(NATIVE_KINDS
        .iter()
        .filter(|k| kinds.contains(k))
        .map(|k| k.to_string())
        .collect())
}

/// Reads the arguments after `potluck node`.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut it = args.into_iter();
    let (mut homeserver, mut user, mut room) = (None, None, None);
    let mut data_dir = default_data_dir();
    let mut accept = NATIVE_KINDS.iter().map(|k| k.to_string()).collect();
    let (mut workers, mut memory_mb) = (default_workers(), None);
    let mut models = DEFAULT_HUB.to_owned();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--homeserver" => homeserver = Some(value()?),
            "--user" => user = Some(value()?),
            "--room" => room = Some(value()?),
            "--data-dir" => data_dir = PathBuf::from(value()?),
            "--accept" => accept = parse_accept(&value()?)?,
            "--workers" => {
                workers = value()?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--workers takes a number of at least 1")?
            }
            "--memory" => {
                memory_mb = Some(
                    value()?
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or("--memory takes megabytes, at least 1")?,
                )
            }
            "--models" => models = value()?,
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    let missing = |what: &str| format!("--{what} is needed");
    Ok(Options {
        homeserver: homeserver.ok_or_else(|| missing("homeserver"))?,
        user: user.ok_or_else(|| missing("user"))?,
        room: room.ok_or_else(|| missing("room"))?,
        data_dir,
        accept,
        workers,
        memory_mb,
        models,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_room_and_the_account_are_needed_the_rest_has_defaults() {
        let options = parse(args("--homeserver http://hs --user @bob:hs --room !r:hs")).unwrap();
        assert_eq!(options.accept, ["primes", "transcribe", "kernel"]);
        assert!(options.workers >= 1);
        assert!(options.data_dir.ends_with("potluck"));
        let error = parse(args("--homeserver http://hs --user @bob:hs")).unwrap_err();
        assert_eq!(error, "--room is needed");
    }

    #[test]
    fn accept_names_kinds_in_any_order_and_refuses_browser_scripts() {
        let base = "--homeserver http://hs --user @bob:hs --room !r:hs";
        let options = parse(args(&format!("{base} --accept kernels,primes --workers 3"))).unwrap();
        assert_eq!(
            (options.accept, options.workers),
            (vec!["primes".into(), "kernel".into()], 3)
        );
        let error = parse(args(&format!("{base} --accept primes,scripts"))).unwrap_err();
        assert!(error.contains("no browser scripts"), "{error}");
        let error = parse(args(&format!("{base} --accept dance"))).unwrap_err();
        assert!(error.contains("unknown kind of work 'dance'"), "{error}");
        assert!(parse(args(&format!("{base} --workers 0"))).is_err());
        assert!(parse(args(&format!("{base} --memory"))).is_err());
    }
}
