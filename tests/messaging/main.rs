//! End-to-end messaging with real clients: the real server on port 0 (the
//! `tests/api` harness), accounts with core's fixed test identities, and
//! the client library's `Messenger` on each side, with its own local store.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../api/mail.rs"]
mod mail;

mod support;

mod chats;
mod cli;
mod consent;
mod delivery;
mod live;
mod paging;
mod quota;
mod security;
mod tls;
