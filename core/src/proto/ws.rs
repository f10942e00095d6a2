//! WebSocket frames (`GET /api/v1/ws`). Text frames, one JSON object each,
//! tagged by `type`.
//!
//! 1. The client's first frame is `auth` with its session token (never in the URL).
//!    The server answers `ready` or closes with a reason.
//! 2. `command` frames call any command of the registry by name; each gets a
//!    `reply` with the same `id`.
//! 3. `resume` asks for every event after the given positions; the server sends
//!    them in order, then `resumed`, then live events. Events carry chat and seq.

use crate::error::ApiError;
use crate::ids::{ChatId, Seq, SessionId, Timestamp, UserId};
use crate::proto::chat::{ChatEvent, LiveEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumePosition {
    pub chat_id: ChatId,
    /// The last seq the client has; it receives everything after it.
    pub seq: Seq,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Auth {
        token: String,
    },
    Command {
        id: u64,
        command: String,
        #[serde(default)]
        body: serde_json::Value,
    },
    Resume {
        positions: Vec<ResumePosition>,
    },
    Ping,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Ready {
        user_id: UserId,
        session_id: SessionId,
        server_time: Timestamp,
    },
    Reply {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ApiError>,
    },
    Event {
        event: ChatEvent,
    },
    Live {
        event: LiveEvent,
    },
    /// Every missed event of the resumed chats has been sent.
    Resumed {
        positions: Vec<ResumePosition>,
    },
    /// A frame-level problem (not JSON, unknown type, too large...).
    Error {
        error: ApiError,
    },
    Pong,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_from_their_documented_shape() {
        let f: ClientFrame = serde_json::from_str(r#"{"type":"auth","token":"abc"}"#).unwrap();
        assert!(matches!(f, ClientFrame::Auth { token } if token == "abc"));
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"command","id":7,"command":"me.get"}"#).unwrap();
        assert!(
            matches!(f, ClientFrame::Command { id: 7, ref command, .. } if command == "me.get")
        );
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"resume","positions":[{"chat_id":3,"seq":41}]}"#)
                .unwrap();
        assert!(
            matches!(f, ClientFrame::Resume { ref positions } if positions[0].seq == Seq::new(41))
        );
        assert!(
            serde_json::from_str::<ClientFrame>(r#"{"type":"auth","token":"a","x":1}"#).is_err()
        );
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"launch"}"#).is_err());
    }

    #[test]
    fn replies_carry_either_body_or_error() {
        let ok = ServerFrame::Reply {
            id: 1,
            body: Some(serde_json::json!({"a": 1})),
            error: None,
        };
        let v = serde_json::to_value(&ok).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "reply", "id": 1, "body": {"a": 1}})
        );
        let err = ServerFrame::Reply {
            id: 2,
            body: None,
            error: Some(ApiError::unauthorized()),
        };
        let v = serde_json::to_value(&err).unwrap();
        assert_eq!(v["error"]["code"], "unauthorized");
        assert!(v.get("body").is_none());
    }
}
