//! Handler tests: every command driven through a real `Registry<HandlerCtx>`
//! and `dispatch`, over a temporary database file and a fake mail queue.

mod accounts;
mod logging;
mod profile;
mod registry;
mod sessions;
mod support;
mod verification;
