//! `ferrogram`: the GNOME desktop client of Ferrogram.

// Every GObject subclass keeps its private half in a `mod imp` that imports
// its parent module whole (the gtk-rs subclassing pattern).
#![allow(clippy::wildcard_imports)]

mod app_state;
mod application;
mod config;
mod error;
mod i18n;
mod locked_keys;
mod messaging;
mod models;
mod runtime;
mod secrets;
mod signed_in;
mod widgets;

use gtk::prelude::*;

fn main() -> gtk::glib::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERROGRAM_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    i18n::init();
    application::FerrogramApplication::new().run()
}
