//! The pure half of the WebSocket protocol: turning received text into a
//! [`ClientFrame`] (or a classified, content-free error), reassembling
//! fragmented messages within the size limit, the close reasons the server
//! uses, and the invalid-frame policy. No I/O here, so all of it is unit-tested.

use actix_http::ws::{CloseCode, CloseReason, Item};
use bytestring::ByteString;
use ferrogram_core::proto::ws::{ClientFrame, ServerFrame};
use ferrogram_core::{ApiError, ErrorCode};
use serde_json::Value;

/// Frame types a client may send, as named in the `type` field.
const CLIENT_FRAME_TYPES: &[&str] = &["auth", "command", "resume", "ping"];

/// Why a received text was not a valid frame. Deliberately carries no part
/// of the text: error frames and logs name the category only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Not JSON at all.
    NotJson,
    /// JSON, but not an object with a string `type`.
    NotAnObject,
    /// A `type` this server does not know.
    UnknownType,
    /// A known type with missing, unknown or mistyped fields.
    BadFields(&'static str),
    /// A binary frame: the protocol is JSON text.
    Binary,
}

impl FrameError {
    /// A short, stable name for logs.
    pub fn kind(self) -> &'static str {
        match self {
            FrameError::NotJson => "not_json",
            FrameError::NotAnObject => "not_an_object",
            FrameError::UnknownType => "unknown_type",
            FrameError::BadFields(_) => "bad_fields",
            FrameError::Binary => "binary",
        }
    }

    /// The `invalid_frame` error sent back to the client.
    pub fn to_api_error(self) -> ApiError {
        let message = match self {
            FrameError::NotJson => "frames must be JSON text".to_owned(),
            FrameError::NotAnObject => "a frame is a JSON object with a string `type`".to_owned(),
            FrameError::UnknownType => format!(
                "unknown frame type; expected one of: {}",
                CLIENT_FRAME_TYPES.join(", ")
            ),
            FrameError::BadFields(ty) => {
                format!("`{ty}` frame with missing, unknown or mistyped fields")
            }
            FrameError::Binary => "binary frames are not accepted; send JSON text".to_owned(),
        };
        ApiError::new(ErrorCode::InvalidFrame, message)
    }
}

/// Parses one text frame. The error never echoes the text.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|_| FrameError::NotJson)?;
    let ty = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or(FrameError::NotAnObject)?;
    let Some(known) = CLIENT_FRAME_TYPES.iter().copied().find(|t| *t == ty) else {
        return Err(FrameError::UnknownType);
    };
    serde_json::from_value(value).map_err(|_| FrameError::BadFields(known))
}

/// Serializes a server frame for the wire. Serializing these types cannot
/// fail (string keys, no non-finite floats); should it ever, the client gets
/// an `internal` error frame instead of a broken one.
pub fn encode(frame: &ServerFrame) -> ByteString {
    match serde_json::to_string(frame) {
        Ok(text) => text.into(),
        Err(e) => {
            tracing::error!(error = %e, "server frame serialization failed");
            ByteString::from_static(
                r#"{"type":"error","error":{"code":"internal","message":"internal server error"}}"#,
            )
        }
    }
}

/// The `error` frame for `error`.
pub fn error_frame(error: ApiError) -> ByteString {
    encode(&ServerFrame::Error { error })
}

/// Why the server closes a connection; each maps to one close code and a
/// reason text (at most 123 bytes, as the protocol allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// No `auth` frame in time.
    AuthTimeout,
    /// The first frame was not `auth`, or its token was refused.
    AuthFailed,
    /// A frame or message larger than `limits.max_frame_bytes`.
    FrameTooLarge,
    /// Too many invalid frames in a row.
    TooManyInvalidFrames,
    /// The outbound queue overflowed: the client does not read fast enough.
    TooSlow,
    /// Nothing heard from the client within `client_timeout_secs`.
    IdleTimeout,
    /// The session was revoked or logged out, or expired.
    ConnectionEnded,
    /// The account was deleted.
    AccountDeleted,
    /// The server is shutting down.
    ServerShutdown,
    /// The client sent a close frame; this answers it.
    ClientClosed,
    /// A WebSocket protocol violation (bad framing, invalid UTF-8...).
    ProtocolError,
    /// The server could not check the token (database trouble).
    InternalError,
    /// Over `limits.max_sockets_per_session` or `_per_user`.
    TooManyConnections,
}

impl CloseCause {
    /// A close for what the peer sent (a frame too large, bad framing, too
    /// many invalid frames): nothing more it sends is worth reading.
    pub fn refuses_input(self) -> bool {
        matches!(
            self,
            CloseCause::FrameTooLarge
                | CloseCause::ProtocolError
                | CloseCause::TooManyInvalidFrames
        )
    }

    pub fn code(self) -> CloseCode {
        match self {
            CloseCause::AuthTimeout
            | CloseCause::AuthFailed
            | CloseCause::TooManyInvalidFrames
            | CloseCause::ConnectionEnded
            | CloseCause::AccountDeleted
            | CloseCause::TooManyConnections => CloseCode::Policy,
            CloseCause::FrameTooLarge => CloseCode::Size,
            CloseCause::TooSlow => CloseCode::Again,
            CloseCause::IdleTimeout | CloseCause::ServerShutdown => CloseCode::Away,
            CloseCause::ClientClosed => CloseCode::Normal,
            CloseCause::ProtocolError => CloseCode::Protocol,
            CloseCause::InternalError => CloseCode::Error,
        }
    }

    /// The reason text of the close frame (stable: clients may show it).
    pub fn reason(self) -> &'static str {
        match self {
            CloseCause::AuthTimeout => "auth timeout: send an auth frame first",
            CloseCause::AuthFailed => "authentication failed",
            CloseCause::FrameTooLarge => "frame too large",
            CloseCause::TooManyInvalidFrames => "too many invalid frames",
            CloseCause::TooSlow => "too slow: reconnect and resume",
            CloseCause::IdleTimeout => "idle timeout",
            CloseCause::ConnectionEnded => "session ended",
            CloseCause::AccountDeleted => "account deleted",
            CloseCause::ServerShutdown => "server shutting down",
            CloseCause::ClientClosed => "bye",
            CloseCause::ProtocolError => "protocol error",
            CloseCause::InternalError => "internal error; try again",
            CloseCause::TooManyConnections => "too many connections",
        }
    }

    /// A short, stable name for logs.
    pub fn kind(self) -> &'static str {
        match self {
            CloseCause::AuthTimeout => "auth_timeout",
            CloseCause::AuthFailed => "auth_failed",
            CloseCause::FrameTooLarge => "frame_too_large",
            CloseCause::TooManyInvalidFrames => "too_many_invalid_frames",
            CloseCause::TooSlow => "too_slow",
            CloseCause::IdleTimeout => "idle_timeout",
            CloseCause::ConnectionEnded => "session_ended",
            CloseCause::AccountDeleted => "account_deleted",
            CloseCause::ServerShutdown => "server_shutdown",
            CloseCause::ClientClosed => "client_closed",
            CloseCause::ProtocolError => "protocol_error",
            CloseCause::InternalError => "internal_error",
            CloseCause::TooManyConnections => "too_many_connections",
        }
    }

    pub fn close_reason(self) -> CloseReason {
        CloseReason {
            code: self.code(),
            description: Some(self.reason().to_owned()),
        }
    }
}

/// A whole message put together from a fragmented one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    Text(String),
    Binary,
}

/// What went wrong while reassembling fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentError {
    /// The fragments together exceed the frame limit.
    TooLarge,
    /// A continuation without a start, a start inside another message, or
    /// text that is not UTF-8.
    Malformed,
}

/// Reassembles fragmented messages (continuation frames), keeping at most
/// `max_bytes` of one message in memory.
#[derive(Debug)]
pub struct Reassembler {
    max_bytes: usize,
    /// `Some(is_text)` while a fragmented message is open.
    open: Option<bool>,
    buf: Vec<u8>,
}

impl Reassembler {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            open: None,
            buf: Vec::new(),
        }
    }

    /// Feeds one fragment; returns the message once its last fragment arrived.
    pub fn push(&mut self, item: Item) -> Result<Option<Assembled>, FragmentError> {
        let (start, is_text, bytes, last) = match item {
            Item::FirstText(b) => (true, true, b, false),
            Item::FirstBinary(b) => (true, false, b, false),
            Item::Continue(b) => (false, false, b, false),
            Item::Last(b) => (false, false, b, true),
        };
        let is_text = if start {
            if self.open.is_some() {
                self.reset();
                return Err(FragmentError::Malformed);
            }
            self.open = Some(is_text);
            is_text
        } else {
            match self.open {
                Some(t) => t,
                None => return Err(FragmentError::Malformed),
            }
        };
        if self.buf.len() + bytes.len() > self.max_bytes {
            self.reset();
            return Err(FragmentError::TooLarge);
        }
        self.buf.extend_from_slice(&bytes);
        if !last {
            return Ok(None);
        }
        let buf = std::mem::take(&mut self.buf);
        self.reset();
        if !is_text {
            return Ok(Some(Assembled::Binary));
        }
        String::from_utf8(buf)
            .map(|text| Some(Assembled::Text(text)))
            .map_err(|_| FragmentError::Malformed)
    }

    fn reset(&mut self) {
        self.open = None;
        self.buf = Vec::new();
    }
}

/// The invalid-frame policy: every invalid frame is answered with an error
/// frame and the connection stays, until `limit` invalid frames arrive in a
/// row; a valid frame resets the count.
#[derive(Debug)]
pub struct Strikes {
    limit: u32,
    in_a_row: u32,
}

impl Strikes {
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit.max(1),
            in_a_row: 0,
        }
    }

    /// Counts one invalid frame; true when the connection must now close.
    pub fn strike(&mut self) -> bool {
        self.in_a_row = self.in_a_row.saturating_add(1);
        self.in_a_row >= self.limit
    }

    pub fn reset(&mut self) {
        self.in_a_row = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::web::Bytes;

    #[test]
    fn parses_every_documented_frame() {
        assert!(matches!(
            parse_client_frame(r#"{"type":"auth","token":"t"}"#),
            Ok(ClientFrame::Auth { token }) if token == "t"
        ));
        assert!(matches!(
            parse_client_frame(r#"{"type":"command","id":1,"command":"me.get"}"#),
            Ok(ClientFrame::Command { id: 1, .. })
        ));
        assert!(matches!(
            parse_client_frame(r#"{"type":"resume","positions":[]}"#),
            Ok(ClientFrame::Resume { .. })
        ));
        assert!(matches!(
            parse_client_frame(r#"{"type":"ping"}"#),
            Ok(ClientFrame::Ping)
        ));
    }

    #[test]
    fn classifies_bad_frames_without_echoing_them() {
        let secret = "s3cr3t-token-value";
        let cases = [
            (format!("not json {secret}"), FrameError::NotJson),
            (
                format!("{{\"type\":\"auth\",\"token\":\"{secret}\""),
                FrameError::NotJson,
            ),
            (format!("[\"{secret}\"]"), FrameError::NotAnObject),
            (
                format!("{{\"token\":\"{secret}\"}}"),
                FrameError::NotAnObject,
            ),
            ("{\"type\":7}".to_owned(), FrameError::NotAnObject),
            (
                format!("{{\"type\":\"{secret}\"}}"),
                FrameError::UnknownType,
            ),
            (
                format!("{{\"type\":\"auth\",\"token\":\"{secret}\",\"x\":1}}"),
                FrameError::BadFields("auth"),
            ),
            (
                "{\"type\":\"command\",\"id\":\"one\",\"command\":\"me.get\"}".to_owned(),
                FrameError::BadFields("command"),
            ),
            (
                "{\"type\":\"command\",\"id\":-1,\"command\":\"me.get\"}".to_owned(),
                FrameError::BadFields("command"),
            ),
            (
                "{\"type\":\"resume\",\"positions\":[{\"chat_id\":\"x\",\"seq\":1}]}".to_owned(),
                FrameError::BadFields("resume"),
            ),
            (
                "{\"type\":\"auth\"}".to_owned(),
                FrameError::BadFields("auth"),
            ),
        ];
        for (text, expected) in cases {
            let err = parse_client_frame(&text).unwrap_err();
            assert_eq!(err, expected, "{text}");
            let api = err.to_api_error();
            assert_eq!(api.code, ErrorCode::InvalidFrame);
            assert!(!api.message.contains(secret), "{}", api.message);
            let frame = error_frame(api);
            assert!(!frame.contains(secret));
            let v: Value = serde_json::from_str(&frame).unwrap();
            assert_eq!(v["type"], "error");
            assert_eq!(v["error"]["code"], "invalid_frame");
        }
    }

    #[test]
    fn close_reasons_fit_a_control_frame_and_use_the_documented_codes() {
        let all = [
            CloseCause::AuthTimeout,
            CloseCause::AuthFailed,
            CloseCause::FrameTooLarge,
            CloseCause::TooManyInvalidFrames,
            CloseCause::TooSlow,
            CloseCause::IdleTimeout,
            CloseCause::ConnectionEnded,
            CloseCause::AccountDeleted,
            CloseCause::ServerShutdown,
            CloseCause::ClientClosed,
            CloseCause::ProtocolError,
            CloseCause::InternalError,
            CloseCause::TooManyConnections,
        ];
        for cause in all {
            assert!(cause.reason().len() <= 123, "{cause:?}");
            assert_eq!(
                cause.close_reason().description.as_deref(),
                Some(cause.reason())
            );
        }
        assert_eq!(u16::from(CloseCause::AuthFailed.code()), 1008);
        assert_eq!(u16::from(CloseCause::AuthTimeout.code()), 1008);
        assert_eq!(u16::from(CloseCause::FrameTooLarge.code()), 1009);
        assert_eq!(u16::from(CloseCause::TooSlow.code()), 1013);
        assert_eq!(u16::from(CloseCause::ConnectionEnded.code()), 1008);
        assert_eq!(u16::from(CloseCause::IdleTimeout.code()), 1001);
        assert_eq!(u16::from(CloseCause::TooManyConnections.code()), 1008);
    }

    #[test]
    fn reassembles_fragments_within_the_limit() {
        let mut r = Reassembler::new(10);
        assert_eq!(
            r.push(Item::FirstText(Bytes::from_static(b"{\"a\""))),
            Ok(None)
        );
        assert_eq!(r.push(Item::Continue(Bytes::from_static(b":"))), Ok(None));
        assert_eq!(
            r.push(Item::Last(Bytes::from_static(b"1}"))),
            Ok(Some(Assembled::Text("{\"a\":1}".to_owned())))
        );
        // the next message starts clean
        assert_eq!(
            r.push(Item::FirstBinary(Bytes::from_static(b"xy"))),
            Ok(None)
        );
        assert_eq!(
            r.push(Item::Last(Bytes::new())),
            Ok(Some(Assembled::Binary))
        );
    }

    #[test]
    fn refuses_oversized_and_malformed_fragments() {
        let mut r = Reassembler::new(4);
        assert_eq!(
            r.push(Item::FirstText(Bytes::from_static(b"abc"))),
            Ok(None)
        );
        assert_eq!(
            r.push(Item::Continue(Bytes::from_static(b"de"))),
            Err(FragmentError::TooLarge)
        );
        // nothing is kept after an overflow
        assert_eq!(r.buf.capacity(), 0);
        assert_eq!(
            r.push(Item::Last(Bytes::from_static(b"x"))),
            Err(FragmentError::Malformed),
            "a continuation without a start"
        );
        assert_eq!(r.push(Item::FirstText(Bytes::from_static(b"a"))), Ok(None));
        assert_eq!(
            r.push(Item::FirstText(Bytes::from_static(b"b"))),
            Err(FragmentError::Malformed),
            "a start inside a message"
        );
        assert_eq!(
            r.push(Item::FirstText(Bytes::from_static(b"\xff"))),
            Ok(None)
        );
        assert_eq!(
            r.push(Item::Last(Bytes::new())),
            Err(FragmentError::Malformed),
            "text that is not UTF-8"
        );
    }

    #[test]
    fn strikes_close_only_after_the_limit_in_a_row() {
        let mut s = Strikes::new(3);
        assert!(!s.strike());
        assert!(!s.strike());
        s.reset();
        assert!(!s.strike());
        assert!(!s.strike());
        assert!(s.strike());
    }
}
