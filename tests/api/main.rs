//! End-to-end tests of the account API: each test starts the real server on
//! port 0 with a temporary data folder and drives it with the client library
//! (or raw HTTP for bad input). The harness: `ferrogram-test-support`.

mod cli;
mod client_types;
mod command_log;
mod lifecycle;
mod mail;
mod prelogin;
mod rate_limits;
mod smtp;
mod tls;
mod validation;
