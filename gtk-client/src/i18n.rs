//! Translation: every user-facing string goes through [`tr`] (or [`trn`] for
//! plurals), backed by gettext from the C library. Placeholders are named
//! (`{name}`) so translators can reorder them.

use gettextrs::LocaleCategory;

/// The gettext domain of the app (the `.mo` file name).
pub const DOMAIN: &str = "ferrogram";

/// Picks the user's locale and binds the message catalogue. `FERROGRAM_LOCALEDIR`
/// overrides where catalogues are looked for (an uninstalled build).
pub fn init() {
    gettextrs::setlocale(LocaleCategory::LcAll, "");
    let dir = std::env::var("FERROGRAM_LOCALEDIR").unwrap_or_else(|_| "/usr/share/locale".into());
    // A missing catalogue is not an error: the English source strings are shown.
    let _ = gettextrs::bindtextdomain(DOMAIN, dir);
    let _ = gettextrs::bind_textdomain_codeset(DOMAIN, "UTF-8");
    let _ = gettextrs::textdomain(DOMAIN);
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

    #[test]
    fn untranslated_text_passes_through() {
        assert_eq!(tr_args("Hello {name}", &[("name", "Ada")]), "Hello Ada");
        assert_eq!(trn("{n} chat", "{n} chats", 2, &[]), "2 chats");
        assert_eq!(trn("{n} chat", "{n} chats", 1, &[]), "1 chat");
    }
}
