//! The OpenAPI 3.0 document of the REST API, generated from the route table
//! (itself derived from the command declarations).

use super::routes::{routes, Param, ParamIn, ParamType, Route, OPENAPI_PATH, VERIFY_PAGE_PATH};
use ferrogram_core::command::Access;
use ferrogram_core::ErrorCode;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// The document as served (built once).
pub fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| document().to_string())
}

/// The OpenAPI document as a JSON value.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in routes() {
        let item = paths
            .entry(route.path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(route.method.as_str().to_ascii_lowercase(), operation(route));
        }
    }
    paths.insert(
        OPENAPI_PATH.to_owned(),
        json!({"get": {
            "operationId": "openapi",
            "summary": "This document",
            "tags": ["meta"],
            "security": [],
            "responses": {"200": {
                "description": "The OpenAPI 3.0 document of this API",
                "content": {"application/json": {"schema": {"type": "object"}}}
            }}
        }}),
    );
    paths.insert(
        VERIFY_PAGE_PATH.to_owned(),
        json!({"get": {
            "operationId": "verify_page",
            "summary": "Verify an email address from the link in the mail (answers an HTML page)",
            "tags": ["account"],
            "security": [],
            "x-ferrogram-command": "account.verify",
            "parameters": [{
                "name": "token", "in": "query", "required": true,
                "description": "The link token from the verification mail",
                "schema": {"type": "string"}
            }],
            "responses": {
                "200": {"description": "Verified", "content": {"text/html": {"schema": {"type": "string"}}}},
                "default": {"description": "Not verified (expired, invalid or used link)",
                            "content": {"text/html": {"schema": {"type": "string"}}}}
            }
        }}),
    );
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Ferrogram API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST API of a Ferrogram server. Every operation is a thin adapter onto one named command (x-ferrogram-command); path and query parameters are merged into the command's JSON request. Errors answer {\"error\":{\"code\",\"message\",\"retry_after\"?}} with a stable code. Request and response bodies are described in docs/protocol.md."
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Session token from POST /api/v1/sessions"
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string", "enum": codes},
                            "message": {"type": "string"},
                            "retry_after": {"type": "integer", "description": "Seconds to wait (rate_limited)"}
                        }
                    }}
                }
            },
            "responses": {
                "Error": {
                    "description": "An error with a stable machine code",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }
            }
        }
    })
}

fn operation(route: &Route) -> Value {
    let (access, security) = match route.access {
        Access::Public => ("public", json!([])),
        Access::Session => ("session", json!([{"bearer": []}])),
        Access::Verified => ("verified", json!([{"bearer": []}])),
    };
    let tag = route.command.split('.').next().unwrap_or(route.command);
    let mut op = json!({
        "operationId": route.command,
        "summary": route.summary,
        "tags": [tag],
        "x-ferrogram-command": route.command,
        "x-ferrogram-access": access,
        "security": security,
        "responses": {
            "200": {
                "description": "The command's response",
                "content": {"application/json": {"schema": {"type": "object"}}}
            },
            "default": {"$ref": "#/components/responses/Error"}
        }
    });
    if let Some(class) = route.rate_class {
        op["x-ferrogram-rate-class"] = json!(class);
    }
    if !route.params.is_empty() {
        op["parameters"] = route.params.iter().map(parameter).collect();
    }
    if route.body {
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": {"type": "object"}}}
        });
    }
    op
}

fn parameter(param: &Param) -> Value {
    let location = match param.location {
        ParamIn::Path => "path",
        ParamIn::Query => "query",
    };
    let schema = match param.ty {
        ParamType::String => json!({"type": "string"}),
        ParamType::Integer => json!({"type": "integer", "format": "int64"}),
    };
    json!({
        "name": param.name,
        "in": location,
        "required": param.required,
        "description": param.description,
        "schema": schema
    })
}
