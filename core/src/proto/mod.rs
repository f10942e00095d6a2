//! Request and response types of every command, shared by the server, the
//! client library and the GTK app. Timestamps are milliseconds since the Unix
//! epoch (`*_at`). Binary values are base64 strings (`B64`).

pub mod account;
pub mod chat;
pub mod envelope;
pub mod ws;

pub use account::*;
pub use chat::*;
pub use envelope::*;
pub use ws::*;
