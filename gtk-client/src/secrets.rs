//! The session token in the Secret Service (GNOME Keyring, KeePassXC...),
//! looked up by server and account. Where no Secret Service answers, callers
//! keep the token in memory for this run only and say so.

use std::collections::HashMap;
use std::time::Duration;

use zeroize::Zeroizing;

const APP_ATTRIBUTE: &str = "org.ferrogram.Ferrogram";
/// D-Bus activation of a keyring that is not installed can take a while to fail.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// No Secret Service on the session bus (or no session bus).
    #[error("no Secret Service is available: {0}")]
    Unavailable(String),
    /// The service answered but refused (locked and the prompt dismissed...).
    #[error("the Secret Service refused: {0}")]
    Failed(String),
}

fn attributes<'a>(server: &'a str, email: &'a str) -> HashMap<&'a str, &'a str> {
    HashMap::from([
        ("application", APP_ATTRIBUTE),
        ("server", server),
        ("email", email),
    ])
}

async fn collection() -> Result<oo7::dbus::Collection<'static>, SecretError> {
    let connect = async {
        let service = oo7::dbus::Service::new()
            .await
            .map_err(|e| SecretError::Unavailable(e.to_string()))?;
        service
            .default_collection()
            .await
            .map_err(|e| SecretError::Failed(e.to_string()))
    };
    tokio::time::timeout(TIMEOUT, connect)
        .await
        .map_err(|_| SecretError::Unavailable("no answer in time".into()))?
}

/// Stores (or replaces) the token for `email` on `server`.
pub async fn store_token(server: &str, email: &str, token: &str) -> Result<(), SecretError> {
    let collection = collection().await?;
    let label = format!("Ferrogram session for {email} on {server}");
    collection
        .create_item(
            &label,
            &attributes(server, email),
            oo7::Secret::text(token),
            true,
            None,
        )
        .await
        .map(|_| ())
        .map_err(|e| SecretError::Failed(e.to_string()))
}

/// The stored token for `email` on `server`, if any.
pub async fn load_token(
    server: &str,
    email: &str,
) -> Result<Option<Zeroizing<String>>, SecretError> {
    let collection = collection().await?;
    let items = collection
        .search_items(&attributes(server, email))
        .await
        .map_err(|e| SecretError::Failed(e.to_string()))?;
    let Some(item) = items.first() else {
        return Ok(None);
    };
    let secret = item
        .secret()
        .await
        .map_err(|e| SecretError::Failed(e.to_string()))?;
    Ok(Some(Zeroizing::new(
        String::from_utf8_lossy(secret.as_bytes()).into_owned(),
    )))
}

/// Forgets the token (log out, account deleted).
pub async fn clear_token(server: &str, email: &str) -> Result<(), SecretError> {
    let collection = collection().await?;
    let items = collection
        .search_items(&attributes(server, email))
        .await
        .map_err(|e| SecretError::Failed(e.to_string()))?;
    for item in items {
        item.delete(None)
            .await
            .map_err(|e| SecretError::Failed(e.to_string()))?;
    }
    Ok(())
}
