//! Ferrogram core: the wire protocol types, end-to-end crypto, domain ids, input
//! validation and the command-handler trait with its registry.
//!
//! This crate knows nothing of actix, GTK or SQLite (but for the `rusqlite`
//! feature: how a `Seq` or a `Timestamp` is stored): the server, the client
//! library and the GTK app all build on it.

pub mod b64;
pub mod command;
pub mod commands;
pub mod crypto;
pub mod error;
pub mod ids;
pub mod proto;
pub mod ratelimit;
pub mod refusal;
pub mod validate;

pub use error::{ApiError, ErrorCode};
pub use refusal::Refusal;

/// Version of the wire protocol spoken under `/api/v1`.
pub const PROTOCOL_VERSION: u32 = 1;
