//! The app's settings file, `$XDG_CONFIG_HOME/ferrogram/gtk.json`: which
//! server to use, the last email used to log in, and the colour scheme. No
//! secrets: the session token lives in the Secret Service.

use std::io;
use std::path::{Path, PathBuf};

use ferrogram_client::ServerAddr;
use gtk::glib;
use serde::{Deserialize, Serialize};

/// Where the server is, as typed in the Connect screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub tls: bool,
    /// Extra CA certificates (PEM) for a self-hosted server with its own CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl ServerSettings {
    pub fn addr(&self) -> ServerAddr {
        let addr = ServerAddr::new(self.host.trim(), self.port).with_tls(self.tls);
        match &self.ca_file {
            Some(ca) => addr.with_ca_file(ca),
            None => addr,
        }
    }
}

/// Follow the desktop, or force light or dark.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColorScheme {
    #[default]
    System,
    Light,
    Dark,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub server: Option<ServerSettings>,
    pub last_email: Option<String>,
    pub color_scheme: ColorScheme,
}

impl Config {
    /// `$XDG_CONFIG_HOME/ferrogram/gtk.json`.
    pub fn default_path() -> PathBuf {
        glib::user_config_dir().join("ferrogram").join("gtk.json")
    }

    /// Reads the file; a missing one gives the defaults, and so does a broken
    /// one (with a warning: the app must start whatever the file says).
    pub fn load_from(path: &Path) -> Self {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("ignoring {}: {e}", path.display());
                Self::default()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::default(),
            Err(e) => {
                tracing::warn!("cannot read {}: {e}", path.display());
                Self::default()
            }
        }
    }

    pub fn load() -> Self {
        Self::load_from(&Self::default_path())
    }

    /// Writes the file whole (a temporary file renamed over it).
    pub fn save_to(&self, path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }

    pub fn save(&self) {
        let path = Self::default_path();
        if let Err(e) = self.save_to(&path) {
            tracing::warn!("cannot save {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferrogram").join("gtk.json");
        assert_eq!(Config::load_from(&path), Config::default());
        let config = Config {
            server: Some(ServerSettings {
                host: "chat.example.org".into(),
                port: 8443,
                tls: true,
                ca_file: None,
            }),
            last_email: Some("ada@example.org".into()),
            color_scheme: ColorScheme::Dark,
        };
        config.save_to(&path).unwrap();
        assert_eq!(Config::load_from(&path), config);
        assert_eq!(
            config.server.unwrap().addr().base_url(),
            "https://chat.example.org:8443"
        );
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(Config::load_from(&path), Config::default());
    }
}
