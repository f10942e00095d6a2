//! Logging in: from a [`Client`] and a password (or a stored token) to a
//! [`Session`]. Here, not in `client.rs`, so the connection needs nothing
//! from the session and the imports go one way (session -> client).

use std::sync::Arc;

use ferrogram_core::commands;
use ferrogram_core::proto::{LoginRequest, LoginResponse};
use ferrogram_core::validate;
use zeroize::Zeroizing;

use crate::client::Client;
use crate::error::ClientError;
use crate::error::KeyError;
use crate::keys::{self, run_blocking, AccountSecrets};
use crate::session::Session;

impl Client {
    /// Logs in: pre-login, derive the keys, `POST /sessions` with `auth_key`,
    /// then open the sealed private keys with `wrap_key` and check they match
    /// the account's public keys.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device_name: Option<&str>,
    ) -> Result<Session, ClientError> {
        let email = validate::email(email).map_err(ClientError::InvalidInput)?;
        let device_name = validate::device_name(device_name).map_err(ClientError::InvalidInput)?;
        if password.is_empty() {
            return Err(ClientError::invalid_input("the password is empty"));
        }
        let pre = self.prelogin(&email).await?;
        let floor = self.kdf_floor();
        if !pre.kdf.is_acceptable(&floor) {
            return Err(ClientError::Protocol(format!(
                "the server asks for key derivation parameters outside what this client \
                 accepts ({} KiB, {} passes, {} lanes), so the password is not used: \
                 either this email has no account there, or the server is not trustworthy",
                pre.kdf.m_cost_kib, pre.kdf.t_cost, pre.kdf.p_cost
            )));
        }
        let password = Zeroizing::new(password.to_owned());
        let salt = pre.salt.0.clone();
        let kdf = pre.kdf;
        let derived = run_blocking(move || keys::derive(&password, &salt, kdf)).await?;
        let request = LoginRequest {
            email,
            auth_key: derived.auth_key.to_b64(),
            device_name: Some(device_name),
        };
        let response: LoginResponse = self.call::<commands::CreateSession>(&request, None).await?;
        let token = Zeroizing::new(response.token);
        let sealed = response.sealed_keys.0;
        let expected = response.me.public_keys.clone();
        let wrap_key = derived.wrap_key;
        let opened = run_blocking(move || {
            let identity = keys::open(&sealed, &wrap_key)?;
            Ok((identity, wrap_key))
        })
        .await;
        let (identity, wrap_key) = match opened {
            Ok(pair) => pair,
            Err(e) => {
                // Do not leave a session behind that this client cannot use.
                self.logout_token(&token).await.ok();
                return Err(e);
            }
        };
        if identity.public_keys() != expected {
            self.logout_token(&token).await.ok();
            return Err(KeyError::NotTheAccountsKeys.into());
        }
        let secrets = AccountSecrets {
            identity: Arc::new(identity),
            wrap_key,
            salt: pre.salt.0,
            kdf,
        };
        Ok(Session::new(
            self.clone(),
            token,
            response.session.id,
            response.me,
            Some(secrets),
        ))
    }

    /// Picks up a session from a stored token (the CLI does this). It has no
    /// private keys: what needs them asks for a fresh log-in.
    pub async fn resume(&self, token: &str) -> Result<Session, ClientError> {
        Session::resume(self.clone(), Zeroizing::new(token.to_owned())).await
    }
}
