//! The bridge between the GLib main loop (where every GObject and widget lives)
//! and a small tokio runtime (where the network work runs).
//!
//! Widgets call [`run`] inside `glib::spawn_future_local`: the future runs on
//! tokio, the caller awaits its result on the main loop, and the window never
//! waits. Long-running tasks are started with [`spawn`] and their handle is
//! aborted when the owner is disposed.

use std::future::Future;
use std::sync::OnceLock;

/// Network work needs little CPU; the machine is shared with the UI.
const WORKER_THREADS: usize = 2;

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("ferrogram-net")
            .enable_all()
            .build()
            .unwrap_or_else(|e| {
                // Without it the app cannot talk to any server.
                tracing::error!("cannot start the network runtime: {e}");
                std::process::exit(1)
            })
    })
}

/// Runs `future` on the tokio runtime and answers its output to the caller,
/// which awaits it on the GLib main loop without blocking it. A panic in the
/// future is carried over to the caller.
pub async fn run<F, T>(future: F) -> T
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    match runtime().spawn(future).await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only `spawn`ed tasks are ever aborted, never these.
        Err(_) => std::future::pending().await,
    }
}

/// Starts a long-running task on tokio; abort it through the handle.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(future)
}
