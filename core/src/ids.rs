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

/// Milliseconds since the Unix epoch, as stored and sent on the wire.
pub type Millis = i64;

/// The current time in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
