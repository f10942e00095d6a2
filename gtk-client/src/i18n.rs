//! Translation: every user-facing string goes through [`tr`] (or [`trn`] for
//! plurals), backed by gettext from the C library. Placeholders are named
//! (`{name}`) so translators can reorder them.

use std::path::{Path, PathBuf};

use gettextrs::LocaleCategory;

/// The gettext domain of the app (the `.mo` file name).
pub const DOMAIN: &str = "ferrogram";

/// Picks the user's locale (`LANGUAGE`, `LC_ALL`, `LC_MESSAGES`, `LANG`) and
/// binds the message catalogue (see [`locale_dir`]).
pub fn init() {
    gettextrs::setlocale(LocaleCategory::LcAll, "");
    // A missing catalogue is not an error: the English source strings are shown.
    let _ = gettextrs::bindtextdomain(DOMAIN, locale_dir());
    let _ = gettextrs::bind_textdomain_codeset(DOMAIN, "UTF-8");
    let _ = gettextrs::textdomain(DOMAIN);
}

/// Where the catalogues are: `FERROGRAM_LOCALEDIR` if set; else beside an
/// installed binary (`<prefix>/share/locale` for `<prefix>/bin/ferrogram`)
/// when it holds ours; else the ones build.rs compiled for this build, so
/// the app run from `target/` is translated; else the system's folder.
fn locale_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FERROGRAM_LOCALEDIR") {
        return dir.into();
    }
    let installed = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("share").join("locale")));
    if let Some(dir) = installed.filter(|d| holds_catalogue(d)) {
        return dir;
    }
    let built = Path::new(env!("OUT_DIR")).join("locale");
    if holds_catalogue(&built) {
        return built;
    }
    PathBuf::from("/usr/share/locale")
}

/// True when some `<dir>/<lang>/LC_MESSAGES/ferrogram.mo` exists.
fn holds_catalogue(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|langs| {
        langs.filter_map(Result::ok).any(|lang| {
            lang.path()
                .join("LC_MESSAGES")
                .join(format!("{DOMAIN}.mo"))
                .is_file()
        })
    })
}

/// Translates `msgid`.
pub fn tr(msgid: &str) -> String {
    gettextrs::gettext(msgid)
}

/// Translates `msgid` and fills its `{name}` placeholders.
pub fn tr_args(msgid: &str, args: &[(&str, &str)]) -> String {
    fill(&gettextrs::gettext(msgid), args)
}

/// Translates a message with a count (`{n}` is filled with it).
pub fn trn(singular: &str, plural: &str, n: u32, args: &[(&str, &str)]) -> String {
    let text = gettextrs::ngettext(singular, plural, n);
    let count = n.to_string();
    let mut all = vec![("n", count.as_str())];
    all.extend_from_slice(args);
    fill(&text, &all)
}

/// Replaces each `{key}` in `template` by its value, in one pass so values
/// that themselves contain braces are left alone.
fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let replaced = after.find('}').and_then(|end| {
            let key = &after[..end];
            args.iter().find(|(k, _)| *k == key).map(|(_, v)| (v, end))
        });
        if let Some((value, end)) = replaced {
            out.push_str(value);
            rest = &after[end + 1..];
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_named_placeholders_once() {
        assert_eq!(
            fill("{who} wrote {n}", &[("who", "{n}"), ("n", "3")]),
            "{n} wrote 3"
        );
        assert_eq!(fill("no {such} key {", &[]), "no {such} key {");
    }

    /// The language is process-wide: the German lookups run in a child
    /// process of this test binary with `LANGUAGE=de`.
    #[test]
    fn german_catalogue_is_found_and_used() {
        let exe = std::env::current_exe().expect("the test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", "i18n::tests::german_lookups", "--ignored"])
            .args(["--test-threads=1", "--nocapture"])
            .env("LANGUAGE", "de")
            .env("LC_ALL", "C.UTF-8")
            .env_remove("FERROGRAM_LOCALEDIR")
            .output()
            .expect("the test binary runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    #[ignore = "run by german_catalogue_is_found_and_used in a process with LANGUAGE=de"]
    fn german_lookups() {
        init();
        assert_eq!(tr("Choose a Server"), "Server wählen");
        assert_eq!(
            tr_args("Reply to {name}", &[("name", "Ada")]),
            "Antwort an Ada"
        );
        assert_eq!(trn("{n} member", "{n} members", 1, &[]), "1 Mitglied");
        assert_eq!(trn("{n} member", "{n} members", 3, &[]), "3 Mitglieder");
        // Not in the catalogue: the source text.
        let unknown = "no such string";
        assert_eq!(tr(unknown), unknown);
    }

    /// Every string of the template has a German translation that is not
    /// marked fuzzy (msgcmp, from gettext, compares the two).
    #[test]
    fn german_translation_is_complete() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("po");
        let out = std::process::Command::new("msgcmp")
            .arg(dir.join("de.po"))
            .arg(dir.join("ferrogram.pot"))
            .output()
            .expect("msgcmp (package gettext) is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let po = std::fs::read_to_string(dir.join("de.po")).expect("po/de.po");
        let fuzzy = po
            .lines()
            .filter(|l| l.starts_with("#,") && l.contains("fuzzy"))
            .count();
        assert_eq!(fuzzy, 0, "fuzzy entries in de.po");
        let untranslated = po.contains("msgstr \"\"\n\n") || po.trim_end().ends_with("msgstr \"\"");
        assert!(!untranslated, "an untranslated entry in de.po");
    }

    #[test]
    fn untranslated_text_passes_through() {
        assert_eq!(tr_args("Hello {name}", &[("name", "Ada")]), "Hello Ada");
        assert_eq!(trn("{n} chat", "{n} chats", 2, &[]), "2 chats");
        assert_eq!(trn("{n} chat", "{n} chats", 1, &[]), "1 chat");
    }
}
