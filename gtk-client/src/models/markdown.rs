//! Chat Markdown (the subset people type: bold, italic, strikethrough, inline
//! code, code blocks, links, quotes) turned into Pango markup for a `GtkLabel`.
//!
//! Every piece of the source reaches the output escaped, and every tag that is
//! opened is closed at the same level, so no input (hostile or just unlucky)
//! can break the markup or inject attributes. Unmatched delimiters are shown
//! as typed. The work is close to linear in the input, and very long messages
//! are cut, so a huge message cannot freeze the window.

use std::fmt::Write as _;

/// Longest source rendered; the rest is cut with an ellipsis. A label with
/// more text than this takes noticeable time to lay out.
pub const MAX_RENDERED_CHARS: usize = 32 * 1024;

/// Nesting deeper than this is shown as plain text (cannot happen with the
/// delimiters below, but the recursion must be bounded whatever the input).
const MAX_DEPTH: u8 = 8;

/// The bar drawn in front of a quoted line (inherits the text colour, dimmed).
const QUOTE_BAR: &str = "<span alpha=\"50%\">\u{258e}</span> ";

/// Renders Markdown `source` as Pango markup (with `<a href>` links, which
/// `GtkLabel` understands on top of Pango's own tags).
pub fn to_pango_markup(source: &str) -> String {
    let (text, cut) = cut_to_limit(source);
    let mut out = String::with_capacity(text.len() + text.len() / 4 + 16);
    let lines: Vec<&str> = text.split('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        if i > 0 {
            out.push('\n');
        }
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(after_fence) = trimmed.strip_prefix("```") {
            if let Some(end) = after_fence.find("```") {
                // ```one line of code``` on a single line.
                push_code(&mut out, &after_fence[..end]);
                inline(&after_fence[end + 3..], &mut out, 0, false);
                i += 1;
                continue;
            }
            // A fenced block: the rest of the opening line names a language
            // (ignored); it runs to the closing fence or to the end.
            let mut code: Vec<&str> = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                code.push(lines[i]);
                i += 1;
            }
            push_code(&mut out, &code.join("\n"));
            i += 1; // the closing fence
            continue;
        }
        if let Some(quoted) = trimmed.strip_prefix('>') {
            out.push_str(QUOTE_BAR);
            let quoted = quoted.strip_prefix(' ').unwrap_or(quoted);
            out.push_str("<i>");
            inline(quoted, &mut out, 0, false);
            out.push_str("</i>");
        } else {
            inline(line, &mut out, 0, false);
        }
        i += 1;
    }
    if cut {
        out.push('\u{2026}');
    }
    out
}

/// Escapes text for Pango markup (text and attribute values alike). Control
/// characters other than newline and tab, which the markup parser refuses, and
/// the Unicode non-characters become U+FFFD.
pub fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() || matches!(c, '\u{fffe}' | '\u{ffff}') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

/// [`escape`] into a new string.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape(text, &mut out);
    out
}

/// One line for the chat list: the first non-empty line without the most
/// common Markdown marks, at most `max_chars` long.
pub fn plain_preview(source: &str, max_chars: usize) -> String {
    let line = source
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("```"))
        .unwrap_or("");
    let line = line.strip_prefix('>').map_or(line, str::trim_start);
    let cleaned = markup_to_text(&to_pango_markup(line));
    let mut preview: String = cleaned
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect();
    if cleaned.chars().count() > max_chars {
        preview.push('\u{2026}');
    }
    preview
}

/// The text a markup string shows: tags dropped, entities decoded. Exact for
/// [`to_pango_markup`]'s output, where `<` only ever starts a tag.
fn markup_to_text(markup: &str) -> String {
    let mut text = String::with_capacity(markup.len());
    let mut in_tag = false;
    for c in markup.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    // The quote bar of a quoted line is not part of the words.
    let text = text.trim_start_matches(['\u{258e}', ' ']);
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// True when `text` is nothing but a few emoji (shown large, without a
/// bubble-sized font), as in Telegram.
pub fn is_emoji_only(text: &str) -> bool {
    const MAX_EMOJI: usize = 3;
    let mut count = 0;
    let mut after_joiner = false;
    let mut half_flag = false;
    for c in text.trim().chars() {
        if is_regional_indicator(c) {
            // Two regional indicators make one flag.
            if !half_flag {
                count += 1;
            }
            half_flag = !half_flag;
            after_joiner = false;
            continue;
        }
        half_flag = false;
        if c == '\u{200d}' {
            after_joiner = true;
            continue;
        }
        if is_emoji_modifier(c) || c.is_whitespace() {
            // Modifiers belong to the emoji before them.
        } else if is_emoji_base(c) {
            // After a zero-width joiner it is part of the same emoji.
            if !after_joiner {
                count += 1;
            }
        } else {
            return false;
        }
        after_joiner = false;
    }
    (1..=MAX_EMOJI).contains(&count)
}

fn is_regional_indicator(c: char) -> bool {
    ('\u{1f1e6}'..='\u{1f1ff}').contains(&c)
}

/// Characters that are an emoji on their own (the Unicode emoji blocks and the
/// older symbols that are usually drawn as emoji).
fn is_emoji_base(c: char) -> bool {
    matches!(c,
        '\u{1f000}'..='\u{1faff}'
        | '\u{2600}'..='\u{27bf}'
        | '\u{2300}'..='\u{23ff}'
        | '\u{2b00}'..='\u{2bff}'
        | '\u{2190}'..='\u{21ff}'
        | '\u{3030}' | '\u{303d}' | '\u{3297}' | '\u{3299}'
        | '\u{00a9}' | '\u{00ae}' | '\u{203c}' | '\u{2049}' | '\u{2122}' | '\u{2139}')
}

/// Joiners, variation selectors, skin tones, keycaps and tags: parts of an
/// emoji sequence that are not an emoji themselves.
fn is_emoji_modifier(c: char) -> bool {
    matches!(c,
        '\u{fe0e}' | '\u{fe0f}' | '\u{20e3}'
        | '\u{1f3fb}'..='\u{1f3ff}'
        | '\u{e0020}'..='\u{e007f}')
}

fn cut_to_limit(source: &str) -> (&str, bool) {
    match source.char_indices().nth(MAX_RENDERED_CHARS) {
        Some((byte, _)) => (&source[..byte], true),
        None => (source, false),
    }
}

fn push_code(out: &mut String, code: &str) {
    out.push_str("<tt>");
    escape(code, out);
    out.push_str("</tt>");
}

/// The paired inline delimiters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pair {
    BoldStars,
    BoldUnderscores,
    ItalicStar,
    ItalicUnderscore,
    Strike,
}

impl Pair {
    const COUNT: usize = 5;

    fn delimiter(self) -> &'static str {
        match self {
            Pair::BoldStars => "**",
            Pair::BoldUnderscores => "__",
            Pair::ItalicStar => "*",
            Pair::ItalicUnderscore => "_",
            Pair::Strike => "~~",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Pair::BoldStars | Pair::BoldUnderscores => "b",
            Pair::ItalicStar | Pair::ItalicUnderscore => "i",
            Pair::Strike => "s",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Underscores only count at word edges, so `snake_case_names` stay as typed.
    fn word_edges_only(self) -> bool {
        matches!(self, Pair::BoldUnderscores | Pair::ItalicUnderscore)
    }
}

/// Renders one line (or part of one) of inline Markdown into `out`.
fn inline(s: &str, out: &mut String, depth: u8, in_link: bool) {
    if depth > MAX_DEPTH {
        escape(s, out);
        return;
    }
    let bytes = s.as_bytes();
    // Delimiters known to have no closer in the rest of this segment: later
    // openers of the same kind need not search again (keeps the work linear).
    let mut no_closer = [false; Pair::COUNT];
    let mut no_link_end = false;
    let mut plain_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        let consumed = match bytes[i] {
            b'`' => s[i + 1..].find('`').filter(|n| *n > 0).map(|n| {
                escape(&s[plain_from..i], out);
                push_code(out, &s[i + 1..i + 1 + n]);
                n + 2
            }),
            b'*' | b'_' | b'~' => {
                let pair = match (bytes[i], bytes.get(i + 1)) {
                    (b'*', Some(b'*')) => Some(Pair::BoldStars),
                    (b'_', Some(b'_')) => Some(Pair::BoldUnderscores),
                    (b'~', Some(b'~')) => Some(Pair::Strike),
                    (b'*', _) => Some(Pair::ItalicStar),
                    (b'_', _) => Some(Pair::ItalicUnderscore),
                    _ => None,
                };
                match pair {
                    Some(pair) if !no_closer[pair.index()] => {
                        if let Some(close) = find_closer(s, i, pair) {
                            escape(&s[plain_from..i], out);
                            let len = pair.delimiter().len();
                            let _ = write!(out, "<{}>", pair.tag());
                            inline(&s[i + len..close], out, depth + 1, in_link);
                            let _ = write!(out, "</{}>", pair.tag());
                            Some(close + len - i)
                        } else {
                            if opens(s, i, pair) {
                                no_closer[pair.index()] = true;
                            }
                            None
                        }
                    }
                    _ => None,
                }
            }
            b'[' if !in_link && !no_link_end => {
                link(s, i, &mut no_link_end).map(|(text, url, end)| {
                    escape(&s[plain_from..i], out);
                    push_link_open(out, url);
                    if text.trim().is_empty() {
                        escape(url, out);
                    } else {
                        inline(text, out, depth + 1, true);
                    }
                    out.push_str("</a>");
                    end - i
                })
            }
            b'h' | b'H' if !in_link && at_word_start(s, i) => bare_url(&s[i..]).map(|url| {
                escape(&s[plain_from..i], out);
                push_link_open(out, url);
                escape(url, out);
                out.push_str("</a>");
                url.len()
            }),
            _ => None,
        };
        match consumed {
            Some(n) => {
                i += n;
                plain_from = i;
            }
            // Only ASCII bytes are matched above, so every slice starts on a
            // character boundary even though `i` steps through bytes.
            None => i += 1,
        }
    }
    escape(&s[plain_from..], out);
}

/// Length of the run of `b` starting at `from`.
fn run_len(bytes: &[u8], from: usize, b: u8) -> usize {
    bytes[from..].iter().take_while(|x| **x == b).count()
}

/// True when the delimiter at `i` can open: followed by a non-space, and for
/// underscores not preceded by a letter or digit.
fn opens(s: &str, i: usize, pair: Pair) -> bool {
    let len = pair.delimiter().len();
    let next = s[i + len..].chars().next();
    let prev = s[..i].chars().next_back();
    match next {
        Some(c) if !c.is_whitespace() => {
            !(pair.word_edges_only() && prev.is_some_and(char::is_alphanumeric))
        }
        _ => false,
    }
}

/// The byte index of the delimiter that closes the one at `open`, if any: the
/// first one after a non-empty, non-space-ended span (for single `*`, not a
/// part of `**`; for underscores, not followed by a letter or digit).
fn find_closer(s: &str, open: usize, pair: Pair) -> Option<usize> {
    if !opens(s, open, pair) {
        return None;
    }
    let delim = pair.delimiter();
    let bytes = s.as_bytes();
    let mut from = open + delim.len();
    while let Some(rel) = s[from..].find(delim) {
        let j = from + rel;
        let first = delim.as_bytes()[0];
        // A single `*` or `_` that is part of a double one is not a closer;
        // skip the whole run.
        if delim.len() == 1 && bytes.get(j + 1) == Some(&first) {
            from = j + run_len(bytes, j, first);
            continue;
        }
        // `***` closing both bold and italic: bold takes the last two stars.
        let j = if delim.len() == 2 {
            j + run_len(bytes, j, first) - 2
        } else {
            j
        };
        let before = s[..j].chars().next_back();
        let after = s[j + delim.len()..].chars().next();
        let content_ok = j > open + delim.len() && before.is_some_and(|c| !c.is_whitespace());
        let edge_ok = !(pair.word_edges_only() && after.is_some_and(char::is_alphanumeric));
        if content_ok && edge_ok {
            return Some(j);
        }
        from = j + delim.len();
    }
    None
}

/// `[text](url)` at `open`: the text, the URL and the byte index after `)`.
/// Only web and mail links are made clickable.
/// Sets `no_end` when no later `[` can be a link either (no `]` or `)` follows).
fn link<'a>(s: &'a str, open: usize, no_end: &mut bool) -> Option<(&'a str, &'a str, usize)> {
    let Some(rel) = s[open + 1..].find(']') else {
        *no_end = true;
        return None;
    };
    let close_text = open + 1 + rel;
    let rest = &s[close_text + 1..];
    let after_paren = rest.strip_prefix('(')?;
    let Some(close_url) = after_paren.find(')') else {
        *no_end = true;
        return None;
    };
    let url = after_paren[..close_url].trim();
    if !is_allowed_url(url) || url.chars().any(char::is_whitespace) {
        return None;
    }
    let text = &s[open + 1..close_text];
    Some((text, url, close_text + 1 + 1 + close_url + 1))
}

fn is_allowed_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("https://") && url.len() > 8)
        || (lower.starts_with("http://") && url.len() > 7)
        || (lower.starts_with("mailto:") && url.len() > 7)
}

fn at_word_start(s: &str, i: usize) -> bool {
    s[..i]
        .chars()
        .next_back()
        .is_none_or(|c| !c.is_alphanumeric())
}

/// A bare `http(s)://...` address at the start of `s`, without trailing
/// punctuation that belongs to the sentence.
fn bare_url(s: &str) -> Option<&str> {
    let scheme = if s.get(..8)?.eq_ignore_ascii_case("https://") {
        8
    } else if s.get(..7)?.eq_ignore_ascii_case("http://") {
        7
    } else {
        return None;
    };
    let end = s
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '`'))
        .map_or(s.len(), |(i, _)| i);
    let mut url = &s[..end];
    let opening = url.matches('(').count();
    let mut closing = url.matches(')').count();
    // Trailing sentence punctuation, and closing parentheses that close
    // something outside the address, are not part of it. (All ASCII.)
    while let Some(last) = url.bytes().next_back() {
        match last {
            b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b'*' | b'_' | b'~' => {}
            b')' if closing > opening => closing -= 1,
            _ => break,
        }
        url = &url[..url.len() - 1];
    }
    (url.len() > scheme).then_some(url)
}

fn push_link_open(out: &mut String, url: &str) {
    out.push_str("<a href=\"");
    escape(url, out);
    out.push_str("\">");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pango itself must accept the output. `GtkLabel` handles `<a>` before
    /// Pango sees the text, so links are checked here and then replaced by a
    /// `<span>` for Pango.
    fn assert_valid_markup(markup: &str) {
        let mut for_pango = String::with_capacity(markup.len());
        let mut rest = markup;
        while let Some(start) = rest.find("<a href=\"") {
            for_pango.push_str(&rest[..start]);
            let after = &rest[start + 9..];
            let end = after.find("\">").expect("unterminated href");
            let href = &after[..end];
            assert!(
                !href.contains(['"', '<', '>']),
                "raw quote or bracket in href {href:?}"
            );
            for_pango.push_str("<span>");
            rest = &after[end + 2..];
        }
        for_pango.push_str(rest);
        let for_pango = for_pango.replace("</a>", "</span>");
        if let Err(e) = gtk::pango::parse_markup(&for_pango, '\0') {
            panic!(
                "invalid markup ({e}): {}",
                markup.chars().take(300).collect::<String>()
            );
        }
    }

    fn render(source: &str) -> String {
        let markup = to_pango_markup(source);
        assert_valid_markup(&markup);
        markup
    }

    #[test]
    fn plain_text_is_escaped() {
        assert_eq!(render("a < b & c > d"), "a &lt; b &amp; c &gt; d");
        assert_eq!(render("<b>not bold</b>"), "&lt;b&gt;not bold&lt;/b&gt;");
        assert_eq!(
            render("\"quoted\" 'single'"),
            "&quot;quoted&quot; &#39;single&#39;"
        );
        assert_eq!(render("&amp;"), "&amp;amp;");
    }

    #[test]
    fn emphasis() {
        assert_eq!(render("**bold**"), "<b>bold</b>");
        assert_eq!(render("__bold__"), "<b>bold</b>");
        assert_eq!(render("*it* and _it_"), "<i>it</i> and <i>it</i>");
        assert_eq!(render("~~gone~~"), "<s>gone</s>");
        assert_eq!(
            render("**bold *and italic***"),
            "<b>bold <i>and italic</i></b>"
        );
        assert_eq!(
            render("*italic **bold** inside*"),
            "<i>italic <b>bold</b> inside</i>"
        );
    }

    #[test]
    fn delimiters_that_do_not_pair_stay_as_typed() {
        assert_eq!(render("**unbalanced"), "**unbalanced");
        assert_eq!(render("2 * 3 * 4"), "2 * 3 * 4");
        assert_eq!(render("snake_case_name"), "snake_case_name");
        assert_eq!(render("** not bold **"), "** not bold **");
        assert_eq!(render("****"), "****");
        assert_eq!(render("~single~"), "~single~");
        assert_eq!(render("a **b"), "a **b");
    }

    #[test]
    fn code_is_literal() {
        assert_eq!(render("`**x** <y>`"), "<tt>**x** &lt;y&gt;</tt>");
        assert_eq!(render("``"), "``");
        assert_eq!(
            render("before\n```rust\nfn main() { a < b }\n```\nafter"),
            "before\n<tt>fn main() { a &lt; b }</tt>\nafter"
        );
        assert_eq!(render("```one line```"), "<tt>one line</tt>");
        assert_eq!(
            render("```\nnever closed **x**"),
            "<tt>never closed **x**</tt>"
        );
    }

    #[test]
    fn links() {
        assert_eq!(
            render("see https://example.org/a_b?x=1&y=2."),
            "see <a href=\"https://example.org/a_b?x=1&amp;y=2\">https://example.org/a_b?x=1&amp;y=2</a>."
        );
        assert_eq!(
            render("[the **docs**](https://example.org/docs)"),
            "<a href=\"https://example.org/docs\">the <b>docs</b></a>"
        );
        assert_eq!(
            render("[x](https://e.org/\"onmouseover=\"bad)"),
            "<a href=\"https://e.org/&quot;onmouseover=&quot;bad\">x</a>"
        );
        assert_eq!(
            render("[x](javascript:alert(1))"),
            "[x](javascript:alert(1))"
        );
        assert_eq!(
            render("(https://e.org/x)"),
            "(<a href=\"https://e.org/x\">https://e.org/x</a>)"
        );
        assert_eq!(render("https://"), "https://");
        assert_eq!(
            render("[a [b](https://e.org)"),
            "<a href=\"https://e.org\">a [b</a>"
        );
    }

    #[test]
    fn quotes() {
        let out = render("> quoted **text**\nreply");
        assert_eq!(out, format!("{QUOTE_BAR}<i>quoted <b>text</b></i>\nreply"));
        assert_eq!(render("a > b"), "a &gt; b");
    }

    #[test]
    fn hostile_input_never_breaks_the_markup() {
        let cases = [
            "<b>",
            "</b>",
            "<span foreground=\"red\">x</span>",
            "&",
            "&#0;",
            "&lt",
            "**<i>**</i>",
            "*_~~`**[](<>)`~~_*",
            "**a *b __c ~~d `e` f~~ g__ h* i**",
            "***bold italic***",
            "_*_*_*_*",
            "[**](https://e.org/**)**",
            "[<b>](https://e.org/\"><b>)",
            "https://e.org/<b>\"'&",
            "> > > nested\n>\n> ```",
            "```\n</tt><b>\n```",
            "\u{0}\u{1}\u{7}\u{1b}[31m\u{7f}\u{fffe}\u{ffff}",
            "a\r\nb\tc",
            "**\n**",
            "`\n`",
        ];
        for case in cases {
            render(case);
        }
        // Every short combination of the special characters.
        let alphabet = [
            '*', '_', '~', '`', '[', ']', '(', ')', '<', '&', 'a', ' ', '>', '\n',
        ];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for d in alphabet {
                        render(&format!("{a}{b}{c}{d}x{d}{c}{b}{a}"));
                    }
                }
            }
        }
    }

    #[test]
    fn huge_input_is_fast_and_cut() {
        let started = std::time::Instant::now();
        for unit in [
            "*",
            "**a",
            "_a",
            "[",
            "[a](https://e.org",
            "`",
            "<&>",
            "*a **b ~~c ",
        ] {
            let source = unit.repeat(200_000 / unit.len());
            let out = render(&source);
            assert!(out.ends_with('\u{2026}'), "not cut");
        }
        let nested = "**a *b ".repeat(5_000);
        render(&nested);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn previews() {
        assert_eq!(plain_preview("\n**Hi** `there`\nsecond", 50), "Hi there");
        assert_eq!(plain_preview("> quoted", 50), "quoted");
        assert_eq!(plain_preview("abcdef", 3), "abc\u{2026}");
        assert_eq!(plain_preview("```\ncode\n```", 50), "code");
        assert_eq!(
            plain_preview("_Hi_ <Ada> &amp; ~~x~~", 50),
            "Hi <Ada> &amp; x"
        );
        assert_eq!(plain_preview("see [docs](https://e.org)", 50), "see docs");
    }

    #[test]
    fn emoji_only() {
        assert!(is_emoji_only("😀"));
        assert!(is_emoji_only(" 🎉🎉 "));
        assert!(is_emoji_only("👍🏽"));
        assert!(is_emoji_only("👨\u{200d}👩\u{200d}👧"));
        assert!(is_emoji_only("❤\u{fe0f}"));
        assert!(is_emoji_only("🇩🇪"));
        assert!(!is_emoji_only("😀😀😀😀"));
        assert!(!is_emoji_only("hi 😀"));
        assert!(!is_emoji_only(""));
        assert!(!is_emoji_only("1"));
        assert!(is_emoji_only("👨\u{200d}👩\u{200d}👧\u{200d}👦🇩🇪🇫🇷"));
        assert!(!is_emoji_only("🇩🇪🇫🇷🇮🇹🇪🇸"));
    }
}
