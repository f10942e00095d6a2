//! The WebSocket gateway: the endpoint, one actor per connection, the hub
//! and the chat rooms that fan committed events out, and the transport under
//! them (see ARCHITECTURE.md).

pub mod connection;
pub mod event_frames;
pub mod hub;
pub mod messages;
pub mod notifier;
pub mod presence;
pub mod resume;
pub mod room;
pub mod settings;
pub mod transport;
pub mod upgrade;
