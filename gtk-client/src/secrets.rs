//! The session token in the Secret Service (GNOME Keyring, KeePassXC...),
//! looked up by server and account, with the password-derived key that opens
//! the private keys sealed on disk (so the app opens again without the
//! password). Where no Secret Service answers, callers keep the token in
//! memory for this run only and say so.

use std::collections::HashMap;
use std::time::Duration;

use ferrogram_client::WrapKey;
use ferrogram_core::b64::B64;
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

/// What the keyring keeps for one account.
pub struct KeptSession {
    pub token: Zeroizing<String>,
    /// Opens the sealed private keys (see `locked_keys`); absent in entries
    /// written before it was kept, which then need the password once.
    pub wrap_key: Option<WrapKey>,
}

impl KeptSession {
    /// The secret's text: `{"token":"...","wrap_key":"<base64>"}`.
    fn encode(&self) -> Zeroizing<String> {
        let key = self
            .wrap_key
            .as_ref()
            .map(|k| Zeroizing::new(B64::encode(k.as_bytes())));
        let value = serde_json::json!({
            "token": self.token.as_str(),
            "wrap_key": key.as_ref().map(|k| k.as_str()),
        });
        Zeroizing::new(value.to_string())
    }

    /// Reads what [`KeptSession::encode`] wrote, or a bare token (older entries).
    fn decode(text: &str) -> Self {
        let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(text) else {
            return Self {
                token: Zeroizing::new(text.to_owned()),
                wrap_key: None,
            };
        };
        let token = fields
            .get("token")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let wrap_key = fields
            .get("wrap_key")
            .and_then(serde_json::Value::as_str)
            .and_then(|k| B64::decode(k).ok())
            .map(Zeroizing::new)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
            .map(|mut bytes| {
                let key = WrapKey::from_bytes(bytes);
                zeroize::Zeroize::zeroize(&mut bytes);
                key
            });
        Self {
            token: Zeroizing::new(token.to_owned()),
            wrap_key,
        }
    }
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

/// Stores (or replaces) the session kept for `email` on `server`.
pub async fn store_session(
    server: &str,
    email: &str,
    kept: &KeptSession,
) -> Result<(), SecretError> {
    let collection = collection().await?;
    let label = format!("Ferrogram session for {email} on {server}");
    collection
        .create_item(
            &label,
            &attributes(server, email),
            oo7::Secret::text(kept.encode().as_str()),
            true,
            None,
        )
        .await
        .map(|_| ())
        .map_err(|e| SecretError::Failed(e.to_string()))
}

/// The session kept for `email` on `server`, if any.
pub async fn load_session(server: &str, email: &str) -> Result<Option<KeptSession>, SecretError> {
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
    let text = Zeroizing::new(String::from_utf8_lossy(secret.as_bytes()).into_owned());
    Ok(Some(KeptSession::decode(&text)))
}

/// Forgets the kept session (log out, account deleted).
pub async fn clear_session(server: &str, email: &str) -> Result<(), SecretError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_session_round_trips() {
        let kept = KeptSession {
            token: Zeroizing::new("tok-123".into()),
            wrap_key: Some(WrapKey::from_bytes([7; 32])),
        };
        let back = KeptSession::decode(&kept.encode());
        assert_eq!(back.token.as_str(), "tok-123");
        assert_eq!(back.wrap_key.map(|k| *k.as_bytes()), Some([7; 32]));
    }

    #[test]
    fn a_bare_token_from_an_older_entry_has_no_key() {
        let back = KeptSession::decode("plain-token");
        assert_eq!(back.token.as_str(), "plain-token");
        assert!(back.wrap_key.is_none());
        let no_key = KeptSession {
            token: Zeroizing::new("t".into()),
            wrap_key: None,
        };
        assert!(KeptSession::decode(&no_key.encode()).wrap_key.is_none());
    }

    #[test]
    fn a_damaged_key_is_dropped_not_misread() {
        let back = KeptSession::decode(r#"{"token":"t","wrap_key":"AAAA"}"#);
        assert_eq!(back.token.as_str(), "t");
        assert!(back.wrap_key.is_none());
    }
}
