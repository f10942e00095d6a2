//! The WebSocket endpoint `GET /api/v1/ws` (actix-http's frame codec, see [`wire`]).
//!
//! The upgrade itself carries no credentials: the URL takes no parameters
//! (a request with a query string is refused, so a token put there by
//! mistake is never used) and the client authenticates with an `auth` frame
//! within `websocket.auth_timeout_secs`. Each connection gets a
//! [`Session`](crate::gateway::connection::Session) actor for incoming frames and
//! a writer task with bounded queues for outgoing ones ([`writer`]).
//! The frame protocol is documented in `docs/protocol.md` and typed in
//! `ferrogram_core::proto::ws`.

use crate::gateway::hub::Hub;
use crate::gateway::connection::Session;
use crate::config::Config;
use crate::gateway::transport::{budget, caps, input, socket, wire, writer};
use crate::http::{client_ip, HttpError, SharedCtx, SharedRegistry};
use actix::{Actor, Addr, AsyncContext};
use actix_web::{web, HttpRequest, HttpResponse};
use ferrogram_core::{ApiError, ErrorCode};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// Path of the WebSocket endpoint.
pub const WS_PATH: &str = "/api/v1/ws";

/// The gateway's settings, from `websocket.*` and `limits.max_frame_bytes`.
#[derive(Debug, Clone)]
pub struct WsSettings {
    pub auth_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub client_timeout: Duration,
    pub outbound_queue: usize,
    pub max_invalid_frames: u32,
    pub max_frame_bytes: usize,
    pub room_idle: Duration,
    /// `websocket.outbound_queue_bytes`: one connection's byte budget.
    pub outbound_queue_bytes: usize,
    /// `websocket.outbound_total_bytes`: the whole server's.
    pub outbound_total_bytes: usize,
    /// `limits.max_reply_bytes`.
    pub max_reply_bytes: usize,
    pub caps: caps::CapLimits,
    /// `limits.max_resume_chats`.
    pub max_resume_chats: usize,
    /// `websocket.max_frames_per_sec` and `websocket.frame_burst`.
    pub max_frames_per_sec: u32,
    pub frame_burst: u32,
}

impl WsSettings {
    pub fn from_config(config: &Config) -> Self {
        let ws = &config.websocket;
        Self {
            auth_timeout: Duration::from_secs(ws.auth_timeout_secs),
            heartbeat_interval: Duration::from_secs(ws.heartbeat_interval_secs),
            client_timeout: Duration::from_secs(ws.client_timeout_secs),
            outbound_queue: ws.outbound_queue,
            max_invalid_frames: ws.max_invalid_frames,
            max_frame_bytes: config.limits.max_frame_bytes,
            room_idle: Duration::from_secs(ws.room_idle_secs),
            outbound_queue_bytes: ws.outbound_queue_bytes,
            outbound_total_bytes: ws.outbound_total_bytes,
            max_reply_bytes: config.limits.max_reply_bytes,
            caps: caps::CapLimits {
                per_session: config.limits.max_sockets_per_session,
                per_user: config.limits.max_sockets_per_user,
                per_ip: config.limits.max_sockets_per_ip,
            },
            max_resume_chats: config.limits.max_resume_chats,
            max_frames_per_sec: ws.max_frames_per_sec,
            frame_burst: ws.frame_burst,
        }
    }
}

/// What every connection shares (app data).
pub struct Gateway {
    pub hub: Addr<Hub>,
    pub settings: WsSettings,
    /// Open sockets per IP, account and session.
    pub caps: Arc<caps::SocketCaps>,
    /// Outbound bytes per connection and in all.
    pub budget: Arc<budget::OutboundBudget>,
}

impl Gateway {
    pub fn new(hub: Addr<Hub>, settings: WsSettings) -> Self {
        Self {
            hub,
            caps: caps::SocketCaps::new(settings.caps),
            budget: budget::OutboundBudget::new(
                settings.outbound_queue_bytes,
                settings.outbound_total_bytes,
            ),
            settings,
        }
    }
}

/// `GET /api/v1/ws`: upgrades and starts the connection's actor and writer.
pub async fn connect(
    req: HttpRequest,
    payload: web::Payload,
    handlers: SharedCtx,
    registry: SharedRegistry,
    gateway: Option<web::Data<Gateway>>,
) -> Result<HttpResponse, HttpError> {
    let Some(gateway) = gateway else {
        tracing::error!("the WebSocket gateway is not configured in this app");
        return Err(ApiError::new(ErrorCode::Unavailable, "no WebSocket gateway").into());
    };
    if !req.query_string().is_empty() {
        return Err(ApiError::bad_request(
            "the WebSocket URL takes no parameters; authenticate with an auth frame",
        )
        .into());
    }
    let ip = client_ip(&req);
    let ip_place = gateway.caps.acquire_ip(ip).map_err(|over| {
        tracing::info!(%ip, "websocket refused: too many open sockets from this address");
        ApiError::new(ErrorCode::TooManyConnections, over.message())
    })?;
    let settings = &gateway.settings;
    let (response, ws, messages) =
        wire::accept(&req, payload, settings.max_frame_bytes).map_err(|_| {
            ApiError::bad_request("expected a WebSocket upgrade (GET with Upgrade: websocket)")
        })?;
    let outbox = writer::spawn(
        ws,
        settings.outbound_queue,
        gateway.budget.connection(),
        socket::SocketCutter::of(&req),
    );
    let input = std::sync::Arc::new(input::InputGate::default());
    let messages = input::Gated::new(end_after_first_error(messages), input.clone());
    let session = Session::new(
        ip,
        ip_place,
        handlers,
        registry,
        gateway.clone(),
        outbox,
        input,
    );
    Session::create(move |ctx| {
        ctx.add_stream(messages);
        session
    });
    Ok(response)
}

/// The session closes on the first frame it cannot decode; the stream ends
/// there too (`wire::Incoming` also stops after an error, this keeps that
/// true whatever the stream).
fn end_after_first_error<S, T, E>(stream: S) -> impl futures_util::Stream<Item = Result<T, E>>
where
    S: futures_util::Stream<Item = Result<T, E>>,
{
    stream.scan(false, |failed, item| {
        if *failed {
            return std::future::ready(None);
        }
        *failed = item.is_err();
        std::future::ready(Some(item))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn the_message_stream_ends_after_its_first_error() {
        let items: Vec<Result<u8, &str>> = vec![Ok(1), Err("bad"), Err("bad"), Ok(2)];
        let out: Vec<_> = end_after_first_error(futures_util::stream::iter(items))
            .collect()
            .await;
        assert_eq!(out, vec![Ok(1), Err("bad")]);
    }
}
