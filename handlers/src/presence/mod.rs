//! `presence.*`: who is online.

pub mod get;
