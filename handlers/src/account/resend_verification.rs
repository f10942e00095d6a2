//! `account.resend_verification`: a new code and link, replacing the old ones.
//!
//! The answer is the same whether or not the address has an account (or is
//! already verified): the cooldown is kept per address for every request, and
//! mail goes out only for an unverified account.

use crate::account::email_rate_key;
use crate::account::verify::new_verification;
use crate::error::Fail;
use crate::{mail, secrets, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::ids::Timestamp;
use ferrogram_core::proto::{ResendVerificationRequest, ResendVerificationResponse};
use ferrogram_core::{validate, ApiError};
use ferrogram_storage::rusqlite::TransactionBehavior;
use ferrogram_storage::{users, verifications};

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::ResendVerification {
    fn rate_key(req: &ResendVerificationRequest) -> Option<String> {
        email_rate_key(&req.email)
    }

    async fn handle(
        &self,
        ctx: &HandlerCtx,
        _: &Caller,
        req: ResendVerificationRequest,
    ) -> Result<ResendVerificationResponse, ApiError> {
        let settings = &ctx.settings;
        let email = validate::email(&req.email)?;
        let now = Timestamp::now();
        let cooldown_ms = settings.resend_cooldown_secs.max(0).saturating_mul(1000);
        let ttl = settings.verification_ttl_secs;
        let secret = settings.server_secret.clone();
        let email_key = secrets::email_key(&secret, &email);
        // Generated for every request, so the work does not depend on whether
        // the address has an account.
        let code = secrets::new_code();
        let token = secrets::new_token();

        let (tx_email, tx_code, tx_token) = (email.clone(), code.clone(), token.clone());
        // Some(seconds left) inside the cooldown; None when this request counts.
        let (wait_ms, send) = ctx
            .storage
            .run(move |conn| -> Result<(Option<i64>, bool), Fail> {
                // IMMEDIATE: the cooldown check and its update must not
                // interleave with a concurrent resend for the same address.
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if let Some(last) = verifications::cooldown_last_sent(&tx, &email_key)? {
                    let elapsed = now.millis_since(last);
                    if elapsed < cooldown_ms {
                        return Ok((Some(cooldown_ms - elapsed), false));
                    }
                }
                verifications::record_cooldown(
                    &tx,
                    &email_key,
                    now,
                    now.saturating_sub_ms(cooldown_ms),
                )?;
                let send = match users::by_email(&tx, &tx_email)? {
                    Some(user) if !user.is_verified() => {
                        verifications::upsert(
                            &tx,
                            &new_verification(&secret, user.id, &tx_code, &tx_token, now, ttl),
                        )?;
                        true
                    }
                    _ => false,
                };
                tx.commit()?;
                Ok((None, send))
            })
            .await?;

        if send {
            ctx.mail
                .enqueue(mail::verification(settings, &email, &code, &token));
        }
        let cooldown_secs = match wait_ms {
            // Round up: "retry in 0 s" while still refused would be a lie.
            Some(ms) => ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) > 0),
            None => settings.resend_cooldown_secs.max(0),
        };
        Ok(ResendVerificationResponse {
            cooldown_secs: cooldown_secs as u64,
        })
    }
}
