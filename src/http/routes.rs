//! The REST route table, derived from the command declarations
//! (`ferrogram_core::commands`): every route of `docs/protocol.md`, each onto
//! one command. Routes are registered from it and the OpenAPI document is
//! generated from it, so neither can disagree with a declaration.

use actix_web::http::Method;
use ferrogram_core::command::{Access, CommandInfo};
use ferrogram_core::commands;
use std::sync::OnceLock;

pub use ferrogram_core::command::{HttpMethod, Param, ParamIn, ParamType, API_PREFIX};

/// The actix method of a declared one.
pub fn actix_method(method: HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
    }
}

/// One REST route onto one command: a declaration's `HTTP` with its name,
/// access and rate class.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: HttpMethod,
    /// Full path; `{name}` segments are path parameters.
    pub path: &'static str,
    pub command: &'static str,
    pub summary: &'static str,
    /// Who may call it (dispatch enforces it).
    pub access: Access,
    pub rate_class: Option<&'static str>,
    pub params: &'static [Param],
    /// Whether the command takes a JSON request body.
    pub body: bool,
}

impl Route {
    /// The route of a declaration, if it has one.
    pub fn of(command: &CommandInfo) -> Option<Route> {
        let http = command.http?;
        Some(Route {
            method: http.method,
            path: http.path,
            command: command.name,
            summary: http.summary,
            access: command.access,
            rate_class: command.rate_class,
            params: http.params,
            body: http.body,
        })
    }
}

/// Every command route, derived from the declarations
/// (`ferrogram_core::commands::ALL`). Where paths overlap, a literal segment
/// must come before a parameter (`/sessions/current` before
/// `/sessions/{id}`): routes with fewer parameters come first.
pub fn routes() -> &'static [Route] {
    static ROUTES: OnceLock<Vec<Route>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let mut routes: Vec<Route> = commands::ALL.iter().filter_map(Route::of).collect();
        routes.sort_by_key(|r| {
            r.params
                .iter()
                .filter(|p| p.location == ParamIn::Path)
                .count()
        });
        routes
    })
}

/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
/// Path of the email-link verification page.
pub const VERIFY_PAGE_PATH: &str = "/verify";

/// Every (method, path) the server answers, command routes and the rest.
pub fn all_method_paths() -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<_> = routes()
        .iter()
        .map(|r| (r.method.as_str(), r.path))
        .collect();
    all.push(("GET", OPENAPI_PATH));
    all.push(("GET", VERIFY_PAGE_PATH));
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_declared_route_is_in_the_table_once() {
        let mut seen = HashSet::new();
        for r in routes() {
            assert!(
                seen.insert((r.method.as_str(), r.path)),
                "duplicate {} {}",
                r.method.as_str(),
                r.path
            );
        }
        let mut declared: Vec<&str> = commands::ALL
            .iter()
            .filter(|c| c.http.is_some())
            .map(|c| c.name)
            .collect();
        let mut routed: Vec<&str> = routes().iter().map(|r| r.command).collect();
        declared.sort_unstable();
        routed.sort_unstable();
        assert_eq!(routed, declared);
        for r in routes() {
            let c = commands::by_name(r.command).unwrap();
            let http = c.http.unwrap();
            assert_eq!(
                (r.method, r.path, r.access),
                (http.method, http.path, c.access)
            );
            assert_eq!(r.rate_class, c.rate_class);
        }
    }

    #[test]
    fn literal_segments_come_before_parameters() {
        let current = routes()
            .iter()
            .position(|r| r.path == "/api/v1/sessions/current")
            .unwrap();
        let by_id = routes()
            .iter()
            .position(|r| r.path == "/api/v1/sessions/{id}")
            .unwrap();
        assert!(current < by_id);
    }
}
