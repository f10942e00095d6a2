//! The shared harness of the server's integration tests (`tests/`): each
//! test starts the real server on port 0 with a temporary data folder
//! ([`spawn_app`], or the built binary: [`process`]), makes accounts through
//! the client library with codes read from the outbox ([`mail`], [`person`]),
//! and drives it with the library's `Messenger` ([`Device`]) or over raw
//! WebSocket frames ([`ws`], [`raw_ws`]).
//!
//! Only tests use it (a dev-dependency of the server, never published).

mod app;
mod device;
pub mod mail;
mod people;
pub mod process;
pub mod raw_ws;
pub mod ws;

pub use app::{
    connect, free_port, generous, identity_a, identity_b, spawn_app, spawn_app_with, test_config,
    wait_for_mails_in, TestApp, TestUser, TEST_CA_FILE, TEST_KDF,
};
pub use device::{marker, test_options, Device, EVENT_TIMEOUT};
pub use people::{bench_person, identity, open_to_groups, person, Person};
