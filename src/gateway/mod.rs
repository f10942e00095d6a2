//! The WebSocket gateway: the endpoint `GET /api/v1/ws`, one actor per
//! connection, the hub and the chat rooms that fan committed events out, and
//! the transport under them.
//!
//! ```text
//!  event writer ──Notifier::chat_events (HubHandle, do_send)──▶ Hub ──PublishEvent──▶ ChatRoom
//!  (one batch, commit order)                  │                 (one per active chat)  │ DeliverEvent
//!                                             │ DeliverLive,                             ▼ (shared frame)
//!                                             │ CloseConnection          Connection (one per socket)
//!                                             └────────────────────────────────────▶ │ try_send
//!                                                                                     ▼
//!                                                  bounded queue ─▶ writer task ─▶ socket
//! ```
//!
//! Imports go one way (a test, `src/import_cycles.rs`, holds it): the HTTP
//! layer reaches the gateway only for the upgrade route (and to cut a
//! socket off); the gateway never imports `http`. Inside, from the top:
//! [`upgrade`] -> [`connection`] -> [`settings`] -> [`hub`] (and
//! [`notifier`] -> [`hub`]) -> [`room`] -> [`messages`], [`event_frames`]
//! -> [`transport`]; [`resume`] and [`presence`] stand alone.
//!
//! - [`connection::Connection`]: one per socket; authentication, commands
//!   through the registry, heartbeat, resume.
//! - [`hub::Hub`]: users -> connections, chats -> rooms, presence.
//! - [`room::ChatRoom`]: started on a chat's first event, stopped when idle;
//!   fans each event (in seq order as committed) out to every online
//!   connection of every member (the sender's other connections included; a
//!   message is not pushed back to the connection that sent it, whose reply
//!   has the seq).

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
