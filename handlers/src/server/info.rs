//! `server.info`: tells a client it reached a Ferrogram server, and what the
//! server offers.

use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{Empty, ServerInfo};
use ferrogram_core::{ApiError, PROTOCOL_VERSION};

/// Feature names clients may test for. Only ever add to this list.
pub const FEATURES: &[&str] = &[
    "accounts",
    "email_verification",
    "sessions",
    "user_search",
    "public_keys",
];

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::GetServerInfo {
    async fn handle(&self, ctx: &HandlerCtx, _: &Caller, _: Empty) -> Result<ServerInfo, ApiError> {
        Ok(ServerInfo {
            name: "ferrogram".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol_version: PROTOCOL_VERSION,
            features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
            registration_open: ctx.settings.registration_open,
            min_kdf: ctx.settings.min_kdf,
        })
    }
}
