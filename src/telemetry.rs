//! Tracing set-up: human-readable lines on stderr at the configured level
//! (`RUST_LOG` overrides it). Stdout is left to the startup message.
//!
//! A few messages that can repeat many times a second while the process is
//! out of file descriptors (actix-server's "Error accepting connection: Too
//! many open files", which it says on every retry, twice a second) are let
//! through at most once a minute ([`Throttle`]). actix-server keeps retrying
//! the accept on its own, so the server serves again as soon as descriptors
//! are free.

use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::{Level, Metadata};
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How often a throttled message may be logged.
pub const THROTTLE_INTERVAL: Duration = Duration::from_secs(60);

/// (target, level) of the throttled messages: failed accepts (EMFILE,
/// ENFILE, ENOBUFS...) and a failed duplicate of an accepted socket.
const THROTTLED: &[(&str, Level)] = &[
    ("actix_server::accept", Level::ERROR),
    ("ferrogram_server::gateway::transport::socket", Level::WARN),
];

/// The filter in force: `RUST_LOG` when set and valid, else `level`.
pub fn filter(level: &str) -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => {
            EnvFilter::try_new(&env).unwrap_or_else(|_| EnvFilter::new(level))
        }
        _ => EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info")),
    }
}

/// Installs the global subscriber. A second call (tests) is a no-op.
pub fn init(level: &str) {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .with_filter(filter(level).and(Throttle::new(THROTTLE_INTERVAL)));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Lets each throttled message (see [`THROTTLED`]) through at most once per
/// interval, and every other event untouched.
pub struct Throttle {
    every: Duration,
    last: Mutex<Vec<(&'static str, Instant)>>,
}

impl Throttle {
    pub fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: Mutex::new(Vec::new()),
        }
    }

    fn throttled(meta: &Metadata<'_>) -> bool {
        meta.is_event()
            && THROTTLED
                .iter()
                .any(|(target, level)| meta.target() == *target && meta.level() == level)
    }

    /// True when the message at `callsite` may be logged now.
    fn allow(&self, callsite: &'static str, now: Instant) -> bool {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match last.iter_mut().find(|(name, _)| *name == callsite) {
            Some((_, at)) if now.duration_since(*at) < self.every => false,
            Some((_, at)) => {
                *at = now;
                true
            }
            None => {
                last.push((callsite, now));
                true
            }
        }
    }
}

impl<S> Filter<S> for Throttle {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        !Self::throttled(meta) || self.allow(meta.name(), Instant::now())
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        if Self::throttled(meta) {
            // Asked again for every event.
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::always()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_callsite_passes_once_per_interval() {
        let throttle = Throttle::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(throttle.allow("accept", t0));
        assert!(!throttle.allow("accept", t0 + Duration::from_millis(500)));
        assert!(!throttle.allow("accept", t0 + Duration::from_secs(59)));
        assert!(
            throttle.allow("other", t0 + Duration::from_secs(1)),
            "kept apart"
        );
        assert!(throttle.allow("accept", t0 + Duration::from_secs(60)));
        assert!(!throttle.allow("accept", t0 + Duration::from_secs(61)));
    }
}
