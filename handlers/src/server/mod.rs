//! `server.*`: what a client asks before anything else.

pub mod info;
