//! Tracing set-up: human-readable lines on stderr at the configured level
//! (`RUST_LOG` overrides it). Stdout is left to the startup message.

use tracing_subscriber::EnvFilter;

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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .try_init();
}
