//! Times and dates as the chat list, bubbles, day separators and the chat
//! header show them, in the local time zone. Pure functions over
//! milliseconds since the epoch (the protocol's unit) and a given "now".

use gtk::glib;

use crate::i18n::{tr, tr_args, trn};

fn local(ms: i64) -> Option<glib::DateTime> {
    glib::DateTime::from_unix_local(ms.div_euclid(1000)).ok()
}

fn fmt(ms: i64, pattern: &str) -> String {
    local(ms)
        .and_then(|d| d.format(pattern).ok())
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Days since the epoch in local time: equal for two times on the same
/// calendar day.
pub fn local_day(ms: i64) -> i64 {
    local(ms).map_or(0, |d| {
        let offset_secs = d.utc_offset().as_seconds();
        (ms.div_euclid(1000) + offset_secs).div_euclid(86_400)
    })
}

/// "14:05": the time in a bubble.
pub fn time_of_day(ms: i64) -> String {
    fmt(ms, "%H:%M")
}

/// The chat list's time: the time today, the weekday within a week, else the date.
pub fn list_time(ms: i64, now_ms: i64) -> String {
    if ms <= 0 {
        return String::new();
    }
    let days = local_day(now_ms) - local_day(ms);
    if days <= 0 {
        time_of_day(ms)
    } else if days < 7 {
        fmt(ms, "%a")
    } else {
        fmt(ms, "%x")
    }
}

/// A day separator's text: "Today", "Yesterday", "Monday", "3 March" or
/// "3 March 2023".
pub fn day_label(ms: i64, now_ms: i64) -> String {
    let days = local_day(now_ms) - local_day(ms);
    match days {
        0 => tr("Today"),
        1 => tr("Yesterday"),
        2..=6 => fmt(ms, "%A"),
        _ if fmt(ms, "%Y") == fmt(now_ms, "%Y") => fmt(ms, "%e %B").trim().to_owned(),
        _ => fmt(ms, "%e %B %Y").trim().to_owned(),
    }
}

/// The header's presence line for a contact.
pub fn presence(online: bool, last_seen_ms: i64, now_ms: i64) -> String {
    if online {
        return tr("online");
    }
    if last_seen_ms <= 0 {
        return tr("last seen a long time ago");
    }
    let minutes = (now_ms - last_seen_ms).max(0) / 60_000;
    if minutes < 1 {
        return tr("last seen just now");
    }
    if minutes < 60 {
        return trn(
            "last seen {n} minute ago",
            "last seen {n} minutes ago",
            minutes as u32,
            &[],
        );
    }
    let time = time_of_day(last_seen_ms);
    match local_day(now_ms) - local_day(last_seen_ms) {
        0 => tr_args("last seen today at {time}", &[("time", &time)]),
        1 => tr_args("last seen yesterday at {time}", &[("time", &time)]),
        _ => tr_args("last seen on {date}", &[("date", &fmt(last_seen_ms, "%x"))]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;

    /// Noon local time on some day, so +-hours stay on the same day.
    fn noon() -> i64 {
        let d = glib::DateTime::from_local(2024, 5, 15, 12, 0, 0.0).unwrap();
        d.to_unix() * 1000
    }

    #[test]
    fn same_day_and_next_day() {
        let now = noon();
        assert_eq!(local_day(now), local_day(now - 2 * HOUR));
        assert_eq!(local_day(now) - 1, local_day(now - DAY));
        assert_eq!(day_label(now - HOUR, now), "Today");
        assert_eq!(day_label(now - DAY, now), "Yesterday");
        assert!(day_label(now - 400 * DAY, now).len() > 6);
        assert_eq!(time_of_day(now), "12:00");
        assert_eq!(list_time(now - HOUR, now), "11:00");
        assert_eq!(list_time(0, now), "");
    }

    #[test]
    fn presence_lines() {
        let now = noon();
        assert_eq!(presence(true, 0, now), "online");
        assert_eq!(presence(false, now - 10_000, now), "last seen just now");
        assert_eq!(
            presence(false, now - 5 * 60_000, now),
            "last seen 5 minutes ago"
        );
        assert_eq!(
            presence(false, now - 2 * HOUR, now),
            "last seen today at 10:00"
        );
        assert_eq!(
            presence(false, now - DAY, now),
            "last seen yesterday at 12:00"
        );
        assert_eq!(presence(false, 0, now), "last seen a long time ago");
    }
}
