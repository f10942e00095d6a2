//! `account.register`: creates an account from the client's key material and
//! sends the verification email.

use crate::account::email_rate_key;
use crate::account::verify::new_verification;
use crate::error::Fail;
use crate::{checks, mail, password, secrets, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::ids::Timestamp;
use ferrogram_core::proto::{RegisterRequest, RegisterResponse};
use ferrogram_core::{validate, ApiError, ErrorCode};
use ferrogram_storage::rusqlite::TransactionBehavior;
use ferrogram_storage::{users, verifications, StorageError};

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::Register {
    fn rate_key(req: &RegisterRequest) -> Option<String> {
        email_rate_key(&req.email)
    }

    async fn handle(
        &self,
        ctx: &HandlerCtx,
        _: &Caller,
        req: RegisterRequest,
    ) -> Result<RegisterResponse, ApiError> {
        let settings = &ctx.settings;
        if !settings.registration_open {
            return Err(ApiError::new(
                ErrorCode::RegistrationClosed,
                "this server does not accept new accounts",
            ));
        }
        // Cheap checks first, in the order of the form a person fills in.
        let email = validate::email(&req.email)?;
        let handle = validate::handle(&req.handle)?;
        let display_name = validate::display_name(&req.display_name)?;
        checks::auth_key(&req.auth_key)?;
        checks::kdf(&req.kdf_salt, &req.kdf, settings)?;
        checks::sealed_keys(&req.sealed_keys)?;
        checks::public_keys(&req.public_keys)?;

        // Fail fast on a taken email or handle before paying for the hash; the
        // UNIQUE constraints still decide if two registrations race.
        let (check_email, check_handle) = (email.clone(), handle.clone());
        ctx.storage
            .run(move |conn| -> Result<(), Fail> {
                match users::taken(conn, &check_email, &check_handle)? {
                    Some(field) => Err(StorageError::Conflict(field).into()),
                    None => Ok(()),
                }
            })
            .await?;

        let auth_hash = password::hash(
            password::Priority::Login,
            settings.auth_hash,
            req.auth_key.0,
        )
        .await?;

        let now = Timestamp::now();
        let code = secrets::new_code();
        let token = secrets::new_token();
        let new_user = users::NewUser {
            email: email.clone(),
            handle: handle.clone(),
            display_name,
            auth_hash,
            kdf_salt: req.kdf_salt.0,
            kdf: req.kdf,
            public_keys: req.public_keys,
            sealed_keys: req.sealed_keys.0,
            created_at: now,
        };
        let secret = settings.server_secret.clone();
        let (ttl, cooldown) = (
            settings.verification_ttl_secs,
            settings.resend_cooldown_secs,
        );
        let email_key = secrets::email_key(&secret, &email);
        let (tx_code, tx_token) = (code.clone(), token.clone());
        let bench = settings.bench_accounts;
        let user_id = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> {
                // The account, its first code and the resend cooldown commit
                // together: there is never an account without a way to verify.
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let id = users::insert(&tx, &new_user)?;
                if bench {
                    // Bench mode (load tests only): verified at once, no mail.
                    users::mark_verified(&tx, id, now)?;
                    tx.commit()?;
                    return Ok(id);
                }
                verifications::upsert(
                    &tx,
                    &new_verification(&secret, id, &tx_code, &tx_token, now, ttl),
                )?;
                verifications::record_cooldown(
                    &tx,
                    &email_key,
                    now,
                    now.saturating_sub_ms(cooldown * 1000),
                )?;
                tx.commit()?;
                Ok(id)
            })
            .await?;

        if bench {
            tracing::info!(user_id = %user_id, "account registered (bench mode: verified)");
            return Ok(RegisterResponse {
                user_id,
                handle,
                verified: true,
            });
        }
        ctx.mail
            .enqueue(mail::verification(settings, &email, &code, &token));
        tracing::info!(user_id = %user_id, "account registered");
        Ok(RegisterResponse {
            user_id,
            handle,
            verified: false,
        })
    }
}
