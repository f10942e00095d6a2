//! The Ferrogram server: configuration, start-up wiring, the HTTP layer, the
//! WebSocket gateway (gateway/), the mailer actor, the command log and
//! telemetry. The commands themselves live
//! in `ferrogram-handlers`; this crate connects them to the network.

pub mod command_log;
pub mod config;
pub mod gateway;
pub mod http;
#[cfg(test)]
mod import_cycles;
pub mod mailer;
pub mod reply;
pub mod startup;
pub mod telemetry;
