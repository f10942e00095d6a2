//! The connection to one server: transport (HTTP or HTTPS via rustls), the
//! server check, and the account flows that need no session (register, verify,
//! pre-login, log in).

use std::sync::Arc;
use std::time::Duration;

use ferrogram_core::b64::B64;
use ferrogram_core::crypto::Identity;
use ferrogram_core::proto::{
    KdfParams, LoginRequest, LoginResponse, PreloginResponse, RegisterRequest, RegisterResponse,
    ResendVerificationRequest, ResendVerificationResponse, ServerInfo, VerifyRequest,
    VerifyResponse,
};
use ferrogram_core::validate;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::addr::ServerAddr;
use crate::error::{self, ClientError};
use crate::keys::{self, AccountSecrets};
use crate::session::Session;

/// The name every Ferrogram server gives in `GET /api/v1/server`.
pub const SERVER_NAME: &str = "ferrogram";
/// Shortest password the client accepts for a new account or password change.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Prefix of every REST route.
pub const API_PREFIX: &str = "/api/v1";

/// Tunables of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// KDF parameters for new keys (register, password change) instead of the
    /// larger of the server's minimum and [`KdfParams::DEFAULT`]. Also the
    /// weakest parameters accepted from the server at log-in (default: the
    /// server's announced minimum). Meant for tests and benchmarks.
    pub kdf_override: Option<KdfParams>,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request.
    pub request_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            kdf_override: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
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
        let response = http
            .get(format!("{base_url}{API_PREFIX}/server"))
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
                "GET {API_PREFIX}/server answered HTTP {}",
                status.as_u16()
            )));
        }
        let info: ServerInfo = serde_json::from_slice(&body).map_err(|_| {
            not_ferrogram(format!(
                "GET {API_PREFIX}/server did not answer with a server description"
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
        self.call(Method::GET, self.url("/server")?, None::<&()>, None)
            .await
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
    fn kdf_floor(&self) -> KdfParams {
        self.inner
            .options
            .kdf_override
            .unwrap_or(self.inner.info.min_kdf)
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
        self.call(Method::POST, self.url("/accounts")?, Some(&request), None)
            .await
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
        self.call(
            Method::POST,
            self.url("/accounts/verify")?,
            Some(&request),
            None,
        )
        .await
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
        self.call(
            Method::POST,
            self.url("/accounts/verify")?,
            Some(&request),
            None,
        )
        .await
    }

    /// `POST /accounts/verification`: sends a new code and link.
    pub async fn resend_verification(
        &self,
        email: &str,
    ) -> Result<ResendVerificationResponse, ClientError> {
        let email = validate::email(email).map_err(ClientError::InvalidInput)?;
        let request = ResendVerificationRequest { email };
        self.call(
            Method::POST,
            self.url("/accounts/verification")?,
            Some(&request),
            None,
        )
        .await
    }

    /// `GET /prelogin?email=`: the account's salt and KDF parameters (a stable
    /// fake for unknown emails).
    pub async fn prelogin(&self, email: &str) -> Result<PreloginResponse, ClientError> {
        let email = validate::email(email).map_err(ClientError::InvalidInput)?;
        let mut url = self.url("/prelogin")?;
        url.query_pairs_mut().append_pair("email", &email);
        self.call(Method::GET, url, None::<&()>, None).await
    }

    /// Logs in: pre-login, derive the keys, `POST /sessions` with `auth_key`,
    /// then open the sealed private keys with `wrap_key` and check they match
    /// the account's public keys.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device_name: Option<&str>,
    ) -> Result<Session, ClientError> {
        let email = validate::email(email).map_err(ClientError::InvalidInput)?;
        let device_name = validate::device_name(device_name).map_err(ClientError::InvalidInput)?;
        if password.is_empty() {
            return Err(ClientError::invalid_input("the password is empty"));
        }
        let pre = self.prelogin(&email).await?;
        let floor = self.kdf_floor();
        if !pre.kdf.is_acceptable(&floor) {
            return Err(ClientError::Protocol(format!(
                "the server asks for key derivation parameters outside what this client \
                 accepts ({} KiB, {} passes, {} lanes)",
                pre.kdf.m_cost_kib, pre.kdf.t_cost, pre.kdf.p_cost
            )));
        }
        let password = Zeroizing::new(password.to_owned());
        let salt = pre.salt.0.clone();
        let kdf = pre.kdf;
        let derived = run_blocking(move || keys::derive(&password, &salt, kdf)).await?;
        let request = LoginRequest {
            email,
            auth_key: derived.auth_key.to_b64(),
            device_name: Some(device_name),
        };
        let response: LoginResponse = self
            .call(Method::POST, self.url("/sessions")?, Some(&request), None)
            .await?;
        let token = Zeroizing::new(response.token);
        let sealed = response.sealed_keys.0;
        let expected = response.me.public_keys.clone();
        let wrap_key = derived.wrap_key;
        let opened = run_blocking(move || {
            let identity = keys::open(&sealed, &wrap_key)?;
            Ok((identity, wrap_key))
        })
        .await;
        let (identity, wrap_key) = match opened {
            Ok(pair) => pair,
            Err(e) => {
                // Do not leave a session behind that this client cannot use.
                self.logout_token(&token).await.ok();
                return Err(e);
            }
        };
        if identity.public_keys() != expected {
            self.logout_token(&token).await.ok();
            return Err(ClientError::Crypto(
                "the private keys stored for this account do not belong to its public keys".into(),
            ));
        }
        let secrets = AccountSecrets {
            identity: Arc::new(identity),
            wrap_key,
            salt: pre.salt.0,
            kdf,
        };
        Ok(Session::new(
            self.clone(),
            token,
            response.session.id,
            response.me,
            Some(secrets),
        ))
    }

    /// Picks up a session from a stored token (the CLI does this). It has no
    /// private keys: what needs them asks for a fresh log-in.
    pub async fn resume(&self, token: &str) -> Result<Session, ClientError> {
        Session::resume(self.clone(), Zeroizing::new(token.to_owned())).await
    }

    async fn logout_token(&self, token: &str) -> Result<(), ClientError> {
        self.call::<serde::de::IgnoredAny>(
            Method::DELETE,
            self.url("/sessions/current")?,
            None::<&()>,
            Some(token),
        )
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

    /// `base_url` + `/api/v1` + `path`.
    pub(crate) fn url(&self, path: &str) -> Result<Url, ClientError> {
        Url::parse(&format!("{}{API_PREFIX}{path}", self.inner.base_url))
            .map_err(|e| ClientError::invalid_input(format!("bad request path: {e}")))
    }

    /// Sends one typed request and decodes the typed answer; error statuses
    /// become [`ClientError::Api`].
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&impl Serialize>,
        token: Option<&str>,
    ) -> Result<T, ClientError> {
        let mut request = self.inner.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
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

/// A password for new keys: long enough to be worth deriving keys from.
pub(crate) fn check_new_password(password: &str) -> Result<(), ClientError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ClientError::invalid_input(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Runs CPU-heavy crypto (Argon2id, RSA) off the async threads.
pub(crate) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ClientError> + Send + 'static,
) -> Result<T, ClientError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ClientError::Crypto(format!("key work was interrupted: {e}")))?
}

fn build_http(addr: &ServerAddr, options: &ClientOptions) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("ferrogram-client/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        // A redirect could carry a request (and its token) somewhere else.
        .redirect(reqwest::redirect::Policy::none())
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
