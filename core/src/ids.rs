//! Domain ids. Users have numeric ids; sessions have an opaque public id (never
//! the token) so they can be listed and revoked.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Public id of a login session (32 hex chars). Not a secret: the bearer token is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A moment, in milliseconds since the Unix epoch: a plain JSON number on
/// the wire and an INTEGER in SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch (also "unknown" where a zero stood for it).
    pub const EPOCH: Timestamp = Timestamp(0);

    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Now, by the system clock (the epoch if the clock is before it).
    pub fn now() -> Self {
        Self(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        )
    }

    /// `millis` later (earlier if negative), saturating.
    #[must_use]
    pub const fn saturating_add_ms(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// `millis` earlier, saturating.
    #[must_use]
    pub const fn saturating_sub_ms(self, millis: i64) -> Self {
        Self(self.0.saturating_sub(millis))
    }

    /// Milliseconds from `earlier` to `self` (negative if `earlier` is
    /// later), saturating.
    pub const fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(feature = "rusqlite")]
impl rusqlite::ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

#[cfg(feature = "rusqlite")]
impl rusqlite::types::FromSql for Timestamp {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        i64::column_result(value).map(Self)
    }
}

/// A chat (direct or group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChatId(pub i64);

impl std::fmt::Display for ChatId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Position in a chat's event log. Starts at 1 and only grows; 0 means "nothing yet".
/// A plain JSON number on the wire and an INTEGER in SQLite.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(i64);

impl Seq {
    /// Before the first event of every chat ("nothing yet").
    pub const ZERO: Seq = Seq(0);
    /// Above every seq (an open upper bound).
    pub const MAX: Seq = Seq(i64::MAX);

    pub const fn new(seq: i64) -> Self {
        Self(seq)
    }

    /// The number itself (for a counter or a format that is not serde's).
    pub const fn get(self) -> i64 {
        self.0
    }

    /// The seq after this one.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// The seqs after this one, in order (`next()`, its `next()`, ...).
    pub fn following(self) -> impl Iterator<Item = Seq> {
        (self.0..i64::MAX).map(|n| Self(n + 1))
    }
}

impl std::fmt::Display for Seq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Seq {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

#[cfg(feature = "rusqlite")]
impl rusqlite::ToSql for Seq {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

#[cfg(feature = "rusqlite")]
impl rusqlite::types::FromSql for Seq {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        i64::column_result(value).map(Self)
    }
}

/// The live connection (a WebSocket) a command arrived on, as the server's
/// gateway numbers them: a committed message is not pushed back to the
/// connection that sent it (its `reply` carries the seq already). Never
/// reused within a process; not part of the wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seq_is_a_plain_json_number() {
        assert_eq!(serde_json::to_string(&Seq::new(41)).unwrap(), "41");
        assert_eq!(serde_json::from_str::<Seq>("41").unwrap(), Seq::new(41));
        assert!(serde_json::from_str::<Seq>("\"41\"").is_err());
        assert_eq!(
            serde_json::to_string(&Some(Seq::new(7))).unwrap(),
            serde_json::to_string(&Some(7i64)).unwrap()
        );
        assert_eq!("12".parse::<Seq>().unwrap(), Seq::new(12));
        assert_eq!(Seq::new(12).to_string(), "12");
    }

    #[test]
    fn seqs_order_as_their_numbers() {
        assert!(Seq::ZERO < Seq::new(1));
        assert!(Seq::new(1) < Seq::new(2) && Seq::new(2) < Seq::MAX);
        assert_eq!(Seq::default(), Seq::ZERO);
        assert_eq!(Seq::new(4).next(), Seq::new(5));
        let after: Vec<Seq> = Seq::new(4).following().take(3).collect();
        assert_eq!(after, [Seq::new(5), Seq::new(6), Seq::new(7)]);
        assert_eq!(Seq::MAX.following().next(), None);
    }

    #[test]
    fn a_timestamp_is_a_plain_json_number_of_milliseconds() {
        let at = Timestamp::from_millis(1_700_000_000_123);
        assert_eq!(serde_json::to_string(&at).unwrap(), "1700000000123");
        assert_eq!(
            serde_json::from_str::<Timestamp>("1700000000123").unwrap(),
            at
        );
        assert!(serde_json::from_str::<Timestamp>("\"1700000000123\"").is_err());
        assert_eq!(
            serde_json::to_string(&Some(at)).unwrap(),
            serde_json::to_string(&Some(1_700_000_000_123i64)).unwrap()
        );
        assert_eq!(at.as_millis(), 1_700_000_000_123);
        assert_eq!(at.to_string(), "1700000000123");
    }

    #[test]
    fn timestamps_order_and_move_by_milliseconds() {
        let at = Timestamp::from_millis(10_000);
        assert!(Timestamp::EPOCH < at);
        assert_eq!(at.saturating_add_ms(500), Timestamp::from_millis(10_500));
        assert_eq!(at.saturating_sub_ms(500), Timestamp::from_millis(9_500));
        assert_eq!(at.saturating_add_ms(500).millis_since(at), 500);
        assert_eq!(at.millis_since(at.saturating_add_ms(500)), -500);
        assert_eq!(at.saturating_add_ms(i64::MAX).as_millis(), i64::MAX);
        assert_eq!(Timestamp::from_millis(i64::MIN).millis_since(at), i64::MIN);
        // after 2020-09-13 (1.6e12 ms), before the year 2200
        let now = Timestamp::now().as_millis();
        assert!(
            (1_600_000_000_000..7_258_118_400_000).contains(&now),
            "{now}"
        );
        assert!(Timestamp::now() >= Timestamp::from_millis(now));
    }

    #[cfg(feature = "rusqlite")]
    #[test]
    fn a_timestamp_is_an_sqlite_integer() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let at = Timestamp::from_millis(1_700_000_000_123);
        let (kind, back): (String, Timestamp) = conn
            .query_row("SELECT typeof(?1), ?1", [at], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((kind.as_str(), back), ("integer", at));
    }

    #[cfg(feature = "rusqlite")]
    #[test]
    fn a_seq_is_an_sqlite_integer() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let (kind, back): (String, Seq) = conn
            .query_row("SELECT typeof(?1), ?1", [Seq::new(1 << 40)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((kind.as_str(), back), ("integer", Seq::new(1 << 40)));
        let raw: Seq = conn.query_row("SELECT 42", [], |r| r.get(0)).unwrap();
        assert_eq!(raw, Seq::new(42));
    }
}
