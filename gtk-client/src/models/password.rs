//! The password strength hint of the sign-up and change-password forms: a
//! rough score from length and variety, not a promise. The real protection is
//! Argon2id on the client and rate limits on the server.

use crate::i18n::tr;

/// Shortest password the client library accepts.
pub const MIN_CHARS: usize = ferrogram_client::MIN_PASSWORD_CHARS;

const COMMON: &[&str] = &[
    "password",
    "passwort",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyui",
    "qwertzui",
    "iloveyou",
    "letmein1",
    "ferrogram",
    "abcdefgh",
    "11111111",
    "00000000",
];

/// 0 (unusable) to 4 (strong).
pub fn score(password: &str) -> u8 {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return 0;
    }
    let lower = password.to_lowercase();
    if COMMON.iter().any(|c| lower.starts_with(c)) {
        return 1;
    }
    let distinct = {
        let mut seen: Vec<char> = password.chars().collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    };
    if distinct < 4 {
        return 1;
    }
    let classes = [
        password.chars().any(char::is_lowercase),
        password.chars().any(char::is_uppercase),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let mut score = 1;
    if chars >= 12 || classes >= 3 {
        score += 1;
    }
    if chars >= 16 || (chars >= 12 && classes >= 3) {
        score += 1;
    }
    if chars >= 20 || (chars >= 14 && classes >= 3) {
        score += 1;
    }
    score.min(4)
}

/// The sentence shown under the password field.
pub fn hint(password: &str) -> String {
    if password.is_empty() {
        return tr("Use at least 8 characters; a few unrelated words make a strong password.");
    }
    match score(password) {
        0 => tr("Too short: use at least 8 characters."),
        1 => tr("Weak: easy to guess. Make it longer."),
        2 => tr("Fair: longer is better."),
        3 => tr("Good."),
        _ => tr("Strong."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores() {
        assert_eq!(score(""), 0);
        assert_eq!(score("short"), 0);
        assert_eq!(score("password123"), 1);
        assert_eq!(score("aaaaaaaaaa"), 1);
        assert_eq!(score("kettle42"), 1);
        assert_eq!(score("Kettle42!"), 2);
        assert_eq!(score("correct horse battery staple"), 4);
        assert_eq!(score("Tr0ub4dor&3xyz"), 4);
        assert!(hint("short").starts_with("Too short"));
    }
}
