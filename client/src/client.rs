//! The connection to one server: transport (HTTP or HTTPS via rustls), the
//! server check, and the account flows that need no session (register, verify,
//! pre-login). Logging in, which makes a [`Session`](crate::Session), is in
//! `login.rs`: this module names nothing of the session.

use std::sync::Arc;
use std::time::Duration;

use ferrogram_core::b64::B64;
use ferrogram_core::command::{Command, HttpMethod, HttpRoute, ParamIn};
use ferrogram_core::commands;
use ferrogram_core::crypto::Identity;
use ferrogram_core::proto::{
    Empty, KdfParams, PreloginRequest, PreloginResponse, RegisterRequest, RegisterResponse,
    ResendVerificationRequest, ResendVerificationResponse, ServerInfo, VerifyRequest,
    VerifyResponse,
};
use ferrogram_core::validate;
use reqwest::{Method, Url};
use serde::Serialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::addr::ServerAddr;
use crate::error::{self, ClientError};
use crate::keys::{self, check_new_password, run_blocking};

/// The name every Ferrogram server gives in `GET /api/v1/server`.
pub const SERVER_NAME: &str = "ferrogram";
/// Prefix of every REST route.
pub const API_PREFIX: &str = ferrogram_core::command::API_PREFIX;

/// Tunables of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// KDF parameters for new keys (register, password change) instead of the
    /// larger of the server's minimum and [`KdfParams::DEFAULT`]. Also the
    /// weakest parameters accepted from the server at log-in (default:
    /// [`KdfParams::DEFAULT`], so a hostile server cannot make the client send
    /// an `auth_key` that is cheap to brute-force). Meant for tests and
    /// benchmarks.
    pub kdf_override: Option<KdfParams>,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request.
    pub request_timeout: Duration,
    /// The local address to connect from (`None`: the system chooses).
    /// Tests use it to appear as several clients on loopback.
    pub local_address: Option<std::net::IpAddr>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            kdf_override: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            local_address: None,
        }
    }
}

/// What a new account is made of. The password never leaves the client: only
/// keys derived from it are sent.
pub struct RegisterParams {
    pub email: String,
    pub handle: String,
    pub display_name: String,
    pub password: Zeroizing<String>,
    /// A key pair generated beforehand; `None` generates a fresh one (two
    /// RSA-3072 keys: this takes seconds). Tests and load generators share one.
    pub identity: Option<Arc<Identity>>,
}

impl RegisterParams {
    pub fn new(
        email: impl Into<String>,
        handle: impl Into<String>,
        display_name: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            email: email.into(),
            handle: handle.into(),
            display_name: display_name.into(),
            password: Zeroizing::new(password.into()),
            identity: None,
        }
    }

    /// Uses `identity` instead of generating new keys.
    #[must_use]
    pub fn with_identity(mut self, identity: Arc<Identity>) -> Self {
        self.identity = Some(identity);
        self
    }
}

impl std::fmt::Debug for RegisterParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterParams")
            .field("email", &self.email)
            .field("handle", &self.handle)
            .field("display_name", &self.display_name)
            .field("password", &"<hidden>")
            .finish_non_exhaustive()
    }
}

/// A connection to a server that answered as Ferrogram. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    addr: ServerAddr,
    base_url: String,
    info: ServerInfo,
    options: ClientOptions,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.base_url)
            .field("version", &self.inner.info.version)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects with default options: see [`Client::connect_with`].
    pub async fn connect(addr: ServerAddr) -> Result<Client, ClientError> {
        Self::connect_with(addr, ClientOptions::default()).await
    }

    /// Asks `GET /api/v1/server` and keeps the connection only if the answer
    /// says `ferrogram` and a protocol version this client speaks.
    pub async fn connect_with(
        addr: ServerAddr,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let http = build_http(&addr, &options)?;
        let base_url = addr.base_url();
        let not_ferrogram = |reason: String| ClientError::NotFerrogram {
            addr: base_url.clone(),
            reason,
        };
        let server_info = rest_route::<commands::GetServerInfo>();
        let (url, _) = rest_request(&base_url, &server_info, &Empty {})?;
        let response = http
            .get(url)
            .send()
            .await
            .map_err(|e| error::from_transport(&base_url, &e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| error::from_transport(&base_url, &e))?;
        if !status.is_success() {
            return Err(not_ferrogram(format!(
                "GET {} answered HTTP {}",
                server_info.path,
                status.as_u16()
            )));
        }
        let info: ServerInfo = serde_json::from_slice(&body).map_err(|_| {
            not_ferrogram(format!(
                "GET {} did not answer with a server description",
                server_info.path
            ))
        })?;
        if info.name != SERVER_NAME {
            return Err(not_ferrogram(format!(
                "it calls itself {:?}",
                info.name.chars().take(64).collect::<String>()
            )));
        }
        if info.protocol_version != ferrogram_core::PROTOCOL_VERSION {
            return Err(ClientError::Protocol(format!(
                "the server speaks protocol version {}, this client speaks {}",
                info.protocol_version,
                ferrogram_core::PROTOCOL_VERSION
            )));
        }
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                addr,
                base_url,
                info,
                options,
            }),
        })
    }

    pub fn addr(&self) -> &ServerAddr {
        &self.inner.addr
    }

    /// `http(s)://host:port`.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// What the server said about itself when we connected.
    pub fn server_info(&self) -> &ServerInfo {
        &self.inner.info
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Asks the server again for its description.
    pub async fn fetch_server_info(&self) -> Result<ServerInfo, ClientError> {
        self.call::<commands::GetServerInfo>(&Empty {}, None).await
    }

    /// KDF parameters for new keys: the override if set, else the larger of the
    /// server's minimum and [`KdfParams::DEFAULT`] in each dimension.
    pub fn kdf_for_new_keys(&self) -> KdfParams {
        if let Some(kdf) = self.inner.options.kdf_override {
            return kdf;
        }
        let min = self.inner.info.min_kdf;
        let d = KdfParams::DEFAULT;
        KdfParams {
            alg: d.alg,
            m_cost_kib: d.m_cost_kib.max(min.m_cost_kib),
            t_cost: d.t_cost.max(min.t_cost),
            p_cost: d.p_cost.max(min.p_cost),
        }
    }

    /// The weakest KDF parameters this client accepts for an existing account.
    /// Not the server's minimum: the server is the party to protect against.
    pub(crate) fn kdf_floor(&self) -> KdfParams {
        self.inner
            .options
            .kdf_override
            .unwrap_or(KdfParams::DEFAULT)
    }

    /// `POST /accounts`: checks the input, generates (or takes) the key pair,
    /// derives `auth_key` and `wrap_key` from the password and a fresh salt,
    /// seals the private keys, and sends only public material.
    pub async fn register(&self, params: RegisterParams) -> Result<RegisterResponse, ClientError> {
        let email = validate::email(&params.email).map_err(ClientError::InvalidInput)?;
        let handle = validate::handle(&params.handle).map_err(ClientError::InvalidInput)?;
        let display_name =
            validate::display_name(&params.display_name).map_err(ClientError::InvalidInput)?;
        check_new_password(&params.password)?;
        let kdf = self.kdf_for_new_keys();
        let password = params.password.clone();
        let identity = params.identity.clone();
        let material = run_blocking(move || keys::new_account(&password, kdf, identity)).await?;
        let request = RegisterRequest {
            email,
            handle,
            display_name,
            auth_key: material.auth_key.to_b64(),
            kdf_salt: B64(material.salt),
            kdf,
            public_keys: material.public_keys,
            sealed_keys: B64(material.sealed_keys),
        };
        self.call::<commands::Register>(&request, None).await
    }

    /// `POST /accounts/verify` with the 6-digit code from the mail.
    pub async fn verify_code(
        &self,
        email: &str,
        code: &str,
    ) -> Result<VerifyResponse, ClientError> {
        let email = validate::email(email).map_err(ClientError::InvalidInput)?;
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ClientError::InvalidInput(ferrogram_core::ApiError::new(
                ferrogram_core::ErrorCode::InvalidCode,
                "the verification code has 6 digits",
            )));
        }
        let request = VerifyRequest {
            email: Some(email),
            code: Some(code.to_owned()),
            token: None,
        };
        self.call::<commands::Verify>(&request, None).await
    }

    /// `POST /accounts/verify` with the token of the mail's link.
    pub async fn verify_link_token(&self, token: &str) -> Result<VerifyResponse, ClientError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(ClientError::invalid_input("the link token is empty"));
        }
        let request = VerifyRequest {
            email: None,
            code: None,
            token: Some(token.to_owned()),
        };
        self.call::<commands::Verify>(&request, None).await
    }

    /// `POST /accounts/verification`: sends a new code and link.
    pub async fn resend_verification(
        &self,
        email: &str,
    ) -> Result<ResendVerificationResponse, ClientError> {
        let email = validate::email(email).map_err(ClientError::InvalidInput)?;
        let request = ResendVerificationRequest { email };
        self.call::<commands::ResendVerification>(&request, None)
            .await
    }

    /// `GET /prelogin?email=`: the account's salt and KDF parameters (a stable
    /// fake for unknown emails).
    pub async fn prelogin(&self, email: &str) -> Result<PreloginResponse, ClientError> {
        let email = validate::email(email).map_err(ClientError::InvalidInput)?;
        self.call::<commands::Prelogin>(&PreloginRequest { email }, None)
            .await
    }

    pub(crate) async fn logout_token(&self, token: &str) -> Result<(), ClientError> {
        self.call::<commands::DeleteCurrentSession>(&Empty {}, Some(token))
            .await
            .map(|_| ())
    }

    /// Any request, for tests of bad input: `path` is from the server root
    /// (`/api/v1/me`, `/verify?token=...`). Answers the status and the body as
    /// JSON (a body that is not JSON comes back as a JSON string).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Result<(u16, Value), ClientError> {
        let bytes = body
            .map(|b| serde_json::to_vec(&b))
            .transpose()
            .map_err(|e| ClientError::invalid_input(e.to_string()))?;
        let (status, text) = self
            .raw_bytes(method, path, bytes, Some("application/json"), token)
            .await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// Like [`Client::raw`] with a body of any bytes (malformed JSON, huge
    /// bodies). Answers the status and the body as text.
    pub async fn raw_bytes(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
        token: Option<&str>,
    ) -> Result<(u16, String), ClientError> {
        let url = Url::parse(&format!("{}{path}", self.inner.base_url))
            .map_err(|e| ClientError::invalid_input(format!("bad path {path:?}: {e}")))?;
        let mut request = self.inner.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            if let Some(content_type) = content_type {
                request = request.header(reqwest::header::CONTENT_TYPE, content_type);
            }
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| self.transport_error(&e))?;
        Ok((status, text))
    }

    /// Calls one command over REST by its declaration: the declared method
    /// and path, path and query parameters taken from the request, the rest
    /// as the JSON body; the typed answer, or [`ClientError::Api`]. A
    /// WebSocket-only command does not compile here (use the `Messenger`).
    pub(crate) async fn call<C: Command>(
        &self,
        request: &C::Req,
        token: Option<&str>,
    ) -> Result<C::Resp, ClientError> {
        let route = rest_route::<C>();
        let (url, body) = rest_request(&self.inner.base_url, &route, request)?;
        let mut builder = self.inner.http.request(reqwest_method(route.method), url);
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        match body {
            RestBody::None => {}
            RestBody::Request => builder = builder.json(request),
            RestBody::Rest(fields) => builder = builder.json(&fields),
        }
        let response = builder.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(error::from_error_response(status.as_u16(), &bytes));
        }
        let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        serde_json::from_slice(bytes)
            .map_err(|e| ClientError::Protocol(format!("could not read the server's answer: {e}")))
    }

    fn transport_error(&self, err: &reqwest::Error) -> ClientError {
        error::from_transport(&self.inner.base_url, err)
    }
}

/// The REST route of a command; a compile error for a WebSocket-only one.
fn rest_route<C: Command>() -> HttpRoute {
    const {
        match C::HTTP {
            Some(route) => route,
            None => panic!("a WebSocket-only command: call it through the Messenger"),
        }
    }
}

fn reqwest_method(method: HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
    }
}

/// What a REST call sends as its body.
#[derive(Debug, PartialEq)]
enum RestBody {
    None,
    /// The request as it is (a route without parameters).
    Request,
    /// The request's fields that are not path or query parameters.
    Rest(Map<String, Value>),
}

/// The URL of a command's route for `request` (path parameters as
/// percent-encoded segments, query parameters as a query string) and its body.
fn rest_request(
    base_url: &str,
    route: &HttpRoute,
    request: &impl Serialize,
) -> Result<(Url, RestBody), ClientError> {
    let mut url = Url::parse(base_url)
        .map_err(|e| ClientError::invalid_input(format!("bad server URL: {e}")))?;
    let mut fields = if route.params.is_empty() {
        Map::new()
    } else {
        match serde_json::to_value(request) {
            Ok(Value::Object(fields)) => fields,
            _ => {
                return Err(ClientError::invalid_input(
                    "the request is not a JSON object",
                ))
            }
        }
    };
    let mut take = |name: &str| -> Option<String> {
        match fields.remove(name)? {
            Value::Null => None,
            Value::String(text) => Some(text),
            other => Some(other.to_string()),
        }
    };
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|()| ClientError::invalid_input("the server URL cannot take a path"))?;
        segments.pop_if_empty();
        for segment in route.path.trim_start_matches('/').split('/') {
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let value = take(name).ok_or_else(|| {
                        ClientError::invalid_input(format!("the request has no `{name}`"))
                    })?;
                    segments.push(&value);
                }
                None => {
                    segments.push(segment);
                }
            }
        }
    }
    let query: Vec<(&str, String)> = route
        .params
        .iter()
        .filter(|p| p.location == ParamIn::Query)
        .filter_map(|p| take(p.name).map(|v| (p.name, v)))
        .collect();
    if !query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in &query {
            pairs.append_pair(name, value);
        }
    }
    let body = match (route.body, route.params.is_empty()) {
        (false, _) => RestBody::None,
        (true, true) => RestBody::Request,
        (true, false) => RestBody::Rest(fields),
    };
    Ok((url, body))
}

fn build_http(addr: &ServerAddr, options: &ClientOptions) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("ferrogram-client/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        // A redirect could carry a request (and its token) somewhere else.
        .redirect(reqwest::redirect::Policy::none())
        .local_address(options.local_address)
        .no_proxy();
    if addr.tls {
        builder = builder.https_only(true);
        if let Some(path) = &addr.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                ClientError::invalid_input(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ClientError::invalid_input(format!(
                    "CA file {} holds no usable PEM certificate: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(ClientError::invalid_input(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
            // Merged with the system roots (rustls-platform-verifier).
            builder = builder.tls_certs_merge(certs);
        }
    }
    builder
        .build()
        .map_err(|e| ClientError::invalid_input(format!("cannot set up HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogram_core::ids::Timestamp;
    use ferrogram_core::ErrorCode;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type RequestLog = Arc<std::sync::Mutex<Vec<String>>>;

    /// An HTTP server on loopback answering every request with `status` and
    /// `body`.
    async fn fake_server(status: u16, body: String) -> (ServerAddr, RequestLog) {
        routed_server(vec![("/", status, body)]).await
    }

    /// An HTTP server answering by the longest matching path prefix, keeping
    /// the head (request line and headers) of each request.
    async fn routed_server(routes: Vec<(&'static str, u16, String)>) -> (ServerAddr, RequestLog) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = ServerAddr::from(listener.local_addr().unwrap());
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                // A TLS hello (not ASCII) gets the plain answer at once.
                while !request.windows(4).any(|w| w == b"\r\n\r\n")
                    && request.first().is_none_or(u8::is_ascii_alphabetic)
                {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let line = text.lines().next().unwrap_or("").to_owned();
                let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
                requests.lock().unwrap().push(text);
                let (status, body) = routes
                    .iter()
                    .filter(|(prefix, _, _)| path.starts_with(prefix))
                    .max_by_key(|(prefix, _, _)| prefix.len())
                    .map_or((404, String::new()), |(_, s, b)| (*s, b.clone()));
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(response.as_bytes()).await.ok();
                stream.shutdown().await.ok();
            }
        });
        (addr, log)
    }

    fn server_info(name: &str, min_kdf: KdfParams) -> String {
        serde_json::to_string(&ServerInfo {
            name: name.into(),
            version: "0.1.0".into(),
            protocol_version: ferrogram_core::PROTOCOL_VERSION,
            features: vec![],
            registration_open: true,
            min_kdf,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn accepts_a_ferrogram_server() {
        let (addr, _) = fake_server(200, server_info("ferrogram", KdfParams::DEFAULT)).await;
        let client = Client::connect(addr.clone()).await.unwrap();
        assert_eq!(client.server_info().name, "ferrogram");
        assert_eq!(client.base_url(), addr.base_url());
    }

    #[tokio::test]
    async fn refuses_other_servers() {
        let cases = [
            (
                200,
                server_info("mastodon", KdfParams::DEFAULT),
                "calls itself \"mastodon\"",
            ),
            (404, "not found".to_owned(), "HTTP 404"),
            (200, "<html>hello</html>".to_owned(), "server description"),
            (
                200,
                r#"{"name":"ferrogram"}"#.to_owned(),
                "server description",
            ),
        ];
        for (status, body, expected) in cases {
            let (addr, _) = fake_server(status, body).await;
            match Client::connect(addr).await {
                Err(ClientError::NotFerrogram { reason, .. }) => {
                    assert!(reason.contains(expected), "{reason} lacks {expected}");
                }
                other => panic!("expected NotFerrogram, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn refuses_another_protocol_version() {
        let mut info: Value =
            serde_json::from_str(&server_info("ferrogram", KdfParams::DEFAULT)).unwrap();
        info["protocol_version"] = 99.into();
        let (addr, _) = fake_server(200, info.to_string()).await;
        let err = Client::connect(addr).await.unwrap_err();
        assert!(err.to_string().contains("protocol version 99"), "{err}");
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable_with_a_readable_reason() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = Client::connect(ServerAddr::new("127.0.0.1", port))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
    }

    #[tokio::test]
    async fn tls_to_a_plain_server_is_unreachable() {
        let (addr, _) = fake_server(200, server_info("ferrogram", KdfParams::DEFAULT)).await;
        let err = Client::connect(addr.with_tls(true)).await.unwrap_err();
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn unreadable_ca_file_is_invalid_input() {
        let addr = ServerAddr::new("127.0.0.1", 1)
            .with_tls(true)
            .with_ca_file("/nonexistent/ca.pem");
        let err = Client::connect(addr).await.unwrap_err();
        assert!(matches!(err, ClientError::InvalidInput(_)), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[tokio::test]
    async fn new_keys_use_the_stronger_of_default_and_server_minimum() {
        let strong_min = KdfParams {
            m_cost_kib: 65_536,
            t_cost: 1,
            ..KdfParams::DEFAULT
        };
        let (addr, _) = fake_server(200, server_info("ferrogram", strong_min)).await;
        let client = Client::connect(addr.clone()).await.unwrap();
        let kdf = client.kdf_for_new_keys();
        assert_eq!(kdf.m_cost_kib, 65_536);
        assert_eq!(kdf.t_cost, KdfParams::DEFAULT.t_cost);

        let cheap = KdfParams {
            m_cost_kib: 64,
            t_cost: 1,
            ..KdfParams::DEFAULT
        };
        let options = ClientOptions {
            kdf_override: Some(cheap),
            ..ClientOptions::default()
        };
        let client = Client::connect_with(addr, options).await.unwrap();
        assert_eq!(client.kdf_for_new_keys(), cheap);
    }

    #[tokio::test]
    async fn bad_input_is_refused_before_anything_is_sent() {
        let (addr, seen) = fake_server(200, server_info("ferrogram", KdfParams::DEFAULT)).await;
        let client = Client::connect(addr).await.unwrap();
        let after_connect = seen.lock().unwrap().len();
        let cases = [
            (
                RegisterParams::new("not-an-email", "ada", "Ada", "long enough pw"),
                ErrorCode::InvalidEmail,
            ),
            (
                RegisterParams::new("ada@example.org", "a!", "Ada", "long enough pw"),
                ErrorCode::InvalidHandle,
            ),
            (
                RegisterParams::new("ada@example.org", "ada", " ", "long enough pw"),
                ErrorCode::InvalidDisplayName,
            ),
            (
                RegisterParams::new("ada@example.org", "ada", "Ada", "short"),
                ErrorCode::BadRequest,
            ),
        ];
        for (params, code) in cases {
            let err = client.register(params).await.unwrap_err();
            assert!(matches!(err, ClientError::InvalidInput(_)), "{err:?}");
            assert_eq!(err.code(), Some(code));
        }
        let err = client
            .verify_code("ada@example.org", "12ab56")
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidCode));
        let err = client.login("nope", "pw", None).await.err().unwrap();
        assert_eq!(err.code(), Some(ErrorCode::InvalidEmail));
        let long_device = "d".repeat(65);
        let err = client
            .login("ada@example.org", "pw", Some(&long_device))
            .await
            .err()
            .unwrap();
        assert_eq!(err.code(), Some(ErrorCode::InvalidDeviceName));
        assert_eq!(
            seen.lock().unwrap().len(),
            after_connect,
            "a request was sent"
        );
    }

    #[tokio::test]
    async fn login_refuses_weak_kdf_parameters_from_the_server() {
        let weak = KdfParams {
            m_cost_kib: 64,
            t_cost: 1,
            ..KdfParams::DEFAULT
        };
        let prelogin = serde_json::to_string(&PreloginResponse {
            salt: B64(vec![7; 16]),
            kdf: weak,
        })
        .unwrap();
        let refusal =
            r#"{"error":{"code":"invalid_credentials","message":"wrong email or password"}}"#;
        let (addr, log) = routed_server(vec![
            ("/api/v1/server", 200, server_info("ferrogram", weak)),
            ("/api/v1/prelogin", 200, prelogin),
            ("/api/v1/sessions", 401, refusal.to_owned()),
        ])
        .await;
        let sent_login = |log: &RequestLog| {
            log.lock()
                .unwrap()
                .iter()
                .any(|l| l.starts_with("POST /api/v1/sessions"))
        };

        // By default the floor is KdfParams::DEFAULT, whatever the server says.
        let client = Client::connect(addr.clone()).await.unwrap();
        let err = client
            .login("ada@example.org", "a password", None)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
        assert!(err.to_string().contains("64 KiB"), "{err}");
        assert!(!sent_login(&log), "an auth key was sent");

        // With the override as floor, the log-in goes ahead.
        let options = ClientOptions {
            kdf_override: Some(weak),
            ..ClientOptions::default()
        };
        let client = Client::connect_with(addr, options).await.unwrap();
        let err = client
            .login("ada@example.org", "a password", None)
            .await
            .err()
            .unwrap();
        assert!(err.is_invalid_credentials(), "{err:?}");
        assert!(sent_login(&log));
    }

    #[tokio::test]
    async fn the_token_travels_only_in_the_authorization_header() {
        use ferrogram_core::ids::{SessionId, UserId};
        use ferrogram_core::proto::{Me, PublicKeys, SessionInfo, SessionList};
        let me = Me {
            id: UserId(1),
            email: "ada@example.org".into(),
            handle: "ada".into(),
            display_name: "Ada".into(),
            bio: String::new(),
            verified: true,
            created_at: Timestamp::EPOCH,
            public_keys: PublicKeys {
                sign: B64(vec![1]),
                enc: B64(vec![2]),
            },
            fingerprint: "F".into(),
            who_can_add_me: ferrogram_core::proto::GroupAddPolicy::default(),
        };
        let list = SessionList {
            sessions: vec![SessionInfo {
                id: SessionId("s1".into()),
                device_name: "d".into(),
                created_at: Timestamp::EPOCH,
                last_seen_at: Timestamp::EPOCH,
                expires_at: Timestamp::EPOCH,
                current: true,
            }],
        };
        let (addr, log) = routed_server(vec![
            (
                "/api/v1/server",
                200,
                server_info("ferrogram", KdfParams::DEFAULT),
            ),
            ("/api/v1/me", 200, serde_json::to_string(&me).unwrap()),
            (
                "/api/v1/sessions",
                200,
                serde_json::to_string(&list).unwrap(),
            ),
        ])
        .await;
        let client = Client::connect(addr).await.unwrap();
        let token = "TOKEN-e4Jq9-secret";
        let session = client.resume(token).await.unwrap();
        assert_eq!(session.id().0, "s1");
        session.me().await.unwrap();
        session.sessions().await.unwrap();
        let requests = log.lock().unwrap().clone();
        assert_eq!(requests.len(), 5, "server, me, sessions, me, sessions");
        for (i, head) in requests.iter().enumerate() {
            let request_line = head.lines().next().unwrap();
            assert!(!request_line.contains(token), "{request_line}");
            let auth: Vec<&str> = head
                .lines()
                .filter(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .collect();
            if i == 0 {
                assert!(auth.is_empty(), "the server check carries no token");
            } else {
                assert_eq!(auth.len(), 1, "{head}");
                assert_eq!(
                    auth[0].split_once(':').unwrap().1.trim(),
                    format!("Bearer {token}")
                );
            }
        }
    }

    /// Every REST declaration can be called: its parameters land in the
    /// path (percent-encoded) and query, never in the body.
    #[test]
    fn every_rest_command_builds_its_request() {
        use ferrogram_core::command::ParamType;
        for command in commands::ALL {
            let Some(route) = command.http else { continue };
            let mut request = Map::new();
            for p in route.params {
                let value = match p.ty {
                    ParamType::String => Value::from("a b/c"),
                    ParamType::Integer => Value::from(7),
                };
                request.insert(p.name.to_owned(), value);
            }
            request.insert("other".to_owned(), Value::from(1));
            let (url, body) =
                rest_request("http://127.0.0.1:9", &route, &Value::Object(request)).unwrap();
            let path = url.path();
            assert!(path.starts_with(API_PREFIX), "{}: {path}", command.name);
            assert!(!path.contains('{'), "{}: {path}", command.name);
            for p in route.params {
                let encoded = match (p.ty, p.location) {
                    (ParamType::Integer, _) => "7",
                    (ParamType::String, ParamIn::Path) => "a%20b%2Fc",
                    (ParamType::String, ParamIn::Query) => "a+b%2Fc",
                };
                let found = match p.location {
                    ParamIn::Path => path.split('/').any(|s| s == encoded),
                    ParamIn::Query => url
                        .query()
                        .is_some_and(|q| q.contains(&format!("{}={encoded}", p.name))),
                };
                assert!(found, "{}: {} in {url}", command.name, p.name);
            }
            match body {
                RestBody::None => assert!(!route.body, "{}", command.name),
                RestBody::Request => assert!(route.params.is_empty()),
                RestBody::Rest(fields) => {
                    assert!(route.params.iter().all(|p| !fields.contains_key(p.name)));
                }
            }
        }
    }

    #[test]
    fn register_params_hide_the_password() {
        let params = RegisterParams::new("a@b.org", "ada", "Ada", "hunter2hunter2");
        let text = format!("{params:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("a@b.org"));
    }
}
