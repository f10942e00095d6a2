//! `ferrogram-server`: settings, telemetry, build, run.

use clap::Parser;
use ferrogram_server::config::{Config, ConfigError};
use ferrogram_server::startup::Application;
use ferrogram_server::telemetry;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc instead of glibc's malloc: the message path allocates and frees
/// many short-lived buffers on several threads (frames, envelopes, rows),
/// where glibc's arenas and consolidation took about a seventh of the
/// server's CPU under load. jemalloc cut CPU per message by ~10 % and kept
/// idle connections at ~25 KiB each; mimalloc was as fast but raised them
/// to ~41 KiB (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit status for a configuration that cannot be used.
const EXIT_CONFIG: u8 = 2;

/// Ferrogram: a self-hostable, end-to-end encrypted messenger server.
///
/// Runs on built-in defaults (config.yaml in the source tree); override them
/// with --config and FERROGRAM__SECTION__KEY environment variables.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// YAML file laid over the built-in config.yaml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => return config_error(&e),
    };
    telemetry::init(&config.log.level);
    actix_web::rt::System::new().block_on(async move {
        let app = match Application::build(config) {
            Ok(app) => app,
            Err(e) => {
                if let Some(config_err) = e.downcast_ref::<ConfigError>() {
                    return config_error(config_err);
                }
                eprintln!("ferrogram-server: {}", one_line(&format!("{e:#}")));
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = app.handle_signals() {
            eprintln!("ferrogram-server: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
        println!("{}", app.startup_message());
        let _ = std::io::stdout().flush();
        match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ferrogram-server: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("ferrogram-server: {}", one_line(&e.to_string()));
    ExitCode::from(EXIT_CONFIG)
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
