//! End-to-end messaging with real clients: the real server on port 0 (the
//! harness of `ferrogram-test-support`), accounts with core's fixed test
//! identities, and the client library's `Messenger` on each side, with its
//! own local store; and `durability`, where the server runs as its built
//! binary and is killed with SIGKILL.

mod chats;
mod cli;
mod consent;
mod delivery;
mod durability;
mod live;
mod paging;
mod quota;
mod security;
mod tls;
