//! The WebSocket endpoint `GET /api/v1/ws` (actix-http's frame codec, see [`wire`]).
//!
//! The upgrade itself carries no credentials: the URL takes no parameters
//! (a request with a query string is refused, so a token put there by
//! mistake is never used) and the client authenticates with an `auth` frame
//! within `websocket.auth_timeout_secs`. Each connection gets a
//! [`Connection`](crate::gateway::connection::Connection) actor for incoming frames and
//! a writer task with bounded queues for outgoing ones ([`writer`]).
//! The frame protocol is documented in `docs/protocol.md` and typed in
//! `ferrogram_core::proto::ws`.

use crate::gateway::connection::Connection;
use crate::gateway::settings::Gateway;
use crate::gateway::transport::{input, socket, wire, writer};
use actix::{Actor, AsyncContext};
use actix_web::{web, HttpRequest, HttpResponse};
use ferrogram_core::command::Registry;
use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_handlers::HandlerCtx;
use futures_util::StreamExt;
use std::net::IpAddr;

/// Path of the WebSocket endpoint.
pub const WS_PATH: &str = "/api/v1/ws";

/// `GET /api/v1/ws`: upgrades and starts the connection's actor and writer.
/// `ip` is the client's address (the HTTP layer's `client_ip`); an error is
/// answered by the HTTP layer like any REST error.
pub fn connect(
    req: &HttpRequest,
    payload: web::Payload,
    ip: IpAddr,
    handlers: web::Data<HandlerCtx>,
    registry: web::Data<Registry<HandlerCtx>>,
    gateway: Option<web::Data<Gateway>>,
) -> Result<HttpResponse, ApiError> {
    let Some(gateway) = gateway else {
        tracing::error!("the WebSocket gateway is not configured in this app");
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "no WebSocket gateway",
        ));
    };
    if !req.query_string().is_empty() {
        return Err(ApiError::bad_request(
            "the WebSocket URL takes no parameters; authenticate with an auth frame",
        ));
    }
    let ip_place = gateway.caps.acquire_ip(ip).map_err(|over| {
        tracing::info!(%ip, "websocket refused: too many open sockets from this address");
        ApiError::new(ErrorCode::TooManyConnections, over.message())
    })?;
    let settings = &gateway.settings;
    let (response, ws, messages) =
        wire::accept(req, payload, settings.max_frame_bytes).map_err(|_| {
            ApiError::bad_request("expected a WebSocket upgrade (GET with Upgrade: websocket)")
        })?;
    let outbox = writer::spawn(
        ws,
        settings.outbound_queue,
        gateway.budget.connection(),
        socket::SocketCutter::of(req),
    );
    let input = std::sync::Arc::new(input::InputGate::default());
    let messages = input::Gated::new(end_after_first_error(messages), input.clone());
    let session = Connection::new(
        ip,
        ip_place,
        handlers,
        registry,
        gateway.clone(),
        outbox,
        input,
    );
    Connection::create(move |ctx| {
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
