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

/// Characters that change how text around them is shown without showing
/// themselves: bidirectional embeddings, overrides, isolates and marks (a
/// name could then read backwards: "gnp.exe"), and zero-width spaces and
/// joiners (two names that look the same but differ).
fn is_hidden_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'                 // Arabic letter mark
        | '\u{180E}'               // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}' // zero-width space, non-joiner, joiner; LRM, RLM
        | '\u{202A}'..='\u{202E}' // embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // isolates
        | '\u{206A}'..='\u{206F}' // deprecated format characters
        | '\u{FEFF}' // zero-width no-break space (BOM)
    )
}

/// A joiner between two non-ASCII letters or symbols is part of writing:
/// ZWNJ inside Persian words, ZWJ in Indic conjuncts and emoji sequences
/// (a family emoji). Anywhere else it only hides something.
fn is_joiner_in_writing(prev: Option<char>, c: char, next: Option<char>) -> bool {
    let writing = |x: Option<char>| {
        x.is_some_and(|x| !x.is_ascii() && !x.is_whitespace() && !is_hidden_format(x))
    };
    matches!(c, '\u{200C}' | '\u{200D}') && writing(prev) && writing(next)
}

/// The first invisible formatting character of `s` (see
/// [`is_hidden_format`]) that is not a joiner inside a word or emoji.
/// Display names, bios, group titles and device names refuse them, rather
/// than strip them, so what a user typed is what others see.
pub fn hidden_format_char(s: &str) -> Option<char> {
    let chars: Vec<char> = s.chars().collect();
    chars.iter().enumerate().find_map(|(i, &c)| {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        (is_hidden_format(c) && !is_joiner_in_writing(prev, c, next)).then_some(c)
    })
}

/// What a refused invisible character is called in error messages.
pub const HIDDEN_FORMAT_MESSAGE: &str =
    "must not contain invisible or text-direction control characters";

/// 1-64 characters, no control or invisible formatting characters;
/// surrounding spaces trimmed.
pub fn display_name(raw: &str) -> Result<String, ApiError> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > DISPLAY_NAME_MAX || has_control(n) {
        return Err(ApiError::new(
            ErrorCode::InvalidDisplayName,
            "display name must be 1 to 64 characters, without control characters",
        ));
    }
    if hidden_format_char(n).is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidDisplayName,
            format!("display name {HIDDEN_FORMAT_MESSAGE}"),
        ));
    }
    Ok(n.to_owned())
}

/// Up to 500 characters; newlines and tabs allowed, other control and
/// invisible formatting characters not.
pub fn bio(raw: &str) -> Result<String, ApiError> {
    let b = raw.trim();
    if b.chars().count() > BIO_MAX || b.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::new(
            ErrorCode::InvalidBio,
            "bio must be at most 500 characters",
        ));
    }
    if hidden_format_char(b).is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidBio,
            format!("bio {HIDDEN_FORMAT_MESSAGE}"),
        ));
    }
    Ok(b.to_owned())
}

/// Up to 64 characters, no control characters; empty becomes "unknown device".
pub fn device_name(raw: Option<&str>) -> Result<String, ApiError> {
    let d = raw.unwrap_or("").trim();
    if d.chars().count() > DEVICE_NAME_MAX || has_control(d) || hidden_format_char(d).is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidDeviceName,
            "device name must be at most 64 characters, without control or invisible characters",
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

    /// Bidirectional overrides, embeddings, isolates and marks, and
    /// zero-width characters, as they would be used to disguise a name.
    const HIDDEN: [&str; 16] = [
        "\u{202A}", "\u{202B}", "\u{202C}", "\u{202D}", "\u{202E}", "\u{2066}", "\u{2067}",
        "\u{2068}", "\u{2069}", "\u{200E}", "\u{200F}", "\u{200B}", "\u{200C}", "\u{200D}",
        "\u{2060}", "\u{FEFF}",
    ];

    #[test]
    fn names_bios_and_devices_refuse_invisible_formatting() {
        for hidden in HIDDEN {
            for text in [
                format!("admin{hidden}"),
                format!("{hidden}admin"),
                format!("ad{hidden}min"),
                format!("evil{hidden}exe.png"),
            ] {
                let name = display_name(&text).unwrap_err();
                assert_eq!(name.code, ErrorCode::InvalidDisplayName, "{text:?}");
                assert!(name.message.contains("invisible"), "{}", name.message);
                assert_eq!(
                    bio(&text).unwrap_err().code,
                    ErrorCode::InvalidBio,
                    "{text:?}"
                );
                assert_eq!(
                    device_name(Some(&text)).unwrap_err().code,
                    ErrorCode::InvalidDeviceName,
                    "{text:?}"
                );
                assert!(hidden_format_char(&text).is_some(), "{text:?}");
            }
        }
    }

    #[test]
    fn joiners_inside_words_and_emoji_are_writing() {
        // a family emoji (ZWJ sequence), a rainbow flag, a Persian word
        // with ZWNJ, a Devanagari conjunct with ZWJ
        for ok in [
            "Dad \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
            "\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}",
            "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}",
            "\u{0915}\u{094D}\u{200D}\u{0937}",
        ] {
            assert_eq!(display_name(ok).unwrap(), ok.trim());
            assert_eq!(bio(ok).unwrap(), ok.trim());
        }
        // but not next to ASCII, spaces or another invisible character
        for bad in [
            "a\u{200D}\u{1F468}",
            "\u{1F468}\u{200D} x",
            "\u{1F468}\u{200D}\u{200D}\u{1F469}",
        ] {
            assert!(display_name(bad).is_err(), "{bad:?}");
        }
    }
}
