//! `server.info`: tells a client it reached a Ferrogram server, and what the
//! server offers.

use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Access, Caller, CommandHandler};
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

pub struct Info;

#[async_trait]
impl CommandHandler<HandlerCtx> for Info {
    const NAME: &'static str = "server.info";
    const ACCESS: Access = Access::Public;
    const RATE_CLASS: Option<&'static str> = Some("info");
    type Req = Empty;
    type Resp = ServerInfo;

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
