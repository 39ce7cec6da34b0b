//! Identifier newtypes that validate on construction, so that a malformed id
//! from the room can never reach the ledger. User, event and node ids are
//! shared (`Arc<str>`): the ledger keys many maps by them, and cloning one
//! costs a reference count, not an allocation.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::{Arc, LazyLock};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("'{0}' is not a Matrix user id (expected @name:server)")]
    User(String),
    #[error("'{0}' is not a Matrix event id (expected $…)")]
    Event(String),
    #[error("'{0}' is not a Potluck node id (expected tag|@name:server)")]
    Node(String),
    #[error("'{0}' is not a Matrix content URI (expected mxc://server/media-id)")]
    Mxc(String),
    #[error("id is longer than {max} bytes")]
    TooLong { max: usize },
}

/// Matrix caps identifiers at 255 bytes; so do we.
const MAX_ID_LEN: usize = 255;

fn check_len(s: &str) -> Result<(), IdError> {
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { max: MAX_ID_LEN });
    }
    Ok(())
}

/// `@localpart:server`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(Arc<str>);

impl UserId {
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check_len(&s)?;
        let valid = s.starts_with('@')
            && s[1..].split_once(':').is_some_and(|(local, server)| {
                !local.is_empty() && !server.is_empty() && !s.contains(char::is_whitespace)
            });
        if valid {
            Ok(Self(s.into()))
        } else {
            Err(IdError::User(s))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The part a person reads: `alice` for `@alice:example.org`.
    pub fn localpart(&self) -> &str {
        self.0[1..].split(':').next().unwrap_or_default()
    }
}

/// `$opaque`: the homeserver's id for an event. A task's id is its event id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(Arc<str>);

impl EventId {
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check_len(&s)?;
        if s.len() > 1 && s.starts_with('$') && !s.contains(char::is_whitespace) {
            Ok(Self(s.into()))
        } else {
            Err(IdError::Event(s))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The first 8 characters, enough to tell tasks apart in a list.
    pub fn short(&self) -> String {
        self.0.chars().take(8).collect()
    }
}

/// One browser tab contributing compute: `<tag>|<user id>`. The user id lets
/// every node check that a node's events come from the account that owns it.
/// It comes last because homeservers refuse state keys that start with `@`
/// unless they are exactly the sender's id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// Sorts before every valid node id: the start of a range over a map keyed by node.
    pub fn min() -> NodeId {
        static MIN: LazyLock<NodeId> = LazyLock::new(|| NodeId(Arc::from("")));
        MIN.clone()
    }

    pub fn new(owner: &UserId, tag: &str) -> Result<Self, IdError> {
        Self::parse(format!("{}|{}", tag, owner.as_str()))
    }
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check_len(&s)?;
        match s.split_once('|') {
            Some((tag, user))
                if UserId::parse(user).is_ok()
                    && !tag.is_empty()
                    && tag
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                Ok(Self(s.into()))
            }
            _ => Err(IdError::Node(s)),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The account that owns this node.
    pub fn owner(&self) -> UserId {
        let user = self.0.split_once('|').map_or("", |(_, user)| user);
        UserId(user.into())
    }
    pub fn is_owned_by(&self, user: &UserId) -> bool {
        self.0.split_once('|').map(|(_, owner)| owner) == Some(user.as_str())
    }
}

/// `mxc://server/media-id`: a file in the homeserver's media repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MxcUri(String);

impl MxcUri {
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check_len(&s)?;
        let valid = s
            .strip_prefix("mxc://")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(server, media)| {
                is_server_name(server)
                    && !media.is_empty()
                    && media
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if valid {
            Ok(Self(s))
        } else {
            Err(IdError::Mxc(s))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Matrix server name: a DNS name, an IPv4 address or a bracketed IPv6
/// address, with an optional port (the spec's appendix on server names).
/// Dots alone (`..`), an empty host (`:`) or empty brackets are not one.
fn is_server_name(server: &str) -> bool {
    let (host_ok, port) = match server.strip_prefix('[') {
        Some(rest) => {
            let Some((ipv6, after)) = rest.split_once(']') else {
                return false;
            };
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(port) => Some(port),
                    None => return false,
                },
            };
            let ipv6_ok = ipv6.contains(':')
                && ipv6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
            (ipv6_ok, port)
        }
        None => {
            let (host, port) = match server.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (server, None),
            };
            (is_dns_name(host), port)
        }
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// A DNS name or IPv4 address: non-empty labels of letters, digits and '-'.
fn is_dns_name(host: &str) -> bool {
    (1..=255).contains(&host.len())
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

macro_rules! string_conversions {
    ($($ty:ident),*) => {$(
        impl TryFrom<String> for $ty {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
        impl From<$ty> for String {
            fn from(id: $ty) -> String {
                id.0.to_string()
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
string_conversions!(UserId, EventId, NodeId, MxcUri);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mxc_uris_name_a_real_server_name() {
        for good in [
            "mxc://localhost/abc",
            "mxc://matrix.org/AbC_-1",
            "mxc://127.0.0.1:8008/x",
            "mxc://[::1]:8448/x",
            "mxc://[2001:db8::1]/x",
        ] {
            assert!(MxcUri::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "mxc://../x",
            "mxc://./x",
            "mxc://:/x",
            "mxc://[]/x",
            "mxc://host:/x",
            "mxc://host:123456/x",
            "mxc://[::1]x/x",
            "mxc://a..b/x",
            "mxc://host/../x",
        ] {
            assert!(MxcUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_ids_need_sigil_localpart_and_server() {
        assert!(UserId::parse("@alice:localhost").is_ok());
        assert_eq!(
            UserId::parse("@alice:localhost").unwrap().localpart(),
            "alice"
        );
        for bad in [
            "alice:localhost",
            "@alice",
            "@:localhost",
            "@a:",
            "@a b:c",
            "",
        ] {
            assert!(UserId::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn node_ids_name_their_owner() {
        let alice = UserId::parse("@alice:localhost").unwrap();
        let node = NodeId::new(&alice, "tab1").unwrap();
        assert_eq!(node.as_str(), "tab1|@alice:localhost");
        assert!(node.is_owned_by(&alice));
        assert!(!node.is_owned_by(&UserId::parse("@alice:localhost.evil").unwrap()));
        assert_eq!(node.owner(), alice);
        for bad in [
            "@alice:localhost",
            "|@alice:localhost",
            "x|alice",
            "x y|@a:b",
            "@a:b|x",
        ] {
            assert!(NodeId::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn content_uris_name_a_server_and_a_media_id() {
        assert!(MxcUri::parse("mxc://example.org/AbC_12-x").is_ok());
        assert!(MxcUri::parse("mxc://127.0.0.1:8008/abc").is_ok());
        for bad in [
            "http://example.org/abc",
            "mxc://example.org/",
            "mxc:///abc",
            "mxc://ex/a/b",
            "mxc://e x/a",
        ] {
            assert!(MxcUri::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn short_event_ids_cut_at_characters_not_bytes() {
        let id = EventId::parse("$éééééééééé").unwrap();
        assert_eq!(id.short(), "$ééééééé");
    }

    #[test]
    fn overlong_ids_are_rejected() {
        let long = format!("${}", "x".repeat(300));
        assert_eq!(EventId::parse(long), Err(IdError::TooLong { max: 255 }));
    }
}
