//! `session.create`: log in with email and auth_key. The bearer token is
//! returned once; only its SHA-256 is stored.

use crate::account::email_rate_key;
use crate::error::Fail;
use crate::{checks, password, secrets, views, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::b64::B64;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::ids::Timestamp;
use ferrogram_core::proto::{LoginRequest, LoginResponse};
use ferrogram_core::{validate, ApiError, ErrorCode};
use ferrogram_storage::{sessions, users};

/// One answer for an unknown email and a wrong key, so a log-in attempt does
/// not reveal whether an account exists.
pub(crate) fn invalid_credentials() -> ApiError {
    ApiError::new(ErrorCode::InvalidCredentials, "wrong email or password")
}

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::CreateSession {
    fn rate_key(req: &LoginRequest) -> Option<String> {
        email_rate_key(&req.email)
    }

    async fn handle(
        &self,
        ctx: &HandlerCtx,
        _: &Caller,
        req: LoginRequest,
    ) -> Result<LoginResponse, ApiError> {
        let email = validate::email(&req.email)?;
        let device_name = validate::device_name(req.device_name.as_deref())?;
        // A key of the wrong length can never match; saying so reveals
        // nothing about the account.
        if checks::auth_key(&req.auth_key).is_err() {
            return Err(invalid_credentials());
        }

        let user = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> { Ok(users::by_email(conn, &email)?) })
            .await?;
        // Unknown emails still pay for one hash (see password::verify).
        let stored = user.as_ref().map(|u| u.auth_hash.clone());
        let matches = password::verify(
            password::Priority::Login,
            ctx.settings.auth_hash,
            req.auth_key.0,
            stored,
        )
        .await?;
        let Some(user) = user.filter(|_| matches) else {
            return Err(invalid_credentials());
        };

        let token = secrets::new_token();
        let now = Timestamp::now();
        let new_session = sessions::NewSession {
            id: secrets::new_session_id(),
            user_id: user.id,
            token_hash: secrets::sha256(token.as_bytes()),
            device_name,
            created_at: now,
            expires_at: now.saturating_add_ms(ctx.settings.session_ttl_secs.saturating_mul(1000)),
        };
        let session_id = new_session.id.clone();
        let user_id = user.id;
        let session = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> {
                // Logging in is a natural moment to forget this account's
                // sessions that have run out.
                sessions::delete_expired_for_user(conn, user_id, now)?;
                sessions::insert(conn, &new_session)?;
                Ok(sessions::by_id(conn, &new_session.id)?)
            })
            .await?
            .ok_or_else(|| crate::error::internal(&"new session vanished"))?;

        tracing::info!(user_id = %user.id, session_id = %session_id, "logged in");
        Ok(LoginResponse {
            token,
            session: views::session(session, &session_id),
            me: views::me(&user),
            sealed_keys: B64(user.sealed_keys),
        })
    }
}
