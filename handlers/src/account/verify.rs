//! `account.verify`: proves control of the email address, with the 6-digit
//! code (and the email) or the link token from the verification mail.
//!
//! Codes are single use, expire, and are void after `max_code_attempts`
//! wrong guesses from all addresses together (the limit applies to codes
//! only: a 256-bit link token cannot be guessed). Wrong codes are also
//! counted per (email, address) by the `verify` rate class, which stops one
//! address long before, so a stranger cannot void someone else's code.
//! Unknown emails, verified accounts and wrong codes answer alike
//! (`invalid_code`); that a code expired or was voided is told only to
//! whoever gives the right one.

use crate::account::email_rate_key;
use crate::error::Fail;
use crate::{secrets, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::ids::{Timestamp, UserId};
use ferrogram_core::proto::{VerifyRequest, VerifyResponse};
use ferrogram_core::{validate, ApiError, ErrorCode};
use ferrogram_storage::rusqlite::{Connection, TransactionBehavior};
use ferrogram_storage::{users, verifications};

/// The stored form of a freshly issued code and link token.
pub(crate) fn new_verification(
    server_secret: &[u8],
    user_id: UserId,
    code: &str,
    token: &str,
    now: Timestamp,
    ttl_secs: i64,
) -> verifications::NewVerification {
    verifications::NewVerification {
        user_id,
        code_hash: secrets::code_hash(server_secret, user_id, code),
        token_hash: secrets::sha256(token.as_bytes()),
        sent_at: now,
        expires_at: now.saturating_add_ms(ttl_secs.saturating_mul(1000)),
    }
}

fn invalid_code() -> ApiError {
    ApiError::new(ErrorCode::InvalidCode, "the code or link is not valid")
}

fn expired() -> ApiError {
    ApiError::new(
        ErrorCode::CodeExpired,
        "this code or link has expired; request a new one",
    )
}

fn exhausted() -> ApiError {
    ApiError::new(
        ErrorCode::CodeExpired,
        "too many wrong codes; request a new one",
    )
}

/// Marks the account verified and spends the verification.
fn complete(conn: &Connection, user_id: UserId, now: Timestamp) -> Result<VerifyResponse, Fail> {
    users::mark_verified(conn, user_id, now)?;
    verifications::delete(conn, user_id)?;
    Ok(VerifyResponse {
        user_id,
        verified: true,
    })
}

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::Verify {
    fn rate_key(req: &VerifyRequest) -> Option<String> {
        req.email.as_deref().and_then(email_rate_key)
    }

    async fn handle(
        &self,
        ctx: &HandlerCtx,
        _: &Caller,
        req: VerifyRequest,
    ) -> Result<VerifyResponse, ApiError> {
        match (req.email, req.code, req.token) {
            (Some(email), Some(code), None) => by_code(ctx, &email, &code).await,
            (None, None, Some(token)) => by_token(ctx, &token).await,
            _ => Err(ApiError::bad_request(
                "give either email and code, or token",
            )),
        }
    }
}

async fn by_code(ctx: &HandlerCtx, email: &str, code: &str) -> Result<VerifyResponse, ApiError> {
    let email = validate::email(email)?;
    let code = code.trim().to_owned();
    // A malformed code is refused before it can count as an attempt.
    if !secrets::is_well_formed_code(&code) {
        return Err(ApiError::new(
            ErrorCode::InvalidCode,
            "the code has 6 digits",
        ));
    }
    let secret = ctx.settings.server_secret.clone();
    let max_attempts = ctx.settings.max_code_attempts;
    let now = Timestamp::now();
    // The outer Result is storage trouble; the inner one is the answer,
    // returned only after a wrong attempt has been committed.
    ctx.storage
        .run(
            move |conn| -> Result<Result<VerifyResponse, ApiError>, Fail> {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let user_id = users::id_by_email(&tx, &email)?;
                // An unknown email costs the same lookups and hash as a
                // known one, and answers exactly like a wrong code.
                let pending = match user_id {
                    Some(id) => verifications::for_user(&tx, id)?,
                    None => verifications::for_user(&tx, UserId(0))?,
                };
                let given = secrets::code_hash(&secret, user_id.unwrap_or(UserId(0)), &code);
                let (Some(user_id), Some(pending)) = (user_id, pending) else {
                    return Ok(Err(invalid_code()));
                };
                if !secrets::ct_eq(&given, &pending.code_hash) {
                    // Counted from all addresses together, as a bound on
                    // guessing by many; each address is stopped far
                    // earlier by the rate limiter's failure counts.
                    if pending.attempts < max_attempts {
                        verifications::record_failed_attempt(&tx, user_id)?;
                        tx.commit()?;
                    }
                    return Ok(Err(invalid_code()));
                }
                // Only whoever holds the right code learns what became of it.
                if pending.attempts >= max_attempts {
                    return Ok(Err(exhausted()));
                }
                if pending.is_expired(now) {
                    return Ok(Err(expired()));
                }
                let done = complete(&tx, user_id, now)?;
                tx.commit()?;
                Ok(Ok(done))
            },
        )
        .await?
}

async fn by_token(ctx: &HandlerCtx, token: &str) -> Result<VerifyResponse, ApiError> {
    if !secrets::is_well_formed_token(token) {
        return Err(invalid_code());
    }
    let token_hash = secrets::sha256(token.as_bytes());
    let now = Timestamp::now();
    let done = ctx
        .storage
        .run(move |conn| -> Result<VerifyResponse, Fail> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(pending) = verifications::by_token_hash(&tx, &token_hash)? else {
                return Err(invalid_code().into());
            };
            if pending.is_expired(now) {
                return Err(expired().into());
            }
            let done = complete(&tx, pending.user_id, now)?;
            tx.commit()?;
            Ok(done)
        })
        .await?;
    Ok(done)
}
