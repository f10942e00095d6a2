//! The account's private keys kept on this device, sealed with the key
//! derived from the password (exactly what the server stores). With the
//! session token from the keyring, they let the app open again with the
//! password alone: no new log-in, no new session.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use ferrogram_client::{LockedKeys, ServerAddr, Store, UserId};
use gtk::glib;

fn data_dir() -> PathBuf {
    glib::user_data_dir().join("ferrogram")
}

/// Next to the message store: `<data>/ferrogram/<host>_<port>/user-<id>.keys.json`.
pub fn path_in(data_dir: &Path, server: &ServerAddr, user: UserId) -> PathBuf {
    Store::path_for(data_dir, server, user).with_extension("keys.json")
}

pub fn load_from(path: &Path) -> Option<LockedKeys> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes)
        .map_err(|e| tracing::warn!("ignoring {}: {e}", path.display()))
        .ok()
}

/// Writes the file readable by the user only.
pub fn save_to(path: &Path, keys: &LockedKeys) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).create(dir)?;
    }
    let json = serde_json::to_vec(keys).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&json)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

pub fn load(server: &ServerAddr, user: UserId) -> Option<LockedKeys> {
    load_from(&path_in(&data_dir(), server, user))
}

pub fn save(server: &ServerAddr, keys: &LockedKeys) {
    let path = path_in(&data_dir(), server, keys.user_id);
    if let Err(e) = save_to(&path, keys) {
        tracing::warn!("cannot keep the sealed keys in {}: {e}", path.display());
    }
}

pub fn forget(server: &ServerAddr, user: UserId) {
    let _ = std::fs::remove_file(path_in(&data_dir(), server, user));
}
