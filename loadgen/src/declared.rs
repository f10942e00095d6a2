//! The declared commands (`ferrogram_core::commands`) as the generator sends
//! them: a WebSocket `command` frame serialized straight from the typed
//! request, a REST route taken from the declaration, a reply read into the
//! declared response type.
//!
//! No command name, REST path or request body is written by hand anywhere
//! in the generator: the test `no_source_file_names_a_declared_command_by_hand`
//! reads every source file and refuses string literals that spell a declared
//! command's name or route, except the few listed in [`HAND_WRITTEN`] with
//! the reason why.

use ferrogram_core::command::{Command, HttpMethod, HttpRoute};
use ferrogram_core::ApiError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The `command` frame calling `C` with `request` under reply id `id`, as
/// the server reads it (`ClientFrame::Command`). Serialized once, straight
/// into the text that goes on the wire: no `serde_json::Value` in between.
pub fn command_frame<C: Command>(id: u64, request: &C::Req) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Frame<'a, R> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: u64,
        command: &'static str,
        body: &'a R,
    }
    serde_json::to_string(&Frame {
        kind: "command",
        id,
        command: C::NAME,
        body: request,
    })
}

/// A `reply` frame of the server, its body read as the response of the
/// command it answers (`ServerFrame::Reply`).
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "R: DeserializeOwned"))]
struct Reply<R> {
    #[serde(default)]
    body: Option<R>,
    #[serde(default)]
    error: Option<ApiError>,
}

/// Why a command got no answer of its declared type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The server refused it.
    #[error("{command}: {error}")]
    Refused {
        command: &'static str,
        error: ApiError,
    },
    #[error("{command}: the connection closed")]
    Closed { command: &'static str },
    #[error("{command}: no reply within {seconds} s")]
    TimedOut { command: &'static str, seconds: u64 },
    /// The frame could not be written or the reply not read.
    #[error("{command}: {message}")]
    Protocol {
        command: &'static str,
        message: String,
    },
}

impl CallError {
    /// The server's error code, or what else went wrong (a tally key).
    pub fn code(&self) -> String {
        match self {
            CallError::Refused { error, .. } => error.code.as_str().to_owned(),
            CallError::Closed { .. } => "closed".to_owned(),
            CallError::TimedOut { .. } => "timed out".to_owned(),
            CallError::Protocol { message, .. } => message.chars().take(40).collect(),
        }
    }
}

impl From<CallError> for String {
    fn from(e: CallError) -> String {
        e.to_string()
    }
}

/// The answer of `C` in the text of a `reply` frame.
pub fn parse_reply<C: Command>(text: &str) -> Result<C::Resp, CallError> {
    answer::<C>(serde_json::from_str(text))
}

/// The answer of `C` in a `reply` frame read as JSON.
pub fn reply_from_value<C: Command>(reply: serde_json::Value) -> Result<C::Resp, CallError> {
    answer::<C>(serde_json::from_value(reply))
}

fn answer<C: Command>(
    reply: Result<Reply<C::Resp>, serde_json::Error>,
) -> Result<C::Resp, CallError> {
    let protocol = |message: String| CallError::Protocol {
        command: C::NAME,
        message,
    };
    match reply.map_err(|e| protocol(format!("unexpected reply: {e}")))? {
        Reply {
            error: Some(error), ..
        } => Err(CallError::Refused {
            command: C::NAME,
            error,
        }),
        Reply {
            body: Some(body), ..
        } => Ok(body),
        Reply { .. } => Err(protocol("a reply with neither body nor error".into())),
    }
}

/// The REST route of `C`; a compile error for a WebSocket-only command.
pub fn rest_route<C: Command>() -> HttpRoute {
    const {
        match C::HTTP {
            Some(route) => route,
            None => panic!("a WebSocket-only command has no REST route"),
        }
    }
}

/// The method and path of `C`'s REST route, as they go on a request line;
/// a compile error for a command without a route or with path or query
/// parameters (whose path is not sent as it is declared).
pub fn plain_route<C: Command>() -> (HttpMethod, &'static str) {
    const {
        match C::HTTP {
            Some(route) if route.params.is_empty() => (route.method, route.path),
            _ => panic!("not a REST route without parameters"),
        }
    }
}

/// String literals of the generator's source that may name a declared
/// command or route: (file under `loadgen/src`, the literal, why). Only for
/// hostile traffic whose point is to be hand-made; a well-formed command
/// goes through the declaration.
pub const HAND_WRITTEN: &[(&str, &str, &str)] = &[];

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogram_core::command::API_PREFIX;
    use ferrogram_core::commands::{self, CreateSession, GetHistory, SendMessage};
    use ferrogram_core::ids::{ChatId, Seq, Timestamp};
    use ferrogram_core::proto::ws::ClientFrame;
    use ferrogram_core::proto::{HistoryRequest, MessageAck};
    use ferrogram_core::ErrorCode;
    use std::path::{Path, PathBuf};

    #[test]
    fn a_command_frame_is_what_the_server_reads_as_that_command() {
        let request = HistoryRequest {
            chat_id: ChatId(42),
            before_seq: None,
            after_seq: Some(Seq::new(7)),
            limit: Some(200),
        };
        let text = command_frame::<GetHistory>(9_007_199_254_740_881, &request).unwrap();
        let frame: ClientFrame = serde_json::from_str(&text).unwrap();
        let ClientFrame::Command { id, command, body } = frame else {
            panic!("not a command frame: {text}");
        };
        assert_eq!(
            (id, command.as_str()),
            (9_007_199_254_740_881, GetHistory::NAME)
        );
        assert_eq!(body, serde_json::to_value(&request).unwrap());
    }

    #[test]
    fn a_reply_is_read_as_the_declared_response_or_the_servers_error() {
        let ack = parse_reply::<SendMessage>(
            r#"{"type":"reply","id":5,"body":{"chat_id":3,"seq":9,"at":1,"duplicate":false}}"#,
        )
        .unwrap();
        assert_eq!(
            ack,
            MessageAck {
                chat_id: ChatId(3),
                seq: Seq::new(9),
                at: Timestamp::from_millis(1),
                duplicate: false
            }
        );
        let refused = parse_reply::<SendMessage>(
            r#"{"type":"reply","id":5,"error":{"code":"rate_limited","message":"slow","retry_after":2}}"#,
        )
        .unwrap_err();
        assert_eq!(refused.code(), "rate_limited");
        assert!(matches!(
            refused,
            CallError::Refused { command, ref error }
                if command == SendMessage::NAME && error.code == ErrorCode::RateLimited
        ));
        // a body of another type is not taken for this command's answer
        let wrong = parse_reply::<SendMessage>(r#"{"type":"reply","id":5,"body":{"chats":[]}}"#)
            .unwrap_err();
        assert!(matches!(wrong, CallError::Protocol { .. }), "{wrong}");
    }

    // --- the source check -------------------------------------------------

    /// How a literal spells a declared command.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Spelled {
        /// Its name, the whole literal.
        Name(&'static str),
        /// Its name in quotes inside the literal: JSON written by hand in a
        /// format string or a raw string.
        QuotedName(&'static str),
        /// Its REST path (of the command named).
        Route(&'static str),
    }

    /// How a string literal names a declared command or route, if it does.
    fn names_a_command(text: &str) -> Option<Spelled> {
        for c in commands::ALL {
            if text == c.name {
                return Some(Spelled::Name(c.name));
            }
            if text.contains(&format!("\"{}\"", c.name)) {
                return Some(Spelled::QuotedName(c.name));
            }
        }
        let tokens = text.split(|ch: char| ch.is_whitespace() || "\"'`?#".contains(ch));
        for token in tokens.filter(|t| !t.is_empty()) {
            for c in commands::ALL {
                if c.http.is_some_and(|http| spells_route(token, http.path)) {
                    return Some(Spelled::Route(c.name));
                }
            }
        }
        None
    }

    /// Whether `token` is the path `path` (`{param}` segments match any
    /// segment, `{}` of a format string too): in full, at the end of a URL,
    /// or after the prefix written as a placeholder (`{API_PREFIX}/me`) or
    /// left out (`/me`).
    fn spells_route(token: &str, path: &str) -> bool {
        let segments = |p: &str| -> Vec<String> {
            p.trim_start_matches('/')
                .split('/')
                .map(str::to_owned)
                .collect()
        };
        let matches = |have: &[String], want: &[String]| {
            have.len() == want.len()
                && have.iter().zip(want).all(|(h, w)| {
                    h == w || (w.starts_with('{') && !h.is_empty() && !h.contains('.'))
                })
        };
        let full = segments(path);
        let relative = segments(path.strip_prefix(API_PREFIX).unwrap_or(path));
        // in full, also at the end of a URL
        if let Some(at) = token.find(API_PREFIX) {
            if matches(&segments(&token[at..]), &full) {
                return true;
            }
        }
        // `/me` or `{API_PREFIX}/me`
        let mut rest = token;
        while let Some(placeholder) = rest.strip_prefix('{') {
            rest = placeholder.split_once('}').map_or("", |(_, after)| after);
        }
        rest.starts_with('/') && matches(&segments(rest), &relative)
    }

    /// Every `.rs` file under `dir`, sorted.
    fn rust_files(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut dirs = vec![dir.to_owned()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
    }

    /// The string and byte-string literals of a source file, outside
    /// attributes (doc comments are `#[doc = "..."]` and may name anything),
    /// in macro arguments (`json!`, `format!`) too.
    fn string_literals(source: &str) -> Vec<String> {
        use proc_macro2::{TokenStream, TokenTree};
        fn walk(tokens: TokenStream, out: &mut Vec<String>) {
            let mut tokens = tokens.into_iter().peekable();
            while let Some(token) = tokens.next() {
                match token {
                    TokenTree::Punct(p) if p.as_char() == '#' => {
                        // `#[...]` or `#![...]`: skip the attribute
                        if matches!(tokens.peek(), Some(TokenTree::Punct(p)) if p.as_char() == '!')
                        {
                            tokens.next();
                        }
                        if matches!(tokens.peek(), Some(TokenTree::Group(g)) if g.delimiter() == proc_macro2::Delimiter::Bracket)
                        {
                            tokens.next();
                        }
                    }
                    TokenTree::Group(group) => walk(group.stream(), out),
                    TokenTree::Literal(literal) => match syn::Lit::new(literal) {
                        syn::Lit::Str(s) => out.push(s.value()),
                        syn::Lit::ByteStr(s) => {
                            out.push(String::from_utf8_lossy(&s.value()).into_owned());
                        }
                        _ => {}
                    },
                    TokenTree::Punct(_) | TokenTree::Ident(_) => {}
                }
            }
        }
        let tokens: TokenStream = source.parse().expect("the source tokenizes");
        let mut out = Vec::new();
        walk(tokens, &mut out);
        out
    }

    /// (file, literal, how) of every literal of `files` that names a
    /// declared command, but for the `allowed` ones; and the allowed ones
    /// that were not found (a stale exception).
    fn hand_written(
        files: &[(String, String)],
        allowed: &[(&str, &str, &str)],
    ) -> (Vec<(String, String, Spelled)>, Vec<String>) {
        let mut found = Vec::new();
        let mut used = vec![false; allowed.len()];
        for (file, source) in files {
            for literal in string_literals(source) {
                let Some(why) = names_a_command(&literal) else {
                    continue;
                };
                match allowed
                    .iter()
                    .position(|(f, l, _)| f == file && *l == literal)
                {
                    Some(i) => used[i] = true,
                    None => found.push((file.clone(), literal, why)),
                }
            }
        }
        let stale = allowed
            .iter()
            .zip(&used)
            .filter(|(_, used)| !**used)
            .map(|((file, literal, _), _)| format!("{file}: {literal:?}"))
            .collect();
        (found, stale)
    }

    #[test]
    fn no_source_file_names_a_declared_command_by_hand() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let files: Vec<(String, String)> = rust_files(&root)
            .into_iter()
            .map(|path| {
                let name = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                (name, std::fs::read_to_string(&path).unwrap())
            })
            .collect();
        assert!(
            files.iter().any(|(f, _)| f == "workload.rs") && files.len() >= 10,
            "the generator's sources were not found under {}",
            root.display()
        );
        for (_, _, why) in HAND_WRITTEN {
            assert!(!why.trim().is_empty(), "every exception says why");
        }
        let (found, stale) = hand_written(&files, HAND_WRITTEN);
        let found: Vec<String> = found
            .iter()
            .map(|(file, literal, how)| format!("{file}: {literal:?} spells {how:?}"))
            .collect();
        assert!(
            found.is_empty(),
            "use the declaration (ferrogram_core::commands: C::NAME, \
             declared::command_frame::<C>, declared::plain_route::<C>, Conn::call::<C>) \
             instead of:\n{}",
            found.join("\n")
        );
        assert!(
            stale.is_empty(),
            "exceptions in declared::HAND_WRITTEN that no longer occur:\n{}",
            stale.join("\n")
        );
    }

    /// The check finds what it is for, wherever the literal is, and lets
    /// through what it must (docs, prose, other paths, the exceptions).
    #[test]
    fn the_source_check_finds_names_and_routes_written_by_hand() {
        use commands::{ChangePassword, GetServerInfo, GetUserKeys, Typing, UpdateMe, Verify};
        let sample = include_str!("../testdata/hand_written.rs.txt");
        let files = vec![("x.rs".to_owned(), sample.to_owned())];
        let exception = CreateSession::NAME;
        let (found, stale) = hand_written(
            &files,
            &[
                ("x.rs", exception, "a test of the exception"),
                ("x.rs", "never there", "a stale exception"),
            ],
        );
        let spelled: Vec<Spelled> = found.iter().map(|(_, _, how)| *how).collect();
        assert_eq!(
            spelled,
            [
                Spelled::Name(Typing::NAME),
                Spelled::Name(UpdateMe::NAME),
                Spelled::QuotedName(GetHistory::NAME),
                Spelled::Route(CreateSession::NAME),
                Spelled::Route(GetUserKeys::NAME),
                Spelled::Route(ChangePassword::NAME),
                Spelled::Route(Verify::NAME),
                Spelled::Route(GetServerInfo::NAME),
            ],
            "{found:#?}"
        );
        assert_eq!(stale, ["x.rs: \"never there\""]);
    }
}
