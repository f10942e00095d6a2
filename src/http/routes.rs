//! The REST route table: every route of `docs/protocol.md`, each onto one
//! command. Routes are registered from it and the OpenAPI document is
//! generated from it, so the two cannot disagree.

use actix_web::http::Method;
use ferrogram_core::command::Access;

/// Prefix of every REST route.
pub const API_PREFIX: &str = "/api/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    pub fn to_actix(self) -> Method {
        match self {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
            HttpMethod::Put => Method::PUT,
            HttpMethod::Patch => Method::PATCH,
            HttpMethod::Delete => Method::DELETE,
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

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub location: ParamIn,
    pub ty: ParamType,
    pub required: bool,
    pub description: &'static str,
}

const fn path(name: &'static str, ty: ParamType, description: &'static str) -> Param {
    Param {
        name,
        location: ParamIn::Path,
        ty,
        required: true,
        description,
    }
}

const fn query(
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

/// One REST route onto one command.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: HttpMethod,
    /// Full path; `{name}` segments are path parameters.
    pub path: &'static str,
    pub command: &'static str,
    pub summary: &'static str,
    /// Who may call it (documentation; dispatch enforces the handler's own).
    pub access: Access,
    pub params: &'static [Param],
    /// Whether the command takes a JSON request body.
    pub body: bool,
}

const fn route(
    method: HttpMethod,
    path: &'static str,
    command: &'static str,
    summary: &'static str,
    access: Access,
) -> Route {
    Route {
        method,
        path,
        command,
        summary,
        access,
        params: &[],
        body: false,
    }
}

impl Route {
    const fn with_body(mut self) -> Self {
        self.body = true;
        self
    }

    const fn params(mut self, params: &'static [Param]) -> Self {
        self.params = params;
        self
    }
}

use HttpMethod::{Delete, Get, Patch, Post, Put};
use ParamType::{Integer, String as Text};

/// Every command route. Order matters where paths overlap: a literal segment
/// (`/sessions/current`) comes before a parameter (`/sessions/{id}`).
pub const ROUTES: &[Route] = &[
    route(
        Get,
        "/api/v1/server",
        "server.info",
        "Describe this server",
        Access::Public,
    ),
    route(
        Get,
        "/api/v1/prelogin",
        "account.prelogin",
        "Key-derivation salt and parameters of an account (a stable fake one for unknown emails)",
        Access::Public,
    )
    .params(&[query("email", Text, true, "Email address of the account")]),
    route(
        Post,
        "/api/v1/accounts",
        "account.register",
        "Create an account",
        Access::Public,
    )
    .with_body(),
    route(
        Post,
        "/api/v1/accounts/verify",
        "account.verify",
        "Verify an email address with the code or the link token from the mail",
        Access::Public,
    )
    .with_body(),
    route(
        Post,
        "/api/v1/accounts/verification",
        "account.resend_verification",
        "Send the verification mail again",
        Access::Public,
    )
    .with_body(),
    route(
        Post,
        "/api/v1/sessions",
        "session.create",
        "Log in",
        Access::Public,
    )
    .with_body(),
    route(
        Get,
        "/api/v1/sessions",
        "session.list",
        "List the account's sessions",
        Access::Session,
    ),
    route(
        Delete,
        "/api/v1/sessions",
        "session.revoke_others",
        "Log out every other session",
        Access::Session,
    ),
    route(
        Delete,
        "/api/v1/sessions/current",
        "session.delete_current",
        "Log out this session",
        Access::Session,
    ),
    route(
        Delete,
        "/api/v1/sessions/{id}",
        "session.revoke",
        "Revoke one session",
        Access::Session,
    )
    .params(&[path("id", Text, "Public id of the session (not its token)")]),
    route(
        Get,
        "/api/v1/me",
        "me.get",
        "The caller's own account",
        Access::Session,
    ),
    route(
        Patch,
        "/api/v1/me",
        "me.update",
        "Change display name, bio or handle",
        Access::Session,
    )
    .with_body(),
    route(
        Delete,
        "/api/v1/me",
        "me.delete",
        "Delete the account (confirmed with the auth key)",
        Access::Session,
    )
    .with_body(),
    route(
        Put,
        "/api/v1/me/password",
        "me.change_password",
        "Change the password (new auth key, re-sealed keys); revokes other sessions",
        Access::Session,
    )
    .with_body(),
    route(
        Get,
        "/api/v1/users",
        "user.search",
        "Search users by handle or display-name prefix",
        Access::Verified,
    )
    .params(&[
        query("query", Text, true, "Prefix of a handle or display name"),
        query("limit", Integer, false, "Most users to return"),
    ]),
    route(
        Get,
        "/api/v1/users/{handle}",
        "user.get",
        "A user's public profile",
        Access::Verified,
    )
    .params(&[path("handle", Text, "The user's handle")]),
    route(
        Get,
        "/api/v1/users/{id}/keys",
        "user.keys",
        "A user's public keys and their fingerprint",
        Access::Verified,
    )
    .params(&[path("id", Integer, "The user's numeric id")]),
];

/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
/// Path of the email-link verification page.
pub const VERIFY_PAGE_PATH: &str = "/verify";

/// Every (method, path) the server answers, command routes and the rest.
pub fn all_method_paths() -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<_> = ROUTES.iter().map(|r| (r.method.as_str(), r.path)).collect();
    all.push(("GET", OPENAPI_PATH));
    all.push(("GET", VERIFY_PAGE_PATH));
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn routes_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        let mut commands = HashSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method.as_str(), r.path)),
                "duplicate {} {}",
                r.method.as_str(),
                r.path
            );
            assert!(
                commands.insert(r.command),
                "command {} routed twice",
                r.command
            );
            assert!(r.path.starts_with(API_PREFIX), "{}", r.path);
            // every {param} of the path is declared, and vice versa
            let in_path: Vec<&str> = r
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            let declared: Vec<&str> = r
                .params
                .iter()
                .filter(|p| p.location == ParamIn::Path)
                .map(|p| p.name)
                .collect();
            assert_eq!(in_path, declared, "{}", r.path);
            assert!(!(r.body && r.method == HttpMethod::Get), "{}", r.path);
        }
    }

    #[test]
    fn literal_segments_come_before_parameters() {
        let current = ROUTES
            .iter()
            .position(|r| r.path == "/api/v1/sessions/current")
            .unwrap();
        let by_id = ROUTES
            .iter()
            .position(|r| r.path == "/api/v1/sessions/{id}")
            .unwrap();
        assert!(current < by_id);
    }
}
