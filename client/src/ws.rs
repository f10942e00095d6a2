//! One WebSocket connection to `GET /api/v1/ws`: TCP, TLS (rustls with the
//! aws-lc-rs provider, trusting the system roots plus the address's CA file,
//! like the REST client), the upgrade, and the `auth` frame. The token goes
//! only in that first frame, never in the URL. Reconnecting, requests and
//! events live in `messenger`; this module opens one socket and classifies
//! why it could not.

use std::sync::Arc;
use std::time::Duration;

use ferrogram_core::proto::ws::{ClientFrame, ServerFrame};
use ferrogram_core::ApiError;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::addr::ServerAddr;
use crate::client::API_PREFIX;
use crate::error::ClientError;

/// An open, authenticated socket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest frame accepted from the server: a resume page of big group
/// messages is well below this, and a hostile server cannot make the client
/// buffer without bound.
const MAX_SERVER_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The close reasons (`src/gateway/transport/frame.rs` on the server) after which retrying
/// with the same token is pointless.
const SESSION_GONE_REASONS: [&str; 3] =
    ["authentication failed", "session ended", "account deleted"];

/// `ws://host:port/api/v1/ws` or `wss://...`.
pub fn ws_url(addr: &ServerAddr) -> String {
    let base = addr.base_url();
    let rest = base
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or(base);
    format!("{rest}{API_PREFIX}/ws")
}

/// Connects, upgrades and authenticates (until the server's `ready`) within `timeout`.
pub async fn open(
    addr: &ServerAddr,
    token: &str,
    timeout: Duration,
) -> Result<Socket, ClientError> {
    let base = addr.base_url();
    let unreachable = |reason: String| ClientError::Unreachable {
        addr: base.clone(),
        reason,
    };
    match tokio::time::timeout(timeout, open_inner(addr, token)).await {
        Ok(result) => result,
        Err(_) => Err(unreachable(format!(
            "no WebSocket connection within {} s",
            timeout.as_secs()
        ))),
    }
}

async fn open_inner(addr: &ServerAddr, token: &str) -> Result<Socket, ClientError> {
    let base = addr.base_url();
    let unreachable = |reason: String| ClientError::Unreachable {
        addr: base.clone(),
        reason,
    };
    let connector = if addr.tls {
        Connector::Rustls(tls_config(addr)?)
    } else {
        Connector::Plain
    };
    let tcp = TcpStream::connect((addr.host.as_str(), addr.port))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    tcp.set_nodelay(true).ok();
    let mut request = ws_url(addr)
        .into_client_request()
        .map_err(|e| ClientError::invalid_input(format!("bad WebSocket address: {e}")))?;
    request.headers_mut().insert(
        "user-agent",
        tungstenite::http::HeaderValue::from_static(concat!(
            "ferrogram-client/",
            env!("CARGO_PKG_VERSION")
        )),
    );
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_SERVER_FRAME_BYTES);
    config.max_frame_size = Some(MAX_SERVER_FRAME_BYTES);
    let (mut socket, _) = tokio_tungstenite::client_async_tls_with_config(
        request,
        tcp,
        Some(config),
        Some(connector),
    )
    .await
    .map_err(|e| handshake_error(&base, e))?;

    let auth = ClientFrame::Auth {
        token: token.to_owned(),
    };
    let text = serde_json::to_string(&auth)
        .map_err(|e| ClientError::Protocol(format!("cannot encode the auth frame: {e}")))?;
    socket
        .send(Message::text(text))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    loop {
        let Some(message) = socket.next().await else {
            return Err(unreachable(
                "the server closed the connection before answering".into(),
            ));
        };
        match message.map_err(|e| unreachable(e.to_string()))? {
            Message::Text(text) => match serde_json::from_str::<ServerFrame>(&text) {
                Ok(ServerFrame::Ready { .. }) => return Ok(socket),
                Ok(ServerFrame::Error { error }) => return Err(ClientError::Api(error)),
                Ok(_) => {
                    return Err(ClientError::Protocol(
                        "the server sent another frame before `ready`".into(),
                    ))
                }
                Err(_) => {
                    return Err(ClientError::NotFerrogram {
                        addr: base.clone(),
                        reason: "its WebSocket endpoint does not speak the Ferrogram protocol"
                            .into(),
                    })
                }
            },
            Message::Close(frame) => return Err(close_error(&base, frame.as_ref())),
            // Pings are answered by tungstenite itself.
            _ => {}
        }
    }
}

/// Turns a close frame into an error: a refused or ended session is
/// `unauthorized` (so callers stop retrying), anything else unreachable.
pub(crate) fn close_error(base: &str, frame: Option<&CloseFrame>) -> ClientError {
    let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
    if is_session_gone(&reason) {
        return ClientError::Api(ApiError::new(
            ferrogram_core::ErrorCode::Unauthorized,
            format!("the server closed the connection: {reason}"),
        ));
    }
    ClientError::Unreachable {
        addr: base.to_owned(),
        reason: if reason.is_empty() {
            "the server closed the connection".into()
        } else {
            format!("the server closed the connection: {reason}")
        },
    }
}

/// True for a close reason after which the token no longer works.
pub(crate) fn is_session_gone(reason: &str) -> bool {
    SESSION_GONE_REASONS.contains(&reason)
}

fn handshake_error(base: &str, error: tungstenite::Error) -> ClientError {
    match error {
        tungstenite::Error::Http(response) => ClientError::NotFerrogram {
            addr: base.to_owned(),
            reason: format!(
                "GET {API_PREFIX}/ws answered HTTP {} instead of a WebSocket upgrade",
                response.status().as_u16()
            ),
        },
        tungstenite::Error::Io(e) => ClientError::Unreachable {
            addr: base.to_owned(),
            reason: e.to_string(),
        },
        tungstenite::Error::Tls(e) => ClientError::Unreachable {
            addr: base.to_owned(),
            reason: innermost(&e),
        },
        tungstenite::Error::Protocol(e) => ClientError::NotFerrogram {
            addr: base.to_owned(),
            reason: format!("the WebSocket upgrade failed: {e}"),
        },
        other => ClientError::Unreachable {
            addr: base.to_owned(),
            reason: other.to_string(),
        },
    }
}

fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut inner: &(dyn std::error::Error + 'static) = err;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// A rustls client configuration with the aws-lc-rs provider (named
/// explicitly: with two providers compiled in, the implicit default panics)
/// and the platform verifier: the system roots plus the CA file, if any.
pub(crate) fn tls_config(addr: &ServerAddr) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut extra = Vec::new();
    if let Some(path) = &addr.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            ClientError::invalid_input(format!("cannot read CA file {}: {e}", path.display()))
        })?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            extra.push(cert.map_err(|e| {
                ClientError::invalid_input(format!(
                    "CA file {} holds no usable PEM certificate: {e}",
                    path.display()
                ))
            })?);
        }
        if extra.is_empty() {
            return Err(ClientError::invalid_input(format!(
                "CA file {} holds no certificate",
                path.display()
            )));
        }
    }
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
            .map_err(|e| ClientError::invalid_input(format!("cannot set up TLS: {e}")))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::invalid_input(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_address() {
        assert_eq!(
            ws_url(&ServerAddr::new("127.0.0.1", 8080)),
            "ws://127.0.0.1:8080/api/v1/ws"
        );
        assert_eq!(
            ws_url(&ServerAddr::new("::1", 9).with_tls(true)),
            "wss://[::1]:9/api/v1/ws"
        );
    }

    #[test]
    fn ended_sessions_are_unauthorized_other_closes_unreachable() {
        for reason in SESSION_GONE_REASONS {
            let frame = CloseFrame {
                code: tungstenite::protocol::frame::coding::CloseCode::Policy,
                reason: reason.into(),
            };
            assert!(close_error("http://h:1", Some(&frame)).is_unauthorized());
        }
        let away = CloseFrame {
            code: tungstenite::protocol::frame::coding::CloseCode::Away,
            reason: "server shutting down".into(),
        };
        let err = close_error("http://h:1", Some(&away));
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains("shutting down"), "{err}");
    }

    #[test]
    fn a_missing_ca_file_is_invalid_input() {
        let addr = ServerAddr::new("h", 1)
            .with_tls(true)
            .with_ca_file("/nonexistent/ca.pem");
        let err = tls_config(&addr).unwrap_err();
        assert!(matches!(err, ClientError::InvalidInput(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_plain_http_server_is_not_ferrogram() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await;
        });
        let err = open(
            &ServerAddr::new("127.0.0.1", port),
            "t",
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ClientError::NotFerrogram { .. }), "{err:?}");
        assert!(err.to_string().contains("404"), "{err}");
    }
}
