//! The HTTP face of the server: REST routes from the route table, each a thin
//! adapter onto `Registry::dispatch`, the OpenAPI document, the email-link
//! verification page, and JSON errors for everything else (404, 405, 413,
//! malformed JSON).
//!
//! Request ids: every request gets a random id, echoed in `X-Request-Id` and
//! carried into the command log. Access logging names the route pattern,
//! never the raw path or the query string (tokens could be in it).

pub mod conn_limit;
pub mod openapi;
pub mod routes;
mod verify_page;

pub use crate::reply::{new_request_id, public_error};

use crate::gateway::settings::Gateway;
use crate::gateway::upgrade;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{mime, web, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use ferrogram_core::command::{Credentials, Registry, Request};
use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_handlers::HandlerCtx;
use futures_util::StreamExt;
use routes::{routes, ParamIn, ParamType, Route};
use serde_json::{Map, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// Header carrying the request id back to the client.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The registry as shared with the HTTP workers.
pub type SharedRegistry = web::Data<Registry<HandlerCtx>>;
/// The handler context as shared with the HTTP workers.
pub type SharedCtx = web::Data<HandlerCtx>;

/// The request id of one request, stored in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// An `ApiError` as an HTTP response: its status, `{"error":{...}}`, and
/// `Retry-After` when rate limited. A 5xx never says anything internal.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        HttpError(e)
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let error = public_error(self.0.clone());
        let mut response = HttpResponse::build(status);
        if let Some(secs) = error.retry_after {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if error.code == ErrorCode::RequestTimeout {
            // The rest of the body may never come: do not wait for it.
            response.force_close();
        }
        response.json(ferrogram_core::error::ErrorBody { error })
    }
}

/// Every route of the server, under one scope that adds request ids and
/// answers unknown routes with a JSON 404. The app must provide
/// [`SharedCtx`] and [`SharedRegistry`] as app data. The scope matches every
/// path, so further routes (the WebSocket endpoint) belong inside it, here.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut scope = web::scope("")
        .wrap_fn(|req: ServiceRequest, srv| {
            let id = new_request_id();
            req.extensions_mut().insert(RequestId(id.clone()));
            let method = req.method().clone();
            let started = Instant::now();
            let call = srv.call(req);
            async move {
                let mut res: ServiceResponse<_> = call.await?;
                if let Ok(value) = HeaderValue::from_str(&id) {
                    res.headers_mut()
                        .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
                }
                res.headers_mut().insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                let pattern = res
                    .request()
                    .match_pattern()
                    .unwrap_or_else(|| "<unmatched>".to_owned());
                tracing::debug!(
                    request_id = %id,
                    %method,
                    route = %pattern,
                    status = res.status().as_u16(),
                    duration_us = started.elapsed().as_micros() as u64,
                    "http request"
                );
                Ok(res)
            }
        })
        .default_service(web::to(not_found));

    // One resource per path, holding all its methods, so that a known path
    // with an unknown method answers 405 rather than falling through.
    let mut paths: Vec<&'static str> = Vec::new();
    for route in routes() {
        if !paths.contains(&route.path) {
            paths.push(route.path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path);
        let mut allowed = Vec::new();
        for route in routes().iter().filter(|r| r.path == path) {
            allowed.push(route.method.as_str());
            resource = resource.route(web::method(routes::actix_method(route.method)).to(
                move |req: HttpRequest,
                      payload: web::Payload,
                      ctx: SharedCtx,
                      registry: SharedRegistry| {
                    rest(route, req, payload, ctx, registry)
                },
            ));
        }
        let allow = allowed.join(", ");
        resource = resource.default_service(web::to(move || {
            std::future::ready(method_not_allowed(&allow))
        }));
        scope = scope.service(resource);
    }
    scope = scope
        .service(
            web::resource(upgrade::WS_PATH)
                .route(web::get().to(websocket))
                .default_service(web::to(|| std::future::ready(method_not_allowed("GET")))),
        )
        .service(
            web::resource(routes::OPENAPI_PATH)
                .route(web::get().to(openapi_json))
                .default_service(web::to(|| std::future::ready(method_not_allowed("GET")))),
        )
        .service(
            web::resource(routes::VERIFY_PAGE_PATH)
                .route(web::get().to(verify_page::verify_page))
                .default_service(web::to(|| std::future::ready(method_not_allowed("GET")))),
        );
    cfg.service(scope);
}

/// `GET /api/v1/ws`: the WebSocket gateway's upgrade (the one way in from here).
async fn websocket(
    req: HttpRequest,
    payload: web::Payload,
    handlers: SharedCtx,
    registry: SharedRegistry,
    gateway: Option<web::Data<Gateway>>,
) -> Result<HttpResponse, HttpError> {
    let ip = client_ip(&req);
    Ok(upgrade::connect(
        &req, payload, ip, handlers, registry, gateway,
    )?)
}

async fn not_found() -> HttpResponse {
    HttpError(ApiError::new(ErrorCode::NotFound, "no such route")).error_response()
}

fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut response = HttpError(ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("method not allowed; use {allow}"),
    ))
    .error_response();
    if let Ok(value) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(openapi::document_json())
}

/// The request id the middleware assigned (a fresh one if it did not run).
pub fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map_or_else(new_request_id, |id| id.0.clone())
}

/// The client's address as seen on the socket. Proxy headers such as
/// `X-Forwarded-For` are not trusted.
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip().to_canonical())
}

/// The bearer token of `Authorization`, if it carries one.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// One REST call: body, path and query parameters into one JSON request,
/// then dispatch.
async fn rest(
    route: &'static Route,
    req: HttpRequest,
    payload: web::Payload,
    ctx: SharedCtx,
    registry: SharedRegistry,
) -> Result<HttpResponse, HttpError> {
    let limit = ctx.settings.max_request_bytes;
    let deadlines = req
        .app_data::<web::Data<BodyLimits>>()
        .map_or_else(BodyLimits::default, |d| *d.get_ref());
    let body = match read_body(&req, payload, limit, deadlines).await {
        Ok(body) => body,
        Err(e) => {
            if e.code == ErrorCode::RequestTimeout {
                // actix would otherwise drain the rest of a chunked body,
                // as slowly as it comes, before closing.
                crate::gateway::transport::socket::SocketCutter::of(&req).stop_reading();
            }
            return Err(e.into());
        }
    };
    let mut request = if body.is_empty() {
        Map::new()
    } else {
        if !is_json(&req) {
            return Err(ApiError::bad_request("Content-Type must be application/json").into());
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(ApiError::bad_request("the request body must be a JSON object").into())
            }
            Err(e) => {
                return Err(
                    ApiError::new(ErrorCode::InvalidJson, format!("malformed JSON: {e}")).into(),
                )
            }
        }
    };
    merge_params(route, &req, &mut request)?;
    let result = registry
        .dispatch(
            &ctx,
            Request {
                command: route.command.to_owned(),
                ip: client_ip(&req),
                request_id: request_id(&req),
                body: Value::Object(request),
                body_len: body.len(),
            },
            Credentials::Token(bearer_token(&req)),
        )
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

fn is_json(req: &HttpRequest) -> bool {
    match req.mime_type() {
        Ok(Some(mime)) => {
            mime.type_() == mime::APPLICATION
                && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
        }
        _ => false,
    }
}

/// How long a request body may take (`http:` in config.yaml), as app data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// The whole body must have arrived by then, from the end of the head.
    pub timeout: Duration,
    /// Slowest average rate once `grace` has passed (0: none).
    pub min_rate_bytes_per_sec: u64,
    pub grace: Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            timeout: Duration::from_secs(30),
            min_rate_bytes_per_sec: 1024,
            grace: Duration::from_secs(5),
        }
    }
}

impl BodyLimits {
    pub fn from_config(http: &crate::config::HttpConfig) -> Self {
        BodyLimits {
            timeout: Duration::from_secs(http.body_timeout_secs),
            min_rate_bytes_per_sec: http.min_body_rate_bytes_per_sec,
            grace: Duration::from_secs(http.min_body_rate_grace_secs),
        }
    }

    /// When, after `received` bytes, the next ones are late: at the overall
    /// deadline, or when the average rate since the grace period would drop
    /// below the minimum (`received` bytes cover `received / rate` seconds
    /// after the grace).
    fn next_deadline(&self, started: Instant, received: usize) -> Instant {
        let overall = started + self.timeout;
        if self.min_rate_bytes_per_sec == 0 {
            return overall;
        }
        let covered = Duration::from_millis(
            (received as u64).saturating_mul(1000) / self.min_rate_bytes_per_sec,
        );
        overall.min(started + self.grace + covered)
    }
}

/// Reads the whole body, refusing more than `limit` bytes, and a body that
/// comes too slowly (`deadlines`) with 408 request_timeout.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    deadlines: BodyLimits,
) -> Result<web::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body larger than {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    let started = Instant::now();
    loop {
        let deadline = deadlines.next_deadline(started, body.len());
        let next = tokio::time::timeout_at(deadline.into(), payload.next()).await;
        let Ok(next) = next else {
            return Err(ApiError::new(
                ErrorCode::RequestTimeout,
                "the request body came too slowly",
            ));
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => too_large(),
            _ => ApiError::bad_request("could not read the request body"),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Puts the route's path and query parameters into the request object.
fn merge_params(
    route: &Route,
    req: &HttpRequest,
    request: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let mut add = |name: &str, value: Value| {
        if request.contains_key(name) {
            return Err(ApiError::bad_request(format!(
                "`{name}` is given both in the URL and in the body"
            )));
        }
        request.insert(name.to_owned(), value);
        Ok(())
    };
    for param in route.params.iter().filter(|p| p.location == ParamIn::Path) {
        let raw = req.match_info().get(param.name).unwrap_or_default();
        add(param.name, typed(param.name, param.ty, raw)?)?;
    }
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|_| ApiError::bad_request("malformed query string"))?
        .into_inner();
    let mut seen: Vec<&str> = Vec::new();
    for (name, raw) in &pairs {
        let Some(param) = route
            .params
            .iter()
            .find(|p| p.location == ParamIn::Query && p.name == name)
        else {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter `{name}`"
            )));
        };
        if seen.contains(&param.name) {
            return Err(ApiError::bad_request(format!(
                "query parameter `{name}` given twice"
            )));
        }
        seen.push(param.name);
        add(param.name, typed(param.name, param.ty, raw)?)?;
    }
    for param in route
        .params
        .iter()
        .filter(|p| p.location == ParamIn::Query && p.required)
    {
        if !seen.contains(&param.name) {
            return Err(ApiError::bad_request(format!(
                "missing query parameter `{}`",
                param.name
            )));
        }
    }
    Ok(())
}

fn typed(name: &str, ty: ParamType, raw: &str) -> Result<Value, ApiError> {
    match ty {
        ParamType::String => Ok(Value::String(raw.to_owned())),
        ParamType::Integer => raw
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| ApiError::bad_request(format!("`{name}` must be an integer"))),
    }
}

#[cfg(test)]
mod tests;
