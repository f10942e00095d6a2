//! Ferrogram client library: connect to a server (HTTP, or HTTPS via rustls),
//! check it is Ferrogram, and run the account flows with the client-side
//! crypto of the key model (the password never leaves the client; only
//! `auth_key`, public keys and the sealed private keys do).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferrogram_client::ClientError> {
//! use ferrogram_client::{Client, RegisterParams, ServerAddr};
//! let addr = ServerAddr::parse("127.0.0.1:8080").expect("address");
//! let client = Client::connect(addr).await?;
//! client
//!     .register(RegisterParams::new("ada@example.org", "ada", "Ada", "a long passphrase"))
//!     .await?;
//! let session = client.login("ada@example.org", "a long passphrase", Some("laptop")).await?;
//! println!("logged in as @{}", session.me().await?.handle);
//! # Ok(()) }
//! ```

mod addr;
mod client;
mod error;
mod keys;
mod login;
mod messages;
pub mod messenger;
mod session;
mod store;
mod unlock;
pub mod ws;

pub use addr::{AddrParseError, ServerAddr, DEFAULT_PORT};
pub use client::{Client, ClientOptions, RegisterParams, API_PREFIX, SERVER_NAME};
pub use error::{ClientError, KeyError};
pub use ferrogram_core::crypto::WrapKey;
pub use keys::{generate_identity, MIN_PASSWORD_CHARS};
pub use messages::{Message, MessageDeletion, MessageEdit, Verification};
pub use messenger::{
    ChatChange, ChatChangeKind, ChatEntry, ClientEvent, ConnectionState, ContactKeys, EventStream,
    History, Messenger, MessengerError, MessengerOptions, OutgoingMessage,
};
pub use session::Session;
pub use store::{ChatPosition, Store, StoreError};
pub use unlock::LockedKeys;

pub use ferrogram_core::crypto::Identity;
pub use ferrogram_core::ids::{ChatId, Seq, Timestamp, UserId};
pub use ferrogram_core::proto;
pub use ferrogram_core::{ApiError, ErrorCode};
pub use reqwest::Method;
