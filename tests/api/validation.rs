//! Bad input of every kind gets a JSON error with a stable code and the right
//! HTTP status; nothing is echoed back, nothing crashes.

use ferrogram_client::proto::PublicKeys;
use ferrogram_client::Method;
use ferrogram_core::b64::B64;
use serde_json::{json, Value};

use ferrogram_test_support::{identity_a, spawn_app, TestApp, TestUser, TEST_KDF};

/// A register body the server accepts; tests spoil one field at a time.
fn register_body(user: &TestUser) -> Value {
    json!({
        "email": user.email,
        "handle": user.handle,
        "display_name": user.display_name,
        "auth_key": B64(vec![1; 32]),
        "kdf_salt": B64(vec![2; 16]),
        "kdf": TEST_KDF,
        "public_keys": identity_a().public_keys(),
        "sealed_keys": B64(vec![3; 600]),
    })
}

/// Sends `body` and checks the status and the error code.
async fn expect_error(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
    status: u16,
    code: &str,
) -> Value {
    let (got, answer) = app
        .client
        .raw(method.clone(), path, body.clone(), token)
        .await
        .unwrap();
    assert_eq!(
        (got, answer["error"]["code"].as_str()),
        (status, Some(code)),
        "{method} {path} with {body:?}: {answer}"
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{answer}"
    );
    answer
}

async fn expect_register_error(app: &TestApp, field: &str, value: Value, status: u16, code: &str) {
    let mut body = register_body(&TestUser::new("val"));
    body[field] = value;
    expect_error(
        app,
        Method::POST,
        "/api/v1/accounts",
        Some(body),
        None,
        status,
        code,
    )
    .await;
}

#[tokio::test]
async fn the_reference_register_body_is_accepted() {
    // Guards the tests below: each one fails for its one spoiled field only.
    let app = spawn_app().await;
    let user = TestUser::new("okbody");
    let (status, answer) = app
        .client
        .raw(
            Method::POST,
            "/api/v1/accounts",
            Some(register_body(&user)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["handle"], user.handle.as_str());
    assert_eq!(answer["verified"], false);
}

#[tokio::test]
async fn bad_handles() {
    let app = spawn_app().await;
    for bad in [
        "ab",
        "",
        "a-b-c",
        "ali ce",
        "123456",
        "ünïcode",
        "dot.ted",
        &"a".repeat(33),
    ] {
        expect_register_error(&app, "handle", json!(bad), 422, "invalid_handle").await;
    }
}

#[tokio::test]
async fn bad_emails() {
    let app = spawn_app().await;
    for bad in [
        "",
        "plain",
        "@example.org",
        "a@",
        "a@b",
        "a b@example.org",
        "a@@example.org",
        "a@ex..org",
        &format!("{}@example.org", "a".repeat(250)),
    ] {
        expect_register_error(&app, "email", json!(bad), 422, "invalid_email").await;
    }
}

#[tokio::test]
async fn bad_display_names_and_bios() {
    let app = spawn_app().await;
    for bad in ["", "   ", "bell\u{7}", &"é".repeat(65)] {
        expect_register_error(
            &app,
            "display_name",
            json!(bad),
            422,
            "invalid_display_name",
        )
        .await;
    }
    let user = TestUser::new("bio");
    app.register(&user).await;
    let session = app.login(&user).await;
    let token = Some(session.token());
    for (field, value, code) in [
        ("bio", "x".repeat(501), "invalid_bio"),
        ("bio", "nul\u{0}".to_owned(), "invalid_bio"),
        ("display_name", "n".repeat(65), "invalid_display_name"),
        ("display_name", String::new(), "invalid_display_name"),
        ("handle", "no way".to_owned(), "invalid_handle"),
    ] {
        expect_error(
            &app,
            Method::PATCH,
            "/api/v1/me",
            Some(json!({ field: value })),
            token,
            422,
            code,
        )
        .await;
    }
    // The longest allowed values pass.
    let (status, answer) = app
        .client
        .raw(
            Method::PATCH,
            "/api/v1/me",
            Some(json!({"bio": "b".repeat(500), "display_name": "é".repeat(64)})),
            token,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["bio"].as_str().unwrap().len(), 500);
}

#[tokio::test]
async fn bad_key_material() {
    let app = spawn_app().await;
    for len in [0, 16, 31, 33, 64] {
        expect_register_error(
            &app,
            "auth_key",
            json!(B64(vec![1; len])),
            422,
            "invalid_key",
        )
        .await;
    }
    for len in [0, 8, 15, 65] {
        expect_register_error(
            &app,
            "kdf_salt",
            json!(B64(vec![2; len])),
            422,
            "invalid_kdf_params",
        )
        .await;
    }
    expect_register_error(&app, "sealed_keys", json!(B64(vec![])), 422, "invalid_key").await;
    expect_register_error(
        &app,
        "sealed_keys",
        json!(B64(vec![3; 16 * 1024 + 1])),
        422,
        "invalid_key",
    )
    .await;
    let real = identity_a().public_keys();
    for keys in [
        PublicKeys {
            sign: B64(vec![0x30, 0x03, 1, 2, 3]),
            enc: real.enc.clone(),
        },
        PublicKeys {
            sign: real.sign.clone(),
            enc: B64(b"not a key at all".to_vec()),
        },
        // The same key for both roles.
        PublicKeys {
            sign: real.sign.clone(),
            enc: real.sign.clone(),
        },
        PublicKeys {
            sign: B64(vec![]),
            enc: B64(vec![]),
        },
    ] {
        expect_register_error(&app, "public_keys", json!(keys), 422, "invalid_key").await;
    }
}

#[tokio::test]
async fn bad_kdf_params() {
    let app = spawn_app().await;
    let bad_params = [
        json!({"alg": "argon2id", "m_cost_kib": 32, "t_cost": 1, "p_cost": 1}),
        json!({"alg": "argon2id", "m_cost_kib": 64, "t_cost": 0, "p_cost": 1}),
        json!({"alg": "argon2id", "m_cost_kib": 64, "t_cost": 1, "p_cost": 0}),
        json!({"alg": "argon2id", "m_cost_kib": 64, "t_cost": 65, "p_cost": 1}),
        json!({"alg": "argon2id", "m_cost_kib": 2_000_000, "t_cost": 1, "p_cost": 1}),
        json!({"alg": "argon2id", "m_cost_kib": 64, "t_cost": 1, "p_cost": 9}),
    ];
    for kdf in bad_params {
        expect_register_error(&app, "kdf", kdf, 422, "invalid_kdf_params").await;
    }
    // An unknown algorithm does not even parse.
    expect_register_error(
        &app,
        "kdf",
        json!({"alg": "pbkdf2", "m_cost_kib": 64, "t_cost": 1, "p_cost": 1}),
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn bad_base64_wrong_types_unknown_and_missing_fields() {
    let app = spawn_app().await;
    let answer = expect_register_error_answer(&app, "auth_key", json!("%%% not base64 %%%")).await;
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("%%%"),
        "the bad value is echoed: {message}"
    );
    for (field, value) in [
        ("handle", json!(42)),
        ("email", json!(null)),
        ("display_name", json!(["x"])),
        ("kdf", json!("strong")),
        ("auth_key", json!(123)),
        ("public_keys", json!({"sign": "AAAA"})),
    ] {
        expect_register_error(&app, field, value, 400, "bad_request").await;
    }
    let mut body = register_body(&TestUser::new("unk"));
    body["is_admin"] = json!(true);
    expect_error(
        &app,
        Method::POST,
        "/api/v1/accounts",
        Some(body),
        None,
        400,
        "bad_request",
    )
    .await;
    let mut body = register_body(&TestUser::new("miss"));
    body.as_object_mut().unwrap().remove("sealed_keys");
    expect_error(
        &app,
        Method::POST,
        "/api/v1/accounts",
        Some(body),
        None,
        400,
        "bad_request",
    )
    .await;
    for body in [json!([]), json!("text"), json!(null), json!(7)] {
        expect_error(
            &app,
            Method::POST,
            "/api/v1/accounts",
            Some(body),
            None,
            400,
            "bad_request",
        )
        .await;
    }
}

async fn expect_register_error_answer(app: &TestApp, field: &str, value: Value) -> Value {
    let mut body = register_body(&TestUser::new("b64"));
    body[field] = value;
    expect_error(
        app,
        Method::POST,
        "/api/v1/accounts",
        Some(body),
        None,
        400,
        "bad_request",
    )
    .await
}

#[tokio::test]
async fn malformed_json_wrong_content_type_and_oversized_bodies() {
    let app = spawn_app().await;
    for bad in [
        &b"{"[..],
        b"{\"email\": }",
        b"not json",
        b"{\"a\":1}}",
        &[0xff, 0xfe, 0x00],
    ] {
        let (status, text) = app
            .client
            .raw_bytes(
                Method::POST,
                "/api/v1/accounts",
                Some(bad.to_vec()),
                Some("application/json"),
                None,
            )
            .await
            .unwrap();
        let answer: Value = serde_json::from_str(&text).expect("a JSON error body");
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("invalid_json")),
            "{bad:?}: {text}"
        );
    }
    let body = serde_json::to_vec(&register_body(&TestUser::new("ctype"))).unwrap();
    let (status, text) = app
        .client
        .raw_bytes(
            Method::POST,
            "/api/v1/accounts",
            Some(body),
            Some("text/plain"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("bad_request"), "{text}");

    // Over limits.max_body_bytes: 413, whether or not the
    // body is valid JSON.
    let limit = app.config.limits.max_body_bytes;
    let mut big = register_body(&TestUser::new("big"));
    big["display_name"] = json!("x".repeat(limit + 1));
    let (status, text) = app
        .client
        .raw_bytes(
            Method::POST,
            "/api/v1/accounts",
            Some(serde_json::to_vec(&big).unwrap()),
            Some("application/json"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 413, "{}", &text[..text.len().min(200)]);
    assert!(text.contains("payload_too_large"), "{text}");
    let (status, _) = app
        .client
        .raw_bytes(
            Method::POST,
            "/api/v1/sessions",
            Some(vec![b' '; limit * 4]),
            Some("application/json"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 413);
    // The server is still fine afterwards.
    assert!(app.client.fetch_server_info().await.is_ok());
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let app = spawn_app().await;
    let user = TestUser::new("tok");
    app.register(&user).await;
    let session = app.login(&user).await;
    for (method, path) in [
        (Method::GET, "/api/v1/me"),
        (Method::PATCH, "/api/v1/me"),
        (Method::GET, "/api/v1/sessions"),
        (Method::DELETE, "/api/v1/sessions"),
        (Method::DELETE, "/api/v1/sessions/current"),
        (Method::GET, "/api/v1/users?query=tok"),
        (Method::GET, "/api/v1/users/somebody"),
        (Method::GET, "/api/v1/users/1/keys"),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"bio": "x"}));
        expect_error(
            &app,
            method.clone(),
            path,
            body.clone(),
            None,
            401,
            "unauthorized",
        )
        .await;
        for garbage in [
            "garbage",
            "x".repeat(43).as_str(),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &session.token()[..session.token().len() - 1],
        ] {
            expect_error(
                &app,
                method.clone(),
                path,
                body.clone(),
                Some(garbage),
                401,
                "unauthorized",
            )
            .await;
        }
    }
    // A token in the URL is not a credential.
    let (status, _) = app
        .client
        .raw(
            Method::GET,
            &format!("/api/v1/me?token={}", session.token()),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(status == 400 || status == 401, "{status}");
    // The real token still works after all that.
    assert!(session.me().await.is_ok());
}

#[tokio::test]
async fn other_bad_requests() {
    let app = spawn_app().await;
    let user = TestUser::new("other");
    app.register_verified(&user).await;
    let session = app.login(&user).await;
    let token = Some(session.token());
    // Unknown route and method: JSON errors too.
    expect_error(
        &app,
        Method::GET,
        "/api/v1/nope",
        None,
        None,
        404,
        "not_found",
    )
    .await;
    expect_error(
        &app,
        Method::PUT,
        "/api/v1/server",
        None,
        None,
        405,
        "method_not_allowed",
    )
    .await;
    // A path id that is not a number.
    expect_error(
        &app,
        Method::GET,
        "/api/v1/users/abc/keys",
        None,
        token,
        400,
        "bad_request",
    )
    .await;
    expect_error(
        &app,
        Method::GET,
        "/api/v1/users/999999/keys",
        None,
        token,
        404,
        "user_not_found",
    )
    .await;
    expect_error(
        &app,
        Method::GET,
        "/api/v1/users/nobody_here",
        None,
        token,
        404,
        "user_not_found",
    )
    .await;
    // Query parameters: missing, unknown, wrong type.
    expect_error(
        &app,
        Method::GET,
        "/api/v1/prelogin",
        None,
        None,
        400,
        "bad_request",
    )
    .await;
    expect_error(
        &app,
        Method::GET,
        "/api/v1/prelogin?email=a@b.org&x=1",
        None,
        None,
        400,
        "bad_request",
    )
    .await;
    expect_error(
        &app,
        Method::GET,
        "/api/v1/prelogin?email=nope",
        None,
        None,
        422,
        "invalid_email",
    )
    .await;
    expect_error(
        &app,
        Method::GET,
        "/api/v1/users?query=a&limit=lots",
        None,
        token,
        400,
        "bad_request",
    )
    .await;
    // Log-in with a bad device name or a short auth key.
    let login = |device: Value, auth_key: B64| json!({"email": user.email, "auth_key": auth_key, "device_name": device});
    expect_error(
        &app,
        Method::POST,
        "/api/v1/sessions",
        Some(login(json!("d".repeat(65)), B64(vec![1; 32]))),
        None,
        422,
        "invalid_device_name",
    )
    .await;
    // A malformed auth key is just a wrong one: the log-in answer tells nothing more.
    expect_error(
        &app,
        Method::POST,
        "/api/v1/sessions",
        Some(login(json!("laptop"), B64(vec![1; 31]))),
        None,
        401,
        "invalid_credentials",
    )
    .await;
    // Verify: neither or both of code and token.
    expect_error(
        &app,
        Method::POST,
        "/api/v1/accounts/verify",
        Some(json!({})),
        None,
        400,
        "bad_request",
    )
    .await;
    expect_error(
        &app,
        Method::POST,
        "/api/v1/accounts/verify",
        Some(json!({"email": user.email, "code": "123456", "token": "abc"})),
        None,
        400,
        "bad_request",
    )
    .await;
    expect_error(
        &app,
        Method::POST,
        "/api/v1/accounts/verify",
        Some(json!({"email": user.email, "code": "12345x"})),
        None,
        422,
        "invalid_code",
    )
    .await;
    // Delete needs the right auth key in the body.
    expect_error(
        &app,
        Method::DELETE,
        "/api/v1/me",
        Some(json!({})),
        token,
        400,
        "bad_request",
    )
    .await;
    expect_error(
        &app,
        Method::DELETE,
        "/api/v1/me",
        Some(json!({"auth_key": B64(vec![5; 32])})),
        token,
        401,
        "invalid_credentials",
    )
    .await;
    assert!(
        session.me().await.is_ok(),
        "a failed delete changes nothing"
    );
}

#[tokio::test]
async fn an_unverified_account_says_so() {
    let app = spawn_app().await;
    let user = TestUser::new("unver");
    let registered = app.register(&user).await;
    assert!(!registered.verified);
    let session = app.login(&user).await;
    let me = session.me().await.unwrap();
    assert!(!me.verified);
    assert_eq!(session.cached_me().verified, me.verified);
}

#[tokio::test]
async fn errors_of_the_client_library_carry_the_server_codes() {
    use ferrogram_client::{ClientError, ErrorCode};
    let app = spawn_app().await;
    let user = TestUser::new("codes");
    app.register(&user).await;
    // Bypass the client's own checks with a raw body, then compare with what
    // the typed call reports for a server refusal.
    let err = app
        .client
        .register(user.params(identity_a()))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Api(_)), "{err:?}");
    assert_eq!(err.code(), Some(ErrorCode::EmailTaken));
    assert_eq!(ErrorCode::EmailTaken.http_status(), 409);
}
