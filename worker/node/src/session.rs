//! The node's Matrix account on this machine: a password login the first
//! time (or an access token), then the stored session, with its encryption
//! keys in a persistent store, as Element keeps its own.

use crate::options::Options;
use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::RequestConfig;
use matrix_sdk::{Client, SessionMeta, SessionTokens};
use std::path::{Path, PathBuf};

pub const PASSWORD_VAR: &str = "POTLUCK_PASSWORD";
pub const TOKEN_VAR: &str = "POTLUCK_ACCESS_TOKEN";

/// This account's folder in the data directory: one machine may run a node
/// for several accounts.
pub fn account_dir(data_dir: &Path, user: &str) -> PathBuf {
    let name: String = user
        .trim_start_matches('@')
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '_',
        })
        .collect();
    data_dir.join(name)
}

/// A client logged in as `options.user`, its store under the data directory.
pub async fn connect(options: &Options) -> Result<Client, String> {
    let dir = account_dir(&options.data_dir, &options.user);
    create_private_dir(&dir)?;
    let client = Client::builder()
        .homeserver_url(&options.homeserver)
        .sqlite_store(dir.join("store"), None)
        // The node's own outbox paces and retries sends under the
        // homeserver's rate limit: the client should say at once when one
        // is refused, not wait it out itself.
        .request_config(RequestConfig::new().disable_retry())
        .build()
        .await
        .map_err(|e| format!("cannot use the homeserver {}: {e}", options.homeserver))?;
    let session_file = dir.join("session.json");
    if let Ok(token) = std::env::var(TOKEN_VAR) {
        return restore_with_token(client, token).await;
    }
    if let Ok(saved) = std::fs::read_to_string(&session_file) {
        let session: MatrixSession = serde_json::from_str(&saved)
            .map_err(|e| format!("{}: not a saved session ({e})", session_file.display()))?;
        client
            .restore_session(session)
            .await
            .map_err(|e| format!("the saved session did not restore: {e}"))?;
        tracing::info!(user = %options.user, "restored the saved session");
        return Ok(client);
    }
    let Ok(password) = std::env::var(PASSWORD_VAR) else {
        return Err(format!(
            "no saved session in {}: give the password once in {PASSWORD_VAR}, or an access token in {TOKEN_VAR}",
            dir.display()
        ));
    };
    client
        .matrix_auth()
        .login_username(&options.user, &password)
        .initial_device_display_name("Potluck node")
        .send()
        .await
        .map_err(|e| format!("login as {} failed: {e}", options.user))?;
    let session = client
        .matrix_auth()
        .session()
        .ok_or("logged in, but the client kept no session")?;
    save_session(&session_file, &session)?;
    tracing::info!(user = %options.user, device = %session.meta.device_id, "logged in; the session is saved for the next start");
    Ok(client)
}

/// An access token names its user and device: the homeserver says which.
async fn restore_with_token(client: Client, access_token: String) -> Result<Client, String> {
    let tokens = SessionTokens {
        access_token,
        refresh_token: None,
    };
    // The session's device must be the token's own: the homeserver says which.
    let url = client
        .homeserver()
        .join("_matrix/client/v3/account/whoami")
        .map_err(|e| e.to_string())?;
    let answer = matrix_sdk::reqwest::Client::new()
        .get(url)
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("the homeserver did not take the access token: {e}"))?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let whoami: serde_json::Value = serde_json::from_str(&answer).map_err(|e| e.to_string())?;
    let user_id = whoami["user_id"].as_str().and_then(|u| u.try_into().ok());
    let device_id = whoami["device_id"].as_str().map(Into::into);
    let (Some(user_id), Some(device_id)) = (user_id, device_id) else {
        return Err("the access token belongs to no device; log in with a password instead".into());
    };
    let session = MatrixSession {
        meta: SessionMeta { user_id, device_id },
        tokens,
    };
    client
        .restore_session(session)
        .await
        .map_err(|e| format!("the access token did not restore a session: {e}"))?;
    Ok(client)
}

fn save_session(path: &Path, session: &MatrixSession) -> Result<(), String> {
    let json = serde_json::to_string(session).map_err(|e| e.to_string())?;
    // Written whole, then renamed: never a half-written session.
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, json)
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The account's folder, readable by its owner only: it holds the access
/// token and the encryption keys.
fn create_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_account_has_its_own_folder_with_a_plain_name() {
        let dir = account_dir(Path::new("/data"), "@bob:example.org:8448");
        assert_eq!(dir, Path::new("/data/bob_example.org_8448"));
    }
}
