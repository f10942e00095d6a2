//! HTTP-level tests of the adapter, with `actix_web::test::init_service` and
//! fake commands registered under the real route names.

use super::*;
use crate::config::Config;
use crate::startup::settings_from;
use actix_web::http::Method;
use actix_web::test::{self, TestRequest};
use actix_web::App;
use async_trait::async_trait;
use ferrogram_core::command::{
    Access, Caller, Command, CommandHandler, CommandLogEntry, HttpRoute,
};
use ferrogram_core::ratelimit::{Rate, RateLimiter, RateRule};
use ferrogram_handlers::{CommandLogSink, MailQueue, OutgoingMail};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Every (method, path) of docs/protocol.md. Adding a route means adding it
/// here, to the table in docs/protocol.md, and to its declaration.
const PROTOCOL_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/server"),
    ("GET", "/api/v1/prelogin"),
    ("POST", "/api/v1/accounts"),
    ("POST", "/api/v1/accounts/verify"),
    ("POST", "/api/v1/accounts/verification"),
    ("POST", "/api/v1/sessions"),
    ("GET", "/api/v1/sessions"),
    ("DELETE", "/api/v1/sessions"),
    ("DELETE", "/api/v1/sessions/current"),
    ("DELETE", "/api/v1/sessions/{id}"),
    ("GET", "/api/v1/me"),
    ("PATCH", "/api/v1/me"),
    ("DELETE", "/api/v1/me"),
    ("PUT", "/api/v1/me/password"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/users/{handle}"),
    ("GET", "/api/v1/users/{id}/keys"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/verify"),
];

#[derive(Default)]
struct Recorder {
    entries: Mutex<Vec<CommandLogEntry>>,
}

impl CommandLogSink for Recorder {
    fn write(&self, entry: &CommandLogEntry) {
        self.entries.lock().unwrap().push(entry.clone());
    }
}

struct NoMail;
impl MailQueue for NoMail {
    fn enqueue(&self, _: OutgoingMail) {}
}

/// Echoes the merged request and what dispatch knew of the caller.
struct Echo<const N: usize>;

impl<const N: usize> Command for Echo<N> {
    const NAME: &'static str = ["user.keys", "user.search", "me.update"][N];
    const ACCESS: Access = Access::Public;
    const RATE_CLASS: Option<&'static str> = None;
    const HTTP: Option<HttpRoute> = None;
    type Req = Value;
    type Resp = Value;
}

#[async_trait]
impl<const N: usize> CommandHandler<HandlerCtx> for Echo<N> {
    async fn handle(&self, _: &HandlerCtx, caller: &Caller, req: Value) -> Result<Value, ApiError> {
        Ok(json!({"req": req, "ip": caller.ip.to_string(), "request_id": caller.request_id}))
    }
}

struct NeedsSession;
impl Command for NeedsSession {
    const NAME: &'static str = "me.get";
    const ACCESS: Access = Access::Session;
    const RATE_CLASS: Option<&'static str> = None;
    const HTTP: Option<HttpRoute> = None;
    type Req = Value;
    type Resp = Value;
}

#[async_trait]
impl CommandHandler<HandlerCtx> for NeedsSession {
    async fn handle(&self, _: &HandlerCtx, _: &Caller, _: Value) -> Result<Value, ApiError> {
        Ok(json!({}))
    }
}

struct Limited;
impl Command for Limited {
    const NAME: &'static str = "session.create";
    const ACCESS: Access = Access::Public;
    const RATE_CLASS: Option<&'static str> = Some("login");
    const HTTP: Option<HttpRoute> = None;
    type Req = Value;
    type Resp = Value;
}

#[async_trait]
impl CommandHandler<HandlerCtx> for Limited {
    async fn handle(&self, _: &HandlerCtx, _: &Caller, _: Value) -> Result<Value, ApiError> {
        Ok(json!({"token": "t"}))
    }
}

struct Broken;
impl Command for Broken {
    const NAME: &'static str = "server.info";
    const ACCESS: Access = Access::Public;
    const RATE_CLASS: Option<&'static str> = None;
    const HTTP: Option<HttpRoute> = None;
    type Req = Value;
    type Resp = Value;
}

#[async_trait]
impl CommandHandler<HandlerCtx> for Broken {
    async fn handle(&self, _: &HandlerCtx, _: &Caller, _: Value) -> Result<Value, ApiError> {
        Err(ApiError::new(
            ErrorCode::Internal,
            "database /var/lib/secret.db is corrupt",
        ))
    }
}

struct FakeVerify;
impl Command for FakeVerify {
    const NAME: &'static str = "account.verify";
    const ACCESS: Access = Access::Public;
    const RATE_CLASS: Option<&'static str> = None;
    const HTTP: Option<HttpRoute> = None;
    type Req = ferrogram_core::proto::VerifyRequest;
    type Resp = Value;
}

#[async_trait]
impl CommandHandler<HandlerCtx> for FakeVerify {
    async fn handle(
        &self,
        _: &HandlerCtx,
        _: &Caller,
        req: ferrogram_core::proto::VerifyRequest,
    ) -> Result<Value, ApiError> {
        match req.token.as_deref() {
            Some("good-token") => Ok(json!({"user_id": 1, "verified": true})),
            Some("old-token") => Err(ApiError::new(ErrorCode::CodeExpired, "expired")),
            _ => Err(ApiError::new(ErrorCode::InvalidCode, "invalid")),
        }
    }
}

struct Harness {
    ctx: SharedCtx,
    registry: SharedRegistry,
    log: Arc<Recorder>,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded_defaults();
    config.data_dir = dir.path().to_owned();
    config.limits.max_body_bytes = 2048;
    let log = Arc::new(Recorder::default());
    let mut rules = HashMap::new();
    rules.insert(
        "login".to_owned(),
        RateRule::both(Rate::new(2, 3600), Rate::new(2, 3600)),
    );
    let storage = ferrogram_storage::Storage::open(config.database_path(), 2).unwrap();
    let settings = settings_from(&config, "http://localhost:8080", vec![7u8; 32].into());
    let writer = ferrogram_storage::EventWriter::start(
        &storage,
        ferrogram_storage::WriterConfig::default(),
        Arc::new(ferrogram_handlers::rules::ChatPolicy::from_settings(
            &settings,
        )),
        None,
    )
    .unwrap();
    let ctx = web::Data::new(HandlerCtx {
        storage,
        mail: Arc::new(NoMail),
        settings,
        rate_limiter: RateLimiter::new(rules),
        command_log: log.clone(),
        notifier: Arc::new(ferrogram_handlers::NoopNotifier),
        writer: Arc::new(writer),
    });
    let mut registry = Registry::new();
    registry.register(Echo::<0>).unwrap();
    registry.register(Echo::<1>).unwrap();
    registry.register(Echo::<2>).unwrap();
    registry.register(NeedsSession).unwrap();
    registry.register(Limited).unwrap();
    registry.register(Broken).unwrap();
    registry.register(FakeVerify).unwrap();
    Harness {
        ctx,
        registry: web::Data::new(registry),
        log,
        _dir: dir,
    }
}

macro_rules! app {
    ($h:expr) => {
        test::init_service(
            App::new()
                .app_data($h.ctx.clone())
                .app_data($h.registry.clone())
                .configure(configure),
        )
        .await
    };
}

/// Calls the app and returns (status, headers, JSON body).
macro_rules! call_json {
    ($app:expr, $req:expr $(,)?) => {{
        let res = test::call_service($app, $req.to_request()).await;
        let status = res.status();
        let headers = res.headers().clone();
        let body = test::read_body(res).await;
        let value: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body)));
        (status, headers, value)
    }};
}

#[actix_web::test]
async fn unknown_route_is_a_json_404_with_a_request_id() {
    let h = harness();
    let app = app!(h);
    let (status, headers, body) = call_json!(&app, TestRequest::get().uri("/api/v1/nope?token=x"));
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let id = headers.get(REQUEST_ID_HEADER).unwrap().to_str().unwrap();
    assert_eq!(id.len(), 16);
    let (_, headers2, _) = call_json!(&app, TestRequest::get().uri("/"));
    assert_ne!(
        headers2.get(REQUEST_ID_HEADER).unwrap().to_str().unwrap(),
        id
    );
}

#[actix_web::test]
async fn wrong_method_is_a_json_405_with_allow() {
    let h = harness();
    let app = app!(h);
    let (status, headers, body) = call_json!(&app, TestRequest::post().uri("/api/v1/me"));
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert_eq!(headers.get(header::ALLOW).unwrap(), "GET, PATCH, DELETE");
    let (status, _, _) = call_json!(
        &app,
        TestRequest::default()
            .method(Method::GET)
            .uri("/api/v1/sessions/current")
    );
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _, _) = call_json!(&app, TestRequest::post().uri("/api/v1/openapi.json"));
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[actix_web::test]
async fn oversized_body_is_a_json_413() {
    let h = harness();
    let app = app!(h);
    let big = json!({"display_name": "x".repeat(4096)}).to_string();
    let (status, _, body) = call_json!(
        &app,
        TestRequest::patch()
            .uri("/api/v1/me")
            .insert_header(header::ContentType::json())
            .set_payload(big),
    );
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(
        h.log.entries.lock().unwrap().is_empty(),
        "refused before dispatch"
    );
}

#[actix_web::test]
async fn malformed_json_wrong_type_and_non_objects_are_clear_400s() {
    let h = harness();
    let app = app!(h);
    let (status, _, body) = call_json!(
        &app,
        TestRequest::patch()
            .uri("/api/v1/me")
            .insert_header(header::ContentType::json())
            .set_payload("{\"bio\": "),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_json");

    let (status, _, body) = call_json!(
        &app,
        TestRequest::patch()
            .uri("/api/v1/me")
            .insert_header(header::ContentType::plaintext())
            .set_payload("{}"),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("application/json"));

    let (status, _, body) = call_json!(
        &app,
        TestRequest::patch()
            .uri("/api/v1/me")
            .insert_header(("content-type", "application/merge-patch+json"))
            .set_payload("[1]"),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("JSON object"));
}

#[actix_web::test]
async fn path_and_query_parameters_are_merged_typed_and_checked() {
    let h = harness();
    let app = app!(h);
    let peer: std::net::SocketAddr = "[::ffff:203.0.113.9]:4000".parse().unwrap();
    let (status, headers, body) = call_json!(
        &app,
        TestRequest::get()
            .uri("/api/v1/users/42/keys")
            .peer_addr(peer)
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["req"], json!({"id": 42}));
    assert_eq!(body["ip"], "203.0.113.9");
    assert_eq!(
        body["request_id"],
        headers.get(REQUEST_ID_HEADER).unwrap().to_str().unwrap()
    );

    let (status, _, body) = call_json!(
        &app,
        TestRequest::get().uri("/api/v1/users?query=al%20ice&limit=5")
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["req"], json!({"query": "al ice", "limit": 5}));

    for (uri, needle) in [
        ("/api/v1/users/abc/keys", "`id` must be an integer"),
        (
            "/api/v1/users?query=a&limit=many",
            "`limit` must be an integer",
        ),
        ("/api/v1/users?limit=3", "missing query parameter `query`"),
        (
            "/api/v1/users?query=a&token=secret",
            "unknown query parameter `token`",
        ),
        ("/api/v1/users?query=a&query=b", "given twice"),
    ] {
        let (status, _, body) = call_json!(&app, TestRequest::get().uri(uri));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{uri}: {message}");
    }

    let (status, _, body) = call_json!(
        &app,
        TestRequest::patch()
            .uri("/api/v1/me")
            .insert_header(header::ContentType::json())
            .set_payload(r#"{"bio":"hi"}"#),
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["req"], json!({"bio": "hi"}));
}

#[actix_web::test]
async fn auth_rate_limits_and_internal_errors_map_to_statuses() {
    let h = harness();
    let app = app!(h);
    let (status, _, body) = call_json!(&app, TestRequest::get().uri("/api/v1/me"));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _, _) = call_json!(
        &app,
        TestRequest::get()
            .uri("/api/v1/me")
            .insert_header((header::AUTHORIZATION, "Bearer not-a-real-token")),
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    for _ in 0..2 {
        let (status, _, _) = call_json!(&app, TestRequest::post().uri("/api/v1/sessions"));
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, body) = call_json!(&app, TestRequest::post().uri("/api/v1/sessions"));
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "rate_limited");
    let retry_after = body["error"]["retry_after"].as_u64().unwrap();
    assert_eq!(
        headers.get(header::RETRY_AFTER).unwrap().to_str().unwrap(),
        retry_after.to_string()
    );

    let (status, _, body) = call_json!(&app, TestRequest::get().uri("/api/v1/server"));
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], "internal");
    assert_eq!(body["error"]["message"], "internal server error");

    let log = h.log.entries.lock().unwrap();
    let outcomes: Vec<&str> = log.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "unauthorized",
            "unauthorized",
            "ok",
            "ok",
            "rate_limited",
            "internal"
        ]
    );
    assert!(log.iter().all(|e| !e.request_id.is_empty()));
}

#[actix_web::test]
async fn verify_page_answers_html_for_each_outcome() {
    let h = harness();
    let app = app!(h);
    for (uri, status, needle) in [
        (
            "/verify?token=good-token",
            StatusCode::OK,
            "Email address verified",
        ),
        ("/verify?token=old-token", StatusCode::GONE, "Link expired"),
        (
            "/verify?token=forged",
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid link",
        ),
        ("/verify", StatusCode::BAD_REQUEST, "Incomplete link"),
    ] {
        let res = test::call_service(&app, TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(res.status(), status, "{uri}");
        let headers = res.headers().clone();
        assert!(headers
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert_eq!(headers.get(header::REFERRER_POLICY).unwrap(), "no-referrer");
        assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        let html = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
        assert!(html.contains(needle), "{uri}: {html}");
        assert!(!html.contains("token"), "the page never echoes the token");
    }
    let log = h.log.entries.lock().unwrap();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|e| e.command == "account.verify"));
}

#[actix_web::test]
async fn openapi_lists_exactly_the_routes_of_the_protocol() {
    let h = harness();
    let app = app!(h);
    let (status, _, doc) = call_json!(&app, TestRequest::get().uri("/api/v1/openapi.json"));
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.push((method.to_ascii_uppercase(), path.clone()));
            // every {param} of the path is a declared path parameter
            for segment in path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    assert!(
                        op["parameters"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["name"] == name
                                && p["in"] == "path"
                                && p["required"] == true),
                        "{method} {path}: {name}"
                    );
                }
            }
        }
    }
    let mut expected: Vec<(String, String)> = PROTOCOL_ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    documented.sort();
    expected.sort();
    assert_eq!(documented, expected);

    // session routes require the bearer scheme, public ones do not
    assert_eq!(
        doc["paths"]["/api/v1/me"]["get"]["security"],
        json!([{"bearer": []}])
    );
    assert_eq!(
        doc["paths"]["/api/v1/accounts"]["post"]["security"],
        json!([])
    );
    let search = &doc["paths"]["/api/v1/users"]["get"]["parameters"];
    assert_eq!(search[1]["name"], "limit");
    assert_eq!(search[1]["schema"]["type"], "integer");
}

#[test]
fn protocol_doc_table_matches_the_routes() {
    let doc = include_str!("../../docs/protocol.md");
    let mut in_doc: Vec<(String, String)> = doc
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // | Method | Path | Command | Access |
            let method = *cells.get(1)?;
            let path = *cells.get(2)?;
            (matches!(method, "GET" | "POST" | "PUT" | "PATCH" | "DELETE") && path.starts_with('/'))
                .then(|| {
                    (
                        method.to_owned(),
                        path.split('?').next().unwrap().to_owned(),
                    )
                })
        })
        .collect();
    let mut expected: Vec<(String, String)> = PROTOCOL_ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let mut served: Vec<(String, String)> = routes::all_method_paths()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    in_doc.sort();
    expected.sort();
    served.sort();
    assert_eq!(in_doc, expected, "docs/protocol.md and this test disagree");
    assert_eq!(served, expected, "routes::ROUTES and this test disagree");
}

/// Every declared command (`ferrogram_core::commands::ALL`) is answered
/// (registered, so reachable over the WebSocket; and routed where it
/// declares a REST route), documented (its operation in the OpenAPI
/// document, its row in docs/protocol.md) with the declared access and rate
/// class; and docs/protocol.md names no command that is not declared. The
/// client library calls commands by these same declarations.
#[test]
fn every_declared_command_is_registered_routed_and_documented() {
    use ferrogram_core::commands::ALL;
    let mut registry = Registry::new();
    ferrogram_handlers::register_all(&mut registry);
    let openapi = openapi::document();
    let doc = include_str!("../../docs/protocol.md");
    // (cells) of every table row naming a command in one of its cells
    let rows: Vec<Vec<&str>> = doc
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    let names_in = |cell: &str| -> Option<String> {
        let word = cell.split([' ', '(']).next()?;
        let (area, command) = word.split_once('.')?;
        (!area.is_empty()
            && !command.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'))
        .then(|| word.to_owned())
    };
    for c in ALL {
        assert_eq!(
            registry.access(c.name),
            Some(c.access),
            "{} is not registered with its declared access",
            c.name
        );
        assert_eq!(registry.rate_class(c.name), c.rate_class, "{}", c.name);
        let row = rows
            .iter()
            .find(|cells| {
                cells
                    .iter()
                    .any(|cell| names_in(cell).as_deref() == Some(c.name))
            })
            .unwrap_or_else(|| panic!("{} is not in docs/protocol.md's tables", c.name));
        let Some(http) = c.http else { continue };
        assert!(
            routes::routes()
                .iter()
                .any(|r| r.command == c.name && r.method == http.method && r.path == http.path),
            "{} is not routed",
            c.name
        );
        let op = &openapi["paths"][http.path][http.method.as_str().to_ascii_lowercase()];
        assert_eq!(
            op["x-ferrogram-command"], c.name,
            "{} not in OpenAPI",
            c.name
        );
        let access = match c.access {
            Access::Public => "public",
            Access::Session => "session",
            Access::Verified => "verified",
        };
        assert_eq!(op["x-ferrogram-access"], access, "{}", c.name);
        assert_eq!(
            op["x-ferrogram-rate-class"].as_str(),
            c.rate_class,
            "{}",
            c.name
        );
        assert_eq!(
            (row[1], row[2].split('?').next().unwrap()),
            (http.method.as_str(), http.path),
            "docs/protocol.md routes {} elsewhere",
            c.name
        );
    }
    // the command column of both tables: | Method | Path | Command | ... and
    // | Command | Request | ...
    for cells in &rows {
        for cell in [cells.get(1), cells.get(3)].into_iter().flatten() {
            if let Some(name) = names_in(cell) {
                assert!(
                    ferrogram_core::commands::by_name(&name).is_some(),
                    "docs/protocol.md names undeclared command {name}"
                );
            }
        }
    }
}
