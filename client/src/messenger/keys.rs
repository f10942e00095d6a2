//! Trust on first use: which keys to encrypt to and which keys a received
//! envelope may be verified with.
//!
//! The first keys seen for a contact are pinned in the store. Later the
//! server's answer is only believed when it matches the pin; other keys are
//! recorded as a pending change (reported once per key as
//! [`ClientEvent::KeyChanged`]), nothing is encrypted to them, and messages
//! signed with them are flagged, until the user accepts the change.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferrogram_core::commands;
use ferrogram_core::crypto::fingerprint::fingerprint_bytes;
use ferrogram_core::crypto::{self};
use ferrogram_core::ids::UserId;
use ferrogram_core::proto::{GetUserKeysRequest, PublicKeys, UserKeys};
use ferrogram_core::ErrorCode;

use super::{fingerprint, ClientEvent, ContactKeys, Core, MessengerError, Result};
use crate::error::ClientError;
use crate::error::KeyError;
use crate::store::{self, Pin};

/// How long keys fetched for sending are reused: a message to a big group
/// does not ask for every member's keys again for each message, and a key
/// change is still noticed within this time.
const RECENT_KEYS_TTL: Duration = Duration::from_secs(30);

/// Keys recently fetched for sending, by user.
#[derive(Default)]
pub(crate) struct RecentKeys(Mutex<HashMap<UserId, (PublicKeys, Instant)>>);

impl RecentKeys {
    fn get(&self, user: UserId) -> Option<PublicKeys> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&user)
            .filter(|(_, at)| at.elapsed() < RECENT_KEYS_TTL)
            .map(|(keys, _)| keys.clone())
    }

    fn put(&self, user: UserId, keys: &PublicKeys) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, (_, at)| at.elapsed() < RECENT_KEYS_TTL);
        map.insert(user, (keys.clone(), Instant::now()));
    }

    fn forget(&self, user: UserId) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(&user);
    }
}

/// The keys a received envelope is checked with.
pub(crate) enum SenderKeys {
    /// This account's own keys.
    Own(PublicKeys),
    /// The pinned keys.
    Pinned { keys: PublicKeys, verified: bool },
    /// Keys the server lists now, different from the pin: flagged.
    Changed(PublicKeys),
    /// No keys to check with: refused for this reason.
    Unknown(String),
}

/// `user.keys` over the socket, checked like the REST client checks it: the
/// right user, sane keys, and a fingerprint recomputed here.
pub(crate) async fn fetch_keys(core: &Core, user_id: UserId) -> Result<PublicKeys> {
    let keys: UserKeys = core
        .call::<commands::GetUserKeys>(&GetUserKeysRequest { id: user_id }, true)
        .await?;
    let protocol = |text: String| MessengerError::Client(ClientError::Protocol(text));
    if keys.user_id != user_id {
        return Err(protocol(format!(
            "asked for the keys of user {user_id}, got those of {}",
            keys.user_id
        )));
    }
    crypto::validate_public_keys(&keys.public_keys)
        .map_err(|source| KeyError::InvalidPublicKeys { user_id, source })?;
    if !crypto::fingerprints_match(&fingerprint(&keys.public_keys), &keys.fingerprint) {
        return Err(KeyError::FingerprintMismatch(user_id).into());
    }
    Ok(keys.public_keys)
}

/// Records `keys` as a pending change of `user_id`'s pin and reports it once.
async fn report_change(core: &Core, user_id: UserId, pin: &Pin, keys: &PublicKeys) -> Result<()> {
    let store = core.store()?;
    let new_keys = keys.clone();
    let first_report = store
        .run(move |conn| store::set_pending(conn, user_id, &new_keys))
        .await?;
    if first_report {
        tracing::warn!(user = %user_id, "a contact's keys changed");
        core.emit(ClientEvent::KeyChanged {
            user_id,
            old_fingerprint: fingerprint(&pin.keys),
            new_fingerprint: fingerprint(keys),
        });
    }
    Ok(())
}

async fn load_pin(core: &Core, user_id: UserId) -> Result<Option<Pin>> {
    core.store()?
        .run(move |conn| store::pin(conn, user_id))
        .await
        .map_err(MessengerError::from)
}

async fn pin_first_seen(core: &Core, user_id: UserId, keys: &PublicKeys) -> Result<Pin> {
    let keys = keys.clone();
    core.store()?
        .run(move |conn| store::pin_first_seen(conn, user_id, &keys))
        .await
        .map_err(MessengerError::from)
}

/// The keys to encrypt to for `user_id`: fetched fresh, pinned on first
/// sight, refused (`KeyChanged`) when they differ from the pin.
pub(crate) async fn keys_for_sending(core: &Core, user_id: UserId) -> Result<PublicKeys> {
    if user_id == core.me {
        return Ok(core.my_keys.clone());
    }
    if let Some(keys) = core.recent_keys.get(user_id) {
        return Ok(keys);
    }
    let fetched = fetch_keys(core, user_id).await?;
    if core.store.is_none() {
        // Commands-only mode keeps no pins: the caller chose not to.
        core.recent_keys.put(user_id, &fetched);
        return Ok(fetched);
    }
    let pin = match load_pin(core, user_id).await? {
        Some(pin) => pin,
        None => pin_first_seen(core, user_id, &fetched).await?,
    };
    if pin.keys == fetched {
        core.recent_keys.put(user_id, &fetched);
        return Ok(fetched);
    }
    report_change(core, user_id, &pin, &fetched).await?;
    Err(MessengerError::KeyChanged {
        user_id,
        new_fingerprint: fingerprint(&fetched),
    })
}

/// The keys to check an envelope from `sender` with, whose `sender_key` is
/// `key_id`. Transient failures (no answer) are errors; anything else is a
/// decision.
pub(crate) async fn sender_keys(core: &Core, sender: UserId, key_id: &[u8]) -> Result<SenderKeys> {
    if sender == core.me {
        return Ok(if fingerprint_bytes(&core.my_keys) == key_id {
            SenderKeys::Own(core.my_keys.clone())
        } else {
            SenderKeys::Unknown(
                "signed in this account's name with a key that is not its own".into(),
            )
        });
    }
    let pin = load_pin(core, sender).await?;
    if let Some(pin) = &pin {
        if fingerprint_bytes(&pin.keys) == key_id {
            return Ok(SenderKeys::Pinned {
                keys: pin.keys.clone(),
                verified: pin.verified,
            });
        }
        if let Some(pending) = &pin.pending {
            if fingerprint_bytes(pending) == key_id {
                return Ok(SenderKeys::Changed(pending.clone()));
            }
        }
    }
    let fetched = match fetch_keys(core, sender).await {
        Ok(keys) => keys,
        Err(e) if e.code() == Some(ErrorCode::UserNotFound) => {
            return Ok(SenderKeys::Unknown(
                "signed with a key this device never saw, by an account that no longer exists"
                    .into(),
            ))
        }
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => return Ok(SenderKeys::Unknown(format!("the sender's keys: {e}"))),
    };
    if fingerprint_bytes(&fetched) != key_id {
        return Ok(SenderKeys::Unknown(format!(
            "signed with a key the server does not list for user {sender}"
        )));
    }
    match pin {
        None => {
            let pinned = pin_first_seen(core, sender, &fetched).await?;
            // A concurrent first sight may have pinned other keys.
            Ok(if pinned.keys == fetched {
                SenderKeys::Pinned {
                    keys: fetched,
                    verified: pinned.verified,
                }
            } else {
                report_change(core, sender, &pinned, &fetched).await?;
                SenderKeys::Changed(fetched)
            })
        }
        Some(pin) => {
            report_change(core, sender, &pin, &fetched).await?;
            Ok(SenderKeys::Changed(fetched))
        }
    }
}

pub(crate) async fn contact_keys(core: &Core, user_id: UserId) -> Result<ContactKeys> {
    let fetched = if user_id == core.me {
        Ok(core.my_keys.clone())
    } else {
        fetch_keys(core, user_id).await
    };
    let mut pin = match (load_pin(core, user_id).await?, fetched) {
        (Some(pin), Ok(fetched)) => {
            if pin.keys != fetched && pin.pending.as_ref() != Some(&fetched) {
                report_change(core, user_id, &pin, &fetched).await?;
            }
            pin
        }
        // Offline: what is pinned is what counts anyway.
        (Some(pin), Err(e)) if e.is_transient() => pin,
        (_, Err(e)) => return Err(e),
        (None, Ok(fetched)) => pin_first_seen(core, user_id, &fetched).await?,
    };
    if let Some(reloaded) = load_pin(core, user_id).await? {
        pin = reloaded;
    }
    Ok(ContactKeys {
        user_id,
        fingerprint: fingerprint(&pin.keys),
        safety_number: crypto::safety_number(&core.my_keys, &pin.keys),
        verified: pin.verified,
        pending_fingerprint: pin.pending.as_ref().map(fingerprint),
        pending_safety_number: pin
            .pending
            .as_ref()
            .map(|pending| crypto::safety_number(&core.my_keys, pending)),
    })
}

pub(crate) async fn accept_change(core: &Core, user_id: UserId) -> Result<()> {
    let Some(pending) = load_pin(core, user_id).await?.and_then(|pin| pin.pending) else {
        return Err(MessengerError::NoKeyChange(user_id));
    };
    let key_id = fingerprint_bytes(&pending);
    let accepted = core
        .store()?
        .run(move |conn| store::accept_pending(conn, user_id, &key_id))
        .await?;
    core.recent_keys.forget(user_id);
    if accepted {
        Ok(())
    } else {
        Err(MessengerError::NoKeyChange(user_id))
    }
}
