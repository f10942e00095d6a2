//! Input rules shared by the server (which enforces them) and the clients
//! (which check early to give a quick, friendly message).

use crate::error::{ApiError, ErrorCode};

pub const HANDLE_MIN: usize = 3;
pub const HANDLE_MAX: usize = 32;
pub const EMAIL_MAX: usize = 254;
pub const DISPLAY_NAME_MAX: usize = 64;
pub const BIO_MAX: usize = 500;
pub const DEVICE_NAME_MAX: usize = 64;

/// A handle is 3-32 of `[a-z0-9_]` and not all digits (so it never looks like
/// a user id). Returned lower-cased.
pub fn handle(raw: &str) -> Result<String, ApiError> {
    let h = raw.trim().to_ascii_lowercase();
    let bad = |why: &str| ApiError::new(ErrorCode::InvalidHandle, format!("handle {why}"));
    if h.len() < HANDLE_MIN || h.len() > HANDLE_MAX {
        return Err(bad("must be 3 to 32 characters long"));
    }
    if !h
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(bad("may contain only a-z, 0-9 and _"));
    }
    if h.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("must not be all digits"));
    }
    Ok(h)
}

/// A practical email check: one `@`, a non-empty local part without spaces or
/// control characters, a domain of dot-separated labels of letters, digits and
/// hyphens. Returned trimmed and lower-cased.
pub fn email(raw: &str) -> Result<String, ApiError> {
    let e = raw.trim().to_lowercase();
    let bad = || ApiError::new(ErrorCode::InvalidEmail, "not a valid email address");
    if e.is_empty() || e.len() > EMAIL_MAX {
        return Err(bad());
    }
    let (local, domain) = e.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || local.len() > 64
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || !local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
    {
        return Err(bad());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels.iter().any(|l| {
            l.is_empty()
                || l.len() > 63
                || l.starts_with('-')
                || l.ends_with('-')
                || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
    {
        return Err(bad());
    }
    Ok(e)
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// 1-64 characters, no control characters; surrounding spaces trimmed.
pub fn display_name(raw: &str) -> Result<String, ApiError> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > DISPLAY_NAME_MAX || has_control(n) {
        return Err(ApiError::new(
            ErrorCode::InvalidDisplayName,
            "display name must be 1 to 64 characters, without control characters",
        ));
    }
    Ok(n.to_owned())
}

/// Up to 500 characters; newlines and tabs allowed, other control characters not.
pub fn bio(raw: &str) -> Result<String, ApiError> {
    let b = raw.trim();
    if b.chars().count() > BIO_MAX || b.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::new(
            ErrorCode::InvalidBio,
            "bio must be at most 500 characters",
        ));
    }
    Ok(b.to_owned())
}

/// Up to 64 characters, no control characters; empty becomes "unknown device".
pub fn device_name(raw: Option<&str>) -> Result<String, ApiError> {
    let d = raw.unwrap_or("").trim();
    if d.chars().count() > DEVICE_NAME_MAX || has_control(d) {
        return Err(ApiError::new(
            ErrorCode::InvalidDeviceName,
            "device name must be at most 64 characters",
        ));
    }
    Ok(if d.is_empty() {
        "unknown device".to_owned()
    } else {
        d.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles() {
        assert_eq!(handle(" Alice_99 ").unwrap(), "alice_99");
        for bad in ["ab", "12345", "a-b-c", "ali ce", "ünï", &"a".repeat(33), ""] {
            assert_eq!(
                handle(bad).unwrap_err().code,
                ErrorCode::InvalidHandle,
                "{bad}"
            );
        }
        assert!(handle(&"a".repeat(32)).is_ok());
        assert!(handle("1a1").is_ok());
    }

    #[test]
    fn emails() {
        assert_eq!(email(" Bob@Example.ORG ").unwrap(), "bob@example.org");
        assert!(email("a.b+tag@mail.example.co.uk").is_ok());
        for bad in [
            "",
            "plain",
            "@x.org",
            "a@",
            "a@b",
            "a b@x.org",
            "a@x..org",
            "a@-x.org",
            ".a@x.org",
            "a@@x.org",
            "a@x.org\nb",
            "a\u{0}@x.org",
        ] {
            assert_eq!(
                email(bad).unwrap_err().code,
                ErrorCode::InvalidEmail,
                "{bad:?}"
            );
        }
        assert!(email(&format!("{}@x.org", "a".repeat(65))).is_err());
    }

    #[test]
    fn names_bios_devices() {
        assert_eq!(display_name("  Zoë 🦀 ").unwrap(), "Zoë 🦀");
        assert!(display_name("   ").is_err());
        assert!(display_name("a\u{7}b").is_err());
        assert!(display_name(&"é".repeat(64)).is_ok());
        assert!(display_name(&"é".repeat(65)).is_err());
        assert!(bio("line one\nline two").is_ok());
        assert!(bio(&"x".repeat(501)).is_err());
        assert!(bio("bell\u{7}").is_err());
        assert_eq!(device_name(None).unwrap(), "unknown device");
        assert!(device_name(Some(&"d".repeat(65))).is_err());
    }
}
