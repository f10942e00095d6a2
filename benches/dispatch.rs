//! The cost of `Registry::dispatch` around a handler that does nothing:
//! deserializing the request, the access check, the rate-limit lookup,
//! serializing the answer and one command-log entry. The environment is in
//! memory (the token check does not touch a database), so this is the
//! registry's own overhead, as paid by every REST call and WebSocket command.

use async_trait::async_trait;
use criterion::{criterion_group, criterion_main, Criterion};
use ferrogram_core::command::{
    Access, AuthSession, Caller, Command, CommandHandler, CommandLogEntry, Credentials,
    DispatchEnv, HttpRoute, Registry, Request,
};
use ferrogram_core::ids::{SessionId, UserId};
use ferrogram_core::ratelimit::RateLimiter;
use ferrogram_core::ApiError;
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

struct Env {
    limiter: RateLimiter,
}

fn session() -> AuthSession {
    AuthSession {
        user_id: UserId(1),
        session_id: SessionId("bench".into()),
        verified: true,
    }
}

#[async_trait]
impl DispatchEnv for Env {
    async fn authenticate(&self, _token: &str) -> Result<AuthSession, ApiError> {
        Ok(session())
    }
    fn rate_limiter(&self) -> &RateLimiter {
        &self.limiter
    }
    fn log_command(&self, entry: &CommandLogEntry) {
        std::hint::black_box(entry);
    }
    fn max_request_bytes(&self) -> usize {
        65_536
    }
}

#[derive(Deserialize, Serialize)]
struct Ping {
    n: u64,
}

struct Echo;

impl Command for Echo {
    const NAME: &'static str = "bench.echo";
    const ACCESS: Access = Access::Verified;
    const RATE_CLASS: Option<&'static str> = None;
    const HTTP: Option<HttpRoute> = None;
    type Req = Ping;
    type Resp = Ping;
}

#[async_trait]
impl CommandHandler<Env> for Echo {
    async fn handle(&self, _: &Env, _: &Caller, req: Ping) -> Result<Ping, ApiError> {
        Ok(req)
    }
}

fn request() -> Request {
    Request {
        command: "bench.echo".into(),
        ip: "127.0.0.1".parse().expect("ip"),
        request_id: "r".into(),
        body: serde_json::json!({"n": 1}),
        body_len: 8,
    }
}

fn bench(c: &mut Criterion) {
    let mut registry = Registry::new();
    registry.register(Echo).expect("one handler");
    let env = Env {
        limiter: RateLimiter::unlimited(),
    };
    let mut group = c.benchmark_group("dispatch");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    // Nothing in the path awaits anything, so each future completes on its
    // first poll: no runtime is measured.
    group.bench_function("trivial_command", |b| {
        b.iter(|| {
            registry
                .dispatch(&env, request(), Credentials::Token(Some("token".into())))
                .now_or_never()
                .expect("ready")
                .expect("ok")
        });
    });
    group.bench_function("trivial_command_pre_authenticated", |b| {
        b.iter(|| {
            registry
                .dispatch(
                    &env,
                    request(),
                    Credentials::Session {
                        session: session(),
                        origin: None,
                    },
                )
                .now_or_never()
                .expect("ready")
                .expect("ok")
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
