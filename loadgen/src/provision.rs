//! `provision`: creates verified test users through the public API of a
//! server started with `bench.enabled: true`, logs each in once, and writes
//! the credentials file.
//!
//! Identities: RSA-3072 key generation takes 0.15 s to a second per key, so
//! a handful of identities (`--identities`, default 8) are generated in
//! parallel and user `i` gets identity `i mod K`. Each account still seals
//! its copy with its own key-derivation salt, exactly as a real client does;
//! they merely share key pairs. The server only checks the public keys'
//! form, never that they are unique.

use super::creds::{Credentials, SharedIdentity, UserRecord, CREDENTIALS_VERSION};
use ferrogram_client::{Client, ClientError, ClientOptions, RegisterParams, ServerAddr};
use ferrogram_core::b64::B64;
use ferrogram_core::crypto::Identity;
use ferrogram_core::proto::KdfParams;
use futures_util::{stream, StreamExt};
use std::sync::Arc;
use std::time::Instant;

/// Client key derivation of test users: the least clients accept, which a
/// server accepts only in bench mode.
pub const BENCH_KDF: KdfParams = ferrogram_core::crypto::kdf::MIN_PARAMS;

/// The password of every test user.
pub const PASSWORD: &str = "loadgen password, test accounts only";

#[derive(Debug, Clone)]
pub struct ProvisionOptions {
    pub addr: ServerAddr,
    pub users: usize,
    pub identities: usize,
    pub concurrency: usize,
    /// Emails are `<prefix>-<i>@loadgen.invalid`, handles `<prefix>_<i>`.
    pub prefix: String,
    pub progress: bool,
}

/// Why provisioning stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(
        "the server refused cheap test accounts ({0}); start it in bench mode \
         (bench.enabled: true, or FERROGRAM__BENCH__ENABLED=true), load tests only"
    )]
    NotBenchMode(String),
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("{0}")]
    Other(String),
}

fn keygen(n: usize) -> Vec<std::thread::JoinHandle<Result<Identity, ClientError>>> {
    (0..n)
        .map(|_| std::thread::spawn(ferrogram_client::generate_identity))
        .collect()
}

/// Creates the users and returns the credentials (not yet saved).
pub async fn provision(options: &ProvisionOptions) -> Result<Credentials, ProvisionError> {
    let client = Client::connect_with(
        options.addr.clone(),
        ClientOptions {
            kdf_override: Some(BENCH_KDF),
            ..ClientOptions::default()
        },
    )
    .await?;
    let min = client.server_info().min_kdf;
    if !BENCH_KDF.is_acceptable(&min) {
        return Err(ProvisionError::NotBenchMode(format!(
            "its smallest key-derivation cost is {} KiB, {} passes",
            min.m_cost_kib, min.t_cost
        )));
    }
    let started = Instant::now();
    let handles = keygen(options.identities.max(1));
    let identities: Vec<Arc<Identity>> = tokio::task::spawn_blocking(move || {
        handles
            .into_iter()
            .map(|h| {
                let identity = h
                    .join()
                    .map_err(|_| ProvisionError::Other("key generation panicked".into()))??;
                Ok(Arc::new(identity))
            })
            .collect::<Result<Vec<_>, ProvisionError>>()
    })
    .await
    .map_err(|e| ProvisionError::Other(e.to_string()))??;
    if options.progress {
        eprintln!(
            "generated {} identities in {:.1} s",
            identities.len(),
            started.elapsed().as_secs_f64()
        );
    }

    let started = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let shared = &identities;
    let results: Vec<Result<UserRecord, ProvisionError>> = stream::iter(0..options.users)
        .map(|i| {
            let client = &client;
            let identity = shared[i % shared.len()].clone();
            let done = &done;
            async move {
                let email = format!("{}-{i}@loadgen.invalid", options.prefix);
                let handle = format!("{}_{i}", options.prefix);
                let registered = client
                    .register(
                        RegisterParams::new(&email, &handle, format!("Load {i}"), PASSWORD)
                            .with_identity(identity),
                    )
                    .await
                    .map_err(|e| match e {
                        ClientError::Api(api)
                            if api.code == ferrogram_core::ErrorCode::InvalidKdfParams =>
                        {
                            ProvisionError::NotBenchMode(api.message)
                        }
                        e => ProvisionError::Client(e),
                    })?;
                if !registered.verified {
                    return Err(ProvisionError::NotBenchMode(
                        "new accounts are not verified at once".into(),
                    ));
                }
                let session = client.login(&email, PASSWORD, Some("loadgen")).await?;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if options.progress && (n.is_multiple_of(500) || n == options.users) {
                    #[allow(clippy::cast_precision_loss)]
                    let per_sec = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    eprintln!("provisioned {n}/{} users ({per_sec:.0}/s)", options.users);
                }
                Ok(UserRecord {
                    user_id: registered.user_id,
                    email,
                    handle,
                    token: session.token().to_owned(),
                    identity: i % shared.len(),
                })
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    let users = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let identities = identities
        .iter()
        .map(|id| {
            Ok(SharedIdentity {
                public_keys: id.public_keys(),
                private: B64(id
                    .to_bytes()
                    .map_err(|e| ProvisionError::Other(e.to_string()))?
                    .to_vec()),
            })
        })
        .collect::<Result<Vec<_>, ProvisionError>>()?;
    Ok(Credentials {
        version: CREDENTIALS_VERSION,
        server: client.base_url().to_owned(),
        password: PASSWORD.to_owned(),
        kdf: BENCH_KDF,
        identities,
        users,
    })
}
