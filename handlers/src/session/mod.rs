//! `session.*`: logging in and out, listing and revoking sessions.

pub mod create;
pub mod delete_current;
pub mod list;
pub mod revoke;
pub mod revoke_others;
