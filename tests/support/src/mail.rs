//! Reads mails the server sent (outbox `.eml` files or an SMTP sink's files):
//! enough MIME to find the recipient and the text, and to pull the 6-digit
//! code and the link token out of it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine as _;

/// One parsed mail.
#[derive(Debug, Clone)]
pub struct Mail {
    pub path: PathBuf,
    /// Header names lower-cased, values unfolded.
    pub headers: Vec<(String, String)>,
    /// The decoded text of every text part, joined.
    pub text: String,
}

impl Mail {
    pub fn parse(path: &Path, raw: &[u8]) -> Mail {
        let raw = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        let (headers, body) = split_headers(&raw);
        let text = decode_entity(&headers, body);
        Mail {
            path: path.to_owned(),
            headers,
            text,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True when `email` is among the `To` addresses.
    pub fn is_to(&self, email: &str) -> bool {
        self.header("to")
            .is_some_and(|to| to.to_lowercase().contains(&email.to_lowercase()))
    }

    /// The first run of exactly six digits in the text.
    pub fn code(&self) -> Option<String> {
        let chars: Vec<char> = self.text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_ascii_digit() {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let before_ok = start == 0 || !chars[start - 1].is_alphanumeric();
                let after_ok = i == chars.len() || !chars[i].is_alphanumeric();
                if i - start == 6 && before_ok && after_ok {
                    return Some(chars[start..i].iter().collect());
                }
            } else {
                i += 1;
            }
        }
        None
    }

    /// The `token` query value of the `/verify?token=` link, URL-decoded.
    pub fn link_token(&self) -> Option<String> {
        let start = self.text.find("/verify?token=")? + "/verify?token=".len();
        let raw: String = self.text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !"\"'<>&)]".contains(*c))
            .collect();
        (!raw.is_empty()).then(|| percent_decode(&raw))
    }

    /// The full link (`http...verify?token=...`).
    pub fn link(&self) -> Option<String> {
        let at = self.text.find("/verify?token=")?;
        let start = self.text[..at].rfind("http")?;
        let link: String = self.text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !"\"'<>)]".contains(*c))
            .collect();
        Some(link)
    }
}

/// Every mail file in `dir` (recursively, for Maildir's `new/` and `cur/`).
pub fn read_all(dir: &Path) -> Vec<(SystemTime, Mail)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(read_all(&path));
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Hidden files and files still being written.
        if name.starts_with('.') || path.extension().is_some_and(|e| e == "tmp") {
            continue;
        }
        let Ok(raw) = std::fs::read(&path) else {
            continue;
        };
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        out.push((modified, Mail::parse(&path, &raw)));
    }
    out
}

/// The newest mail to `email` in `dir`, if any.
pub fn newest_to(dir: &Path, email: &str) -> Option<Mail> {
    let mut mails: Vec<_> = read_all(dir)
        .into_iter()
        .filter(|(_, m)| m.is_to(email))
        .collect();
    // Same mtime granularity: fall back on the file name (outbox names sort by time).
    mails.sort_by(|(ta, a), (tb, b)| ta.cmp(tb).then_with(|| a.path.cmp(&b.path)));
    mails.pop().map(|(_, m)| m)
}

/// How many mails to `email` are in `dir`.
pub fn count_to(dir: &Path, email: &str) -> usize {
    read_all(dir).iter().filter(|(_, m)| m.is_to(email)).count()
}

fn split_headers(raw: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    (headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A parameter of a header value such as `multipart/alternative; boundary="x"`.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The decoded text of a MIME entity: text parts decoded, multiparts walked,
/// anything else skipped.
fn decode_entity(headers: &[(String, String)], body: &str) -> String {
    let content_type = header(headers, "content-type").unwrap_or("text/plain");
    let lower = content_type.to_ascii_lowercase();
    if lower.starts_with("multipart/") {
        let Some(boundary) = param(content_type, "boundary") else {
            return body.to_owned();
        };
        let delimiter = format!("--{boundary}");
        let mut texts = Vec::new();
        for part in body.split(&delimiter).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let part = part.strip_prefix('\n').unwrap_or(part);
            let (part_headers, part_body) = split_headers(part);
            texts.push(decode_entity(&part_headers, part_body));
        }
        return texts.join("\n");
    }
    if !lower.starts_with("text/") {
        return String::new();
    }
    match header(headers, "content-transfer-encoding")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("base64") => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        }
        Some("quoted-printable") => decode_quoted_printable(body),
        _ => body.to_owned(),
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let mut out = Vec::new();
    for line in body.split('\n') {
        let (line, soft_break) = match line.strip_suffix('=') {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                if let Some(byte) = line
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    out.push(byte);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        if !soft_break {
            out.push(b'\n');
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
