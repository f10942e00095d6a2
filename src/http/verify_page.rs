//! `GET /verify?token=...`: the link in the verification mail. Dispatches
//! `account.verify` with the token and answers a small self-contained HTML
//! page. The token is never logged, and the page sends no referrer onwards.

use super::{client_ip, request_id, SharedCtx, SharedRegistry};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use ferrogram_core::command::{Command, Credentials, Request};
use ferrogram_core::commands;
use ferrogram_core::ErrorCode;
use serde_json::json;

/// Longest token accepted before dispatch (real ones are far shorter).
const MAX_TOKEN_LEN: usize = 512;

pub(super) async fn verify_page(
    req: HttpRequest,
    ctx: SharedCtx,
    registry: SharedRegistry,
) -> HttpResponse {
    let token = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().into_iter().find(|(k, _)| k == "token"))
        .map(|(_, v)| v)
        .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN);
    let Some(token) = token else {
        return page(
            StatusCode::BAD_REQUEST,
            "Incomplete link",
            "This verification link is incomplete. Open the link from the email exactly as it \
             was sent, or enter the 6-digit code in the app.",
        );
    };
    let body_len = token.len();
    let result = registry
        .dispatch(
            &ctx,
            Request {
                command: commands::Verify::NAME.to_owned(),
                ip: client_ip(&req),
                request_id: request_id(&req),
                body: json!({ "token": token }),
                body_len,
            },
            Credentials::Token(None),
        )
        .await;
    match result {
        Ok(_) => page(
            StatusCode::OK,
            "Email address verified",
            "Your email address is verified. You can close this page and go back to Ferrogram.",
        ),
        Err(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            let (title, text) = match e.code {
                ErrorCode::AlreadyVerified => (
                    "Already verified",
                    "This email address is already verified. You can close this page.",
                ),
                ErrorCode::CodeExpired => (
                    "Link expired",
                    "This verification link has expired. Ask for a new email in the app \
                     (Settings, Resend verification).",
                ),
                ErrorCode::RateLimited => (
                    "Too many attempts",
                    "Too many verification attempts. Wait a few minutes and open the link again.",
                ),
                ErrorCode::Internal | ErrorCode::Unavailable => (
                    "Something went wrong",
                    "The server could not verify the address right now. Try again later.",
                ),
                _ => (
                    "Invalid link",
                    "This verification link is invalid or was already used. Ask for a new \
                     email in the app if your address is not verified yet.",
                ),
            };
            page(status, title, text)
        }
    }
}

/// A complete page with fixed (non user-supplied) title and text.
fn page(status: StatusCode, title: &str, text: &str) -> HttpResponse {
    let ok = status.is_success();
    let accent = if ok { "#26a269" } else { "#c01c28" };
    let mark = if ok { "&#10003;" } else { "!" };
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} - Ferrogram</title>
<style>
body {{ margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
       font-family: Cantarell, "Noto Sans", system-ui, sans-serif; background: #f6f5f4; color: #241f31; }}
main {{ max-width: 28rem; padding: 2.5rem; background: #fff; border-radius: 12px;
       box-shadow: 0 2px 12px rgba(0,0,0,.08); text-align: center; }}
.mark {{ width: 3.5rem; height: 3.5rem; margin: 0 auto 1rem; border-radius: 50%; background: {accent};
        color: #fff; font-size: 2rem; line-height: 3.5rem; font-weight: bold; }}
h1 {{ font-size: 1.4rem; margin: 0 0 .75rem; }}
p {{ margin: 0; line-height: 1.5; }}
.brand {{ margin-top: 1.5rem; font-size: .85rem; color: #77767b; }}
</style>
</head>
<body>
<main>
<div class="mark">{mark}</div>
<h1>{title}</h1>
<p>{text}</p>
<p class="brand">Ferrogram</p>
</main>
</body>
</html>
"#
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .body(html)
}
