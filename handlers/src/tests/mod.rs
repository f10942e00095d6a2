//! Handler tests: every command driven through a real `Registry<HandlerCtx>`
//! and `dispatch`, over a temporary database file and a fake mail queue.

mod abuse;
mod accounts;
mod authz;
mod chat_support;
mod chats;
mod closing;
mod logging;
mod messages;
mod profile;
mod registry;
mod rules;
mod sessions;
mod support;
mod verification;
