//! The command-handler trait and the registry that dispatches every command,
//! whether it came from a REST route or a WebSocket frame.
//!
//! Auth, rate limits, size limits, the command log and timing live here, once.
//! A handler only sees a typed request from an authorised caller.

use crate::error::{ApiError, ErrorCode};
use crate::ids::{Origin, SessionId, UserId};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

/// Who may call a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not.
    Public,
    /// A valid session, verified email or not.
    Session,
    /// A valid session of an account whose email is verified.
    Verified,
}

/// The authenticated side of a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSession {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub verified: bool,
}

/// Everything a handler may know about who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    pub request_id: String,
    pub ip: IpAddr,
    pub session: Option<AuthSession>,
    /// The connection the command came in on, when the transport also
    /// pushes events to it (WebSocket); `None` for REST.
    pub origin: Option<Origin>,
}

impl Caller {
    /// The session, for handlers whose access is `Session` or `Verified`
    /// (dispatch guarantees it is there).
    pub fn require_session(&self) -> Result<&AuthSession, ApiError> {
        self.session.as_ref().ok_or_else(ApiError::unauthorized)
    }
}

/// How a command is reached over REST, when it is: its method and path under
/// [`API_PREFIX`], which path and query parameters are merged into its
/// request, and whether it takes a JSON body. Commands without one are
/// WebSocket commands (every command is callable over the WebSocket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpRoute {
    pub method: HttpMethod,
    /// Full path; `{name}` segments are path parameters.
    pub path: &'static str,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    pub params: &'static [Param],
    /// Whether the command takes a JSON request body.
    pub body: bool,
}

/// Prefix of every REST route.
pub const API_PREFIX: &str = "/api/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// Where a parameter is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    Path,
    Query,
}

/// How a parameter's text becomes JSON in the command's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// A JSON string.
    String,
    /// A JSON number (a decimal `i64`).
    Integer,
}

/// One path or query parameter: a field of the command's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub location: ParamIn,
    pub ty: ParamType,
    pub required: bool,
    pub description: &'static str,
}

impl Param {
    pub const fn path(name: &'static str, ty: ParamType, description: &'static str) -> Param {
        Param {
            name,
            location: ParamIn::Path,
            ty,
            required: true,
            description,
        }
    }

    pub const fn query(
        name: &'static str,
        ty: ParamType,
        required: bool,
        description: &'static str,
    ) -> Param {
        Param {
            name,
            location: ParamIn::Query,
            ty,
            required,
            description,
        }
    }
}

/// One command, declared once (`crate::commands`): its name, who may call
/// it, its rate class, its REST route if it has one, and its typed request
/// and response. The server's handler implements [`CommandHandler`] for
/// the same type; the route table and the OpenAPI document are derived
/// from the declarations; the client library calls commands by this type.
pub trait Command: Send + Sync + 'static {
    /// Stable command name, e.g. `session.create`.
    const NAME: &'static str;
    const ACCESS: Access;
    /// Rate class checked before the handler runs (see `RateLimiter`). Every
    /// declared command has one (a test pins it); `None` is for test commands.
    const RATE_CLASS: Option<&'static str>;
    /// The REST route, `None` for a WebSocket-only command.
    const HTTP: Option<HttpRoute>;
    /// Deserialized from the JSON body (REST routes merge path and query
    /// parameters into it).
    type Req: Serialize + DeserializeOwned + Send + 'static;
    type Resp: Serialize + DeserializeOwned + Send + 'static;
}

/// A command's declaration as a value, for tables (`crate::commands::ALL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandInfo {
    pub name: &'static str,
    pub access: Access,
    pub rate_class: Option<&'static str>,
    pub http: Option<HttpRoute>,
}

impl CommandInfo {
    pub const fn of<C: Command>() -> CommandInfo {
        CommandInfo {
            name: C::NAME,
            access: C::ACCESS,
            rate_class: C::RATE_CLASS,
            http: C::HTTP,
        }
    }
}

/// The server's side of a [`Command`]: implemented by the declaration type
/// itself, so name, access, rate class and types come from the declaration.
#[async_trait]
pub trait CommandHandler<C>: Command
where
    C: Send + Sync + 'static,
{
    /// The account a request is about, for per-account rate limits (for
    /// example the normalised email of a log-in attempt). `None`: the
    /// caller's own account, if logged in.
    fn rate_key(_req: &Self::Req) -> Option<String> {
        None
    }

    /// The answer to a request over its rate: by default `rate_limited`.
    /// A command whose requests supersede each other (typing) may drop the
    /// request instead and answer as if it had run.
    fn over_rate(retry_after: u64) -> Result<Self::Resp, ApiError> {
        Err(ApiError::rate_limited(retry_after))
    }

    async fn handle(
        &self,
        ctx: &C,
        caller: &Caller,
        req: Self::Req,
    ) -> Result<Self::Resp, ApiError>;
}

/// What dispatch needs from the server around it.
#[async_trait]
pub trait DispatchEnv: Send + Sync + 'static {
    /// Resolves a bearer token to its session, or `unauthorized` /
    /// `session_expired`. Also refreshes the session's last-seen time.
    async fn authenticate(&self, token: &str) -> Result<AuthSession, ApiError>;
    fn rate_limiter(&self) -> &crate::ratelimit::RateLimiter;
    /// Records one finished command. Must not block.
    fn log_command(&self, entry: &CommandLogEntry);
    /// Largest accepted request body in bytes.
    fn max_request_bytes(&self) -> usize;
}

/// One incoming command, transport-independent.
pub struct Request {
    pub command: String,
    pub ip: IpAddr,
    pub request_id: String,
    pub body: serde_json::Value,
    /// Size of the body as received, checked against `max_request_bytes`.
    pub body_len: usize,
}

/// Who is calling, as far as the transport knows: what [`Registry::dispatch`]
/// authenticates the caller with.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// The bearer token the transport carried, if any (REST): looked up per
    /// command.
    Token(Option<String>),
    /// A session the transport has already authenticated (a WebSocket
    /// connection checks its token with its `auth` frame and again every few
    /// seconds, and is closed when its session is revoked): no token lookup,
    /// which would otherwise cost a database read per command. `origin` is
    /// the live connection the command came in on (see [`Caller::origin`]).
    Session {
        session: AuthSession,
        origin: Option<Origin>,
    },
}

/// One line of the command log. Never holds a body, token, key or password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandLogEntry {
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    pub request_id: String,
    pub ip: String,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub command: String,
    /// `ok` or the error code.
    pub outcome: String,
    pub duration_us: u64,
}

#[async_trait]
trait ErasedHandler<C>: Send + Sync {
    fn access(&self) -> Access;
    fn rate_class(&self) -> Option<&'static str>;
    async fn call(
        &self,
        ctx: &C,
        caller: &Caller,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, ApiError>;
}

struct Erased<H>(H);

#[async_trait]
impl<C, H> ErasedHandler<C> for Erased<H>
where
    C: DispatchEnv,
    H: CommandHandler<C>,
{
    fn access(&self) -> Access {
        H::ACCESS
    }

    fn rate_class(&self) -> Option<&'static str> {
        H::RATE_CLASS
    }

    async fn call(
        &self,
        ctx: &C,
        caller: &Caller,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, ApiError> {
        let req: H::Req = serde_json::from_value(body)
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("invalid request: {e}")))?;
        let rate_scope = H::RATE_CLASS.map(|class| {
            let account = H::rate_key(&req).or_else(|| {
                caller
                    .session
                    .as_ref()
                    .map(|s| format!("user:{}", s.user_id))
            });
            (class, account)
        });
        if let Some((class, account)) = &rate_scope {
            if let Err(retry_after) = ctx
                .rate_limiter()
                .check(class, caller.ip, account.as_deref())
            {
                return H::over_rate(retry_after).and_then(|resp| to_json(H::NAME, resp));
            }
        }
        let result = self.0.handle(ctx, caller, req).await;
        if let Some((class, account)) = &rate_scope {
            let limiter = ctx.rate_limiter();
            match &result {
                Ok(_) => limiter.record_success(class, caller.ip, account.as_deref()),
                Err(e) if e.code.is_failed_proof() => {
                    limiter.record_failure(class, caller.ip, account.as_deref());
                }
                Err(_) => {}
            }
        }
        to_json(H::NAME, result?)
    }
}

fn to_json(command: &'static str, resp: impl Serialize) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(resp).map_err(|e| {
        tracing::error!(command, error = %e, "response serialization failed");
        ApiError::internal()
    })
}

/// Duplicate names are a programming error caught at start-up.
#[derive(Debug, thiserror::Error)]
#[error("command {0} is registered twice")]
pub struct DuplicateCommand(pub &'static str);

/// All commands the server answers, by name.
pub struct Registry<C> {
    handlers: BTreeMap<&'static str, Box<dyn ErasedHandler<C>>>,
}

impl<C: DispatchEnv> Default for Registry<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: DispatchEnv> Registry<C> {
    pub fn new() -> Self {
        Self {
            handlers: BTreeMap::new(),
        }
    }

    pub fn register<H: CommandHandler<C>>(&mut self, handler: H) -> Result<(), DuplicateCommand> {
        if self.handlers.contains_key(H::NAME) {
            return Err(DuplicateCommand(H::NAME));
        }
        self.handlers.insert(H::NAME, Box::new(Erased(handler)));
        Ok(())
    }

    /// Sorted command names.
    pub fn names(&self) -> Vec<&'static str> {
        self.handlers.keys().copied().collect()
    }

    /// Who may call a command, `None` for an unknown command.
    pub fn access(&self, name: &str) -> Option<Access> {
        self.handlers.get(name).map(|h| h.access())
    }

    /// The rate class of a command, `None` for an unknown command or one
    /// without a class.
    pub fn rate_class(&self, name: &str) -> Option<&'static str> {
        self.handlers.get(name).and_then(|h| h.rate_class())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.handlers.contains_key(name)
    }

    /// Runs one command: size check, auth (by `credentials`), access, rate
    /// limit, handler, log.
    pub async fn dispatch(
        &self,
        ctx: &C,
        req: Request,
        credentials: Credentials,
    ) -> Result<serde_json::Value, ApiError> {
        let started = Instant::now();
        let (token, session, origin) = match credentials {
            Credentials::Token(token) => (token, None, None),
            Credentials::Session { session, origin } => (None, Some(session), origin),
        };
        let mut caller = Caller {
            request_id: req.request_id,
            ip: req.ip,
            session,
            origin,
        };
        let result = self
            .run(
                ctx,
                &mut caller,
                &req.command,
                token.as_deref(),
                req.body,
                req.body_len,
            )
            .await;
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.code.as_str().to_owned(),
        };
        let command = if self.contains(&req.command) {
            req.command
        } else {
            // never echo arbitrary client input into the log
            "<unknown>".to_owned()
        };
        ctx.log_command(&CommandLogEntry {
            time: rfc3339_now(),
            request_id: caller.request_id.clone(),
            ip: caller.ip.to_string(),
            user_id: caller.session.as_ref().map(|s| s.user_id),
            session_id: caller.session.as_ref().map(|s| s.session_id.clone()),
            command,
            outcome,
            duration_us: started.elapsed().as_micros() as u64,
        });
        result
    }

    async fn run(
        &self,
        ctx: &C,
        caller: &mut Caller,
        command: &str,
        token: Option<&str>,
        body: serde_json::Value,
        body_len: usize,
    ) -> Result<serde_json::Value, ApiError> {
        let handler = self
            .handlers
            .get(command)
            .ok_or_else(|| ApiError::new(ErrorCode::UnknownCommand, "unknown command"))?;
        if body_len > ctx.max_request_bytes() {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("request larger than {} bytes", ctx.max_request_bytes()),
            ));
        }
        if let Some(token) = token {
            match ctx.authenticate(token).await {
                Ok(session) => caller.session = Some(session),
                // a public command still works with a stale token
                Err(e) if handler.access() != Access::Public => return Err(e),
                Err(_) => {}
            }
        }
        match (handler.access(), &caller.session) {
            (Access::Public, _) => {}
            (_, None) => return Err(ApiError::unauthorized()),
            (Access::Verified, Some(s)) if !s.verified => {
                return Err(ApiError::new(
                    ErrorCode::EmailNotVerified,
                    "verify your email address first",
                ))
            }
            _ => {}
        }
        handler.call(ctx, caller, body).await
    }
}

/// Current UTC time as RFC 3339 with milliseconds, without extra crates.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339_millis(now.as_millis() as i64)
}

/// Formats milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
#[allow(clippy::many_single_char_names)] // the civil-calendar algorithm's own names
pub fn format_rfc3339_millis(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::{FailureRule, Rate, RateLimiter, RateRule};
    use std::collections::HashMap;
    use std::sync::Mutex;

    struct Env {
        limiter: RateLimiter,
        log: Mutex<Vec<CommandLogEntry>>,
    }

    #[async_trait]
    impl DispatchEnv for Env {
        async fn authenticate(&self, token: &str) -> Result<AuthSession, ApiError> {
            match token {
                "good" => Ok(AuthSession {
                    user_id: UserId(1),
                    session_id: SessionId("s1".into()),
                    verified: true,
                }),
                "unverified" => Ok(AuthSession {
                    user_id: UserId(2),
                    session_id: SessionId("s2".into()),
                    verified: false,
                }),
                _ => Err(ApiError::unauthorized()),
            }
        }
        fn rate_limiter(&self) -> &RateLimiter {
            &self.limiter
        }
        fn log_command(&self, entry: &CommandLogEntry) {
            self.log.lock().unwrap().push(entry.clone());
        }
        fn max_request_bytes(&self) -> usize {
            100
        }
    }

    #[derive(Serialize, Deserialize)]
    struct EchoReq {
        text: String,
    }

    struct Echo;
    impl Command for Echo {
        const NAME: &'static str = "test.echo";
        const ACCESS: Access = Access::Public;
        const RATE_CLASS: Option<&'static str> = Some("echo");
        type Req = EchoReq;
        type Resp = serde_json::Value;
        const HTTP: Option<HttpRoute> = None;
    }
    #[async_trait]
    impl CommandHandler<Env> for Echo {
        fn rate_key(req: &EchoReq) -> Option<String> {
            Some(req.text.clone())
        }
        async fn handle(
            &self,
            _: &Env,
            caller: &Caller,
            req: EchoReq,
        ) -> Result<serde_json::Value, ApiError> {
            Ok(serde_json::json!({
                "text": req.text,
                "user": caller.session.as_ref().map(|s| s.user_id),
                "origin": caller.origin.map(|o| o.0),
            }))
        }
    }

    struct Secret;
    impl Command for Secret {
        const NAME: &'static str = "test.secret";
        const ACCESS: Access = Access::Verified;
        const RATE_CLASS: Option<&'static str> = None;
        type Req = serde_json::Value;
        type Resp = String;
        const HTTP: Option<HttpRoute> = None;
    }
    #[async_trait]
    impl CommandHandler<Env> for Secret {
        async fn handle(
            &self,
            _: &Env,
            _: &Caller,
            _: serde_json::Value,
        ) -> Result<String, ApiError> {
            Ok("yes".into())
        }
    }

    /// Over its rate, answers `"dropped"` instead of an error.
    struct Droppable;
    impl Command for Droppable {
        const NAME: &'static str = "test.drop";
        const ACCESS: Access = Access::Session;
        const RATE_CLASS: Option<&'static str> = Some("drop");
        type Req = serde_json::Value;
        type Resp = String;
        const HTTP: Option<HttpRoute> = None;
    }
    #[async_trait]
    impl CommandHandler<Env> for Droppable {
        fn over_rate(_: u64) -> Result<String, ApiError> {
            Ok("dropped".into())
        }
        async fn handle(
            &self,
            _: &Env,
            _: &Caller,
            _: serde_json::Value,
        ) -> Result<String, ApiError> {
            Ok("ran".into())
        }
    }

    /// Checks a "password": right when it is "right".
    struct Proof;
    impl Command for Proof {
        const NAME: &'static str = "test.proof";
        const ACCESS: Access = Access::Session;
        const RATE_CLASS: Option<&'static str> = Some("proof");
        type Req = EchoReq;
        type Resp = String;
        const HTTP: Option<HttpRoute> = None;
    }
    #[async_trait]
    impl CommandHandler<Env> for Proof {
        async fn handle(&self, _: &Env, _: &Caller, req: EchoReq) -> Result<String, ApiError> {
            if req.text == "right" {
                Ok("welcome".into())
            } else {
                Err(ApiError::new(ErrorCode::InvalidCredentials, "wrong"))
            }
        }
    }

    fn setup() -> (Registry<Env>, Env) {
        let mut reg = Registry::new();
        reg.register(Echo).unwrap();
        reg.register(Secret).unwrap();
        reg.register(Droppable).unwrap();
        reg.register(Proof).unwrap();
        let mut rules = HashMap::new();
        rules.insert(
            "echo".to_owned(),
            RateRule::both(Rate::new(100, 60), Rate::new(2, 60)),
        );
        rules.insert("drop".to_owned(), RateRule::per_account(Rate::new(1, 60)));
        rules.insert(
            "proof".to_owned(),
            RateRule::per_ip(Rate::new(100, 60)).with_failures(FailureRule {
                per_account_ip: 2,
                per_ip: 100,
                backoff_secs: 30,
                max_backoff_secs: 60,
                forget_after_secs: 60,
            }),
        );
        let env = Env {
            limiter: RateLimiter::new(rules),
            log: Mutex::new(Vec::new()),
        };
        (reg, env)
    }

    fn token(token: Option<&str>) -> Credentials {
        Credentials::Token(token.map(Into::into))
    }

    fn request(command: &str, body: serde_json::Value) -> Request {
        let body_len = body.to_string().len();
        Request {
            command: command.into(),
            ip: "127.0.0.1".parse().unwrap(),
            request_id: "r1".into(),
            body,
            body_len,
        }
    }

    #[tokio::test]
    async fn a_caller_authenticated_by_the_transport_needs_no_token_lookup() {
        let (reg, env) = setup();
        let session = AuthSession {
            user_id: UserId(7),
            session_id: SessionId("ws".into()),
            verified: true,
        };
        // The token would not authenticate: it is not looked at.
        let ok = reg
            .dispatch(
                &env,
                request("test.secret", serde_json::json!({})),
                Credentials::Session {
                    session: session.clone(),
                    origin: None,
                },
            )
            .await;
        assert!(ok.is_ok(), "{ok:?}");
        // access rules still apply to the given session
        let unverified = AuthSession {
            verified: false,
            ..session
        };
        let err = reg
            .dispatch(
                &env,
                request("test.secret", serde_json::json!({})),
                Credentials::Session {
                    session: unverified,
                    origin: None,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::EmailNotVerified);
        let log = env.log.lock().unwrap();
        assert_eq!(log[0].user_id, Some(UserId(7)));
        assert_eq!(log[0].outcome, "ok");
    }

    #[tokio::test]
    async fn the_handler_learns_the_connection_a_command_came_in_on() {
        let (reg, env) = setup();
        let session = AuthSession {
            user_id: UserId(7),
            session_id: SessionId("ws".into()),
            verified: true,
        };
        let body = |text: &str| serde_json::json!({ "text": text });
        let from = reg
            .dispatch(
                &env,
                request("test.echo", body("from")),
                Credentials::Session {
                    session: session.clone(),
                    origin: Some(Origin(42)),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (from["origin"].clone(), from["user"].clone()),
            (42.into(), 7.into())
        );
        let plain = reg
            .dispatch(
                &env,
                request("test.echo", body("plain")),
                Credentials::Session {
                    session,
                    origin: None,
                },
            )
            .await
            .unwrap();
        assert!(plain["origin"].is_null());
    }

    #[tokio::test]
    async fn duplicate_names_are_refused() {
        let (mut reg, _) = setup();
        assert!(reg.register(Echo).is_err());
        assert_eq!(
            reg.names(),
            vec!["test.drop", "test.echo", "test.proof", "test.secret"]
        );
        assert_eq!(reg.rate_class("test.echo"), Some("echo"));
        assert_eq!(reg.rate_class("test.secret"), None);
    }

    #[tokio::test]
    async fn dispatch_checks_access_and_logs_outcomes() {
        let (reg, env) = setup();
        let ok = reg
            .dispatch(
                &env,
                request("test.echo", serde_json::json!({"text": "a"})),
                token(Some("good")),
            )
            .await
            .unwrap();
        assert_eq!(ok["user"], 1);
        let err = reg
            .dispatch(
                &env,
                request("test.secret", serde_json::json!({})),
                token(None),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthorized);
        let err = reg
            .dispatch(
                &env,
                request("test.secret", serde_json::json!({})),
                token(Some("unverified")),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::EmailNotVerified);
        let err = reg
            .dispatch(
                &env,
                request("test.secret", serde_json::json!({})),
                token(Some("forged")),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthorized);
        // a bad token on a public command is ignored, not fatal
        assert!(reg
            .dispatch(
                &env,
                request("test.echo", serde_json::json!({"text": "b"})),
                token(Some("forged"))
            )
            .await
            .is_ok());
        let log = env.log.lock().unwrap();
        let outcomes: Vec<_> = log.iter().map(|e| e.outcome.as_str()).collect();
        assert_eq!(
            outcomes,
            [
                "ok",
                "unauthorized",
                "email_not_verified",
                "unauthorized",
                "ok"
            ]
        );
        assert_eq!(log[0].user_id, Some(UserId(1)));
        assert_eq!(log[1].user_id, None);
    }

    #[tokio::test]
    async fn bad_bodies_unknown_commands_and_size() {
        let (reg, env) = setup();
        let err = reg
            .dispatch(
                &env,
                request("test.echo", serde_json::json!({"text": 5})),
                token(None),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest);
        let err = reg
            .dispatch(
                &env,
                request("nope; drop table", serde_json::json!({})),
                token(None),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownCommand);
        let big = "x".repeat(200);
        let err = reg
            .dispatch(
                &env,
                request("test.echo", serde_json::json!({"text": big})),
                token(None),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge);
        let log = env.log.lock().unwrap();
        assert_eq!(log[1].command, "<unknown>");
    }

    #[tokio::test]
    async fn rate_limit_per_account_key() {
        let (reg, env) = setup();
        for _ in 0..2 {
            reg.dispatch(
                &env,
                request("test.echo", serde_json::json!({"text": "k"})),
                token(None),
            )
            .await
            .unwrap();
        }
        let err = reg
            .dispatch(
                &env,
                request("test.echo", serde_json::json!({"text": "k"})),
                token(None),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::RateLimited);
        assert!(err.retry_after.unwrap() >= 1);
        assert!(reg
            .dispatch(
                &env,
                request("test.echo", serde_json::json!({"text": "other"})),
                token(None)
            )
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn a_droppable_command_over_its_rate_answers_without_running() {
        let (reg, env) = setup();
        let call = || {
            reg.dispatch(
                &env,
                request("test.drop", serde_json::json!({})),
                token(Some("good")),
            )
        };
        assert_eq!(call().await.unwrap(), "ran");
        assert_eq!(call().await.unwrap(), "dropped");
        // the budget is the caller's account: another account still runs
        let other = reg
            .dispatch(
                &env,
                request("test.drop", serde_json::json!({})),
                token(Some("unverified")),
            )
            .await
            .unwrap();
        assert_eq!(other, "ran");
    }

    #[tokio::test]
    async fn failed_proofs_back_off_and_a_success_starts_over() {
        let (reg, env) = setup();
        let call = |text: &str| {
            reg.dispatch(
                &env,
                request("test.proof", serde_json::json!({ "text": text })),
                token(Some("good")),
            )
        };
        assert_eq!(
            call("wrong").await.unwrap_err().code,
            ErrorCode::InvalidCredentials
        );
        assert_eq!(call("right").await.unwrap(), "welcome");
        // the success reset the count: two more failures before the wait
        for _ in 0..2 {
            assert_eq!(
                call("wrong").await.unwrap_err().code,
                ErrorCode::InvalidCredentials
            );
        }
        let err = call("right").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::RateLimited);
        assert_eq!(err.retry_after, Some(30));
    }

    #[test]
    fn formats_times() {
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_millis(1_795_967_096_123),
            "2026-11-29T15:44:56.123Z"
        );
        assert_eq!(
            format_rfc3339_millis(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
