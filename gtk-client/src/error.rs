//! Every error the user sees is worded here, translated, from the client
//! library's error and its stable codes (never the server's English message
//! alone, and never internals).

use ferrogram_client::{ClientError, ErrorCode, MessengerError};

use crate::i18n::{tr, tr_args, trn};
use crate::secrets::SecretError;

/// A sentence for a failed request.
pub fn user_message(err: &ClientError) -> String {
    match err {
        ClientError::Unreachable { addr, reason } => tr_args(
            "Cannot reach {addr}: {reason}. Check the address and that the server is running.",
            &[("addr", addr), ("reason", reason)],
        ),
        ClientError::NotFerrogram { addr, .. } => tr_args(
            "{addr} answered, but it is not a Ferrogram server. Check the host and port.",
            &[("addr", addr)],
        ),
        ClientError::Crypto(_) => tr(
            "Your keys could not be opened. If you changed your password on another device, log in again.",
        ),
        ClientError::Protocol(detail) => tr_args(
            "The server answered something this app does not understand ({detail}).",
            &[("detail", detail)],
        ),
        ClientError::Api(e) | ClientError::InvalidInput(e) => {
            code_message(e.code, e.retry_after).unwrap_or_else(|| e.message.clone())
        }
    }
}

/// A sentence for a failed messaging command.
pub fn messenger_message(err: &MessengerError) -> String {
    match err {
        MessengerError::Client(e) => user_message(e),
        MessengerError::Timeout { .. } => tr("The server did not answer in time. Try again."),
        MessengerError::ConnectionLost { .. } => tr(
            "The connection was lost before the server answered: this may not have been done.",
        ),
        MessengerError::Offline(_) => tr("You are offline. Try again when connected."),
        MessengerError::KeyChanged { .. } => tr(
            "This contact's security key changed. Compare the safety number and accept the new key before sending.",
        ),
        MessengerError::Locked => tr("Your keys are locked. Log in with your password."),
        MessengerError::NoStore | MessengerError::Store(_) => {
            tr("The local message store could not be used.")
        }
        MessengerError::NoKeyChange(_) => tr("There is no key change to accept."),
        MessengerError::Crypto(_) => tr("A message could not be encrypted or decrypted."),
        MessengerError::Encode { .. } => {
            tr("This could not be done: the app could not prepare the request.")
        }
    }
}

/// A sentence for an error code, when there is a better one than the
/// server's own message.
fn code_message(code: ErrorCode, retry_after: Option<u64>) -> Option<String> {
    Some(match code {
        ErrorCode::InvalidCredentials => tr("Wrong email or password."),
        ErrorCode::Unauthorized | ErrorCode::SessionExpired => {
            tr("Your session has ended. Please log in again.")
        }
        ErrorCode::EmailNotVerified => tr("Verify your email address first."),
        ErrorCode::RegistrationClosed => tr("This server does not accept new accounts."),
        ErrorCode::HandleTaken => tr("This username is taken. Try another one."),
        ErrorCode::EmailTaken => tr("An account with this email address exists. Log in instead."),
        ErrorCode::AlreadyVerified => tr("This email address is already verified."),
        ErrorCode::InvalidHandle => tr(
            "A username has 3 to 32 characters: lowercase letters, digits and _, not only digits.",
        ),
        ErrorCode::InvalidEmail => tr("This is not a valid email address."),
        ErrorCode::InvalidDisplayName => tr("Enter a display name (at most 64 characters)."),
        ErrorCode::InvalidBio => tr("The bio is too long."),
        ErrorCode::InvalidCode => tr("This code is not right. Check the latest email."),
        ErrorCode::CodeExpired => tr("This code has expired. Send a new one."),
        ErrorCode::UserNotFound => tr("No such user."),
        ErrorCode::ChatNotFound | ErrorCode::NotAMember => {
            tr("This chat does not exist or you are no longer a member.")
        }
        ErrorCode::NotMessageAuthor => tr("Only the author can change this message."),
        ErrorCode::PayloadTooLarge | ErrorCode::FrameTooLarge => tr("The message is too long."),
        ErrorCode::RateLimited => match retry_after {
            Some(secs) => trn(
                "Too many attempts. Try again in {n} second.",
                "Too many attempts. Try again in {n} seconds.",
                secs.min(u64::from(u32::MAX)) as u32,
                &[],
            ),
            None => tr("Too many attempts. Try again later."),
        },
        ErrorCode::Internal | ErrorCode::Unavailable => {
            tr("The server has a problem. Try again later.")
        }
        _ => return None,
    })
}

/// A sentence for a Secret Service problem (shown once, not as an error).
pub fn secret_message(err: &SecretError) -> String {
    match err {
        SecretError::Unavailable(_) => tr(
            "No keyring (Secret Service) is running: you stay logged in only until the app closes.",
        ),
        SecretError::Failed(_) => tr(
            "The keyring refused to store the session: you stay logged in only until the app closes.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogram_client::{ApiError, KeyError, StoreError, UserId};

    #[test]
    fn codes_become_sentences() {
        let err = ClientError::Api(ApiError::new(ErrorCode::InvalidCredentials, "x"));
        assert_eq!(user_message(&err), "Wrong email or password.");
        let mut limited = ApiError::new(ErrorCode::RateLimited, "x");
        limited.retry_after = Some(30);
        assert_eq!(
            user_message(&ClientError::Api(limited)),
            "Too many attempts. Try again in 30 seconds."
        );
        let unreachable = ClientError::Unreachable {
            addr: "http://h:1".into(),
            reason: "Connection refused".into(),
        };
        assert!(user_message(&unreachable).starts_with("Cannot reach http://h:1"));
        let other = ClientError::Api(ApiError::new(ErrorCode::InvalidKey, "the key is bad"));
        assert_eq!(user_message(&other), "the key is bad");
    }

    /// Failures on this device read as sentences, not as SQLite's or the
    /// crypto library's text (which stays in the error's source chain).
    #[test]
    fn local_failures_become_sentences() {
        let store = MessengerError::from(StoreError::Vanished("a pin"));
        assert_eq!(
            messenger_message(&store),
            "The local message store could not be used."
        );
        let keys = "Your keys could not be opened. If you changed your password on another device, log in again.";
        let wrong_keys = ClientError::from(KeyError::NotTheAccountsKeys);
        assert_eq!(user_message(&wrong_keys), keys);
        assert_eq!(messenger_message(&MessengerError::from(wrong_keys)), keys);
        let sealing = MessengerError::from(KeyError::FingerprintMismatch(UserId(7)));
        assert_eq!(
            messenger_message(&sealing),
            "A message could not be encrypted or decrypted."
        );
        let encode = MessengerError::Encode {
            command: "message.send".into(),
            source: serde_json::from_str::<u8>("x").unwrap_err(),
        };
        assert_eq!(
            messenger_message(&encode),
            "This could not be done: the app could not prepare the request."
        );
    }
}
