//! The chat event log: one row per event, numbered per chat by `seq`.
//!
//! History pages, offline delivery and resume after reconnect all read these
//! rows. Only [`crate::writer`] appends to the log (through [`append`], in its
//! transaction), so every seq is assigned under one lock and only grows.

use crate::StorageError;
use ferrogram_core::crypto::envelope::event_for_reader;
use ferrogram_core::ids::{ChatId, Seq, Timestamp, UserId};
use ferrogram_core::proto::{ChatEvent, Envelope, EventBody};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// The `kind` column of an event body (its serde `type` tag).
pub fn kind_of(body: &EventBody) -> &'static str {
    match body {
        EventBody::Message { .. } => "message",
        EventBody::Edit { .. } => "edit",
        EventBody::Delete { .. } => "delete",
        EventBody::Created { .. } => "created",
        EventBody::MembersAdded { .. } => "members_added",
        EventBody::MemberRemoved { .. } => "member_removed",
        EventBody::MemberLeft { .. } => "member_left",
        EventBody::Renamed { .. } => "renamed",
        EventBody::RoleChanged { .. } => "role_changed",
    }
}

const EVENT_COLUMNS: &str = "chat_id, seq, sender, at, kind, target_seq, client_msg_id, body";

/// "The message `m` was not deleted". It names `chat_events_target` with
/// INDEXED BY: without ANALYZE statistics SQLite prefers the chat's
/// primary-key range, which makes the check cost the whole chat once per
/// message (`query_plans_use_the_indexes` pins this).
const NOT_DELETED: &str = "NOT EXISTS (SELECT 1 FROM chat_events AS d \
     INDEXED BY chat_events_target \
     WHERE d.chat_id = m.chat_id AND d.target_seq = m.seq AND d.kind = 'delete')";

fn event_from_row(row: &Row<'_>) -> Result<ChatEvent, StorageError> {
    Ok(ChatEvent {
        chat_id: ChatId(row.get("chat_id")?),
        seq: row.get("seq")?,
        sender: UserId(row.get("sender")?),
        at: row.get("at")?,
        body: body_from_row(row)?,
    })
}

/// The body column: JSON text (every kind, and messages stored before
/// migration 0005), or for `message` and `edit` the stored envelope in
/// binary, with the client id and the target from their own columns.
fn body_from_row(row: &Row<'_>) -> Result<EventBody, StorageError> {
    const CORRUPT: StorageError = StorageError::Corrupt { column: "body" };
    match row.get_ref("body")? {
        ValueRef::Text(json) => serde_json::from_slice(json).map_err(|_| CORRUPT),
        ValueRef::Blob(stored) => {
            let envelope = Envelope::from_stored(stored).map_err(|_| CORRUPT)?;
            let kind: String = row.get("kind")?;
            match kind.as_str() {
                "message" => Ok(EventBody::Message {
                    client_msg_id: row
                        .get::<_, Option<String>>("client_msg_id")?
                        .ok_or(CORRUPT)?,
                    envelope,
                }),
                "edit" => Ok(EventBody::Edit {
                    target_seq: row.get::<_, Option<Seq>>("target_seq")?.ok_or(CORRUPT)?,
                    envelope,
                }),
                _ => Err(CORRUPT),
            }
        }
        _ => Err(CORRUPT),
    }
}

/// What the body column stores for `body`: the envelope of a message or an
/// edit in binary (its other fields are columns), any other body as JSON.
fn stored_body(body: &EventBody) -> Result<Value, StorageError> {
    const CORRUPT: StorageError = StorageError::Corrupt { column: "body" };
    // These types always serialize; failing here would be a bug.
    match body {
        EventBody::Message { envelope, .. } | EventBody::Edit { envelope, .. } => {
            envelope.to_stored().map(Value::Blob).map_err(|_| CORRUPT)
        }
        _ => serde_json::to_string(body)
            .map(Value::Text)
            .map_err(|_| CORRUPT),
    }
}

fn collect(rows: rusqlite::Rows<'_>) -> Result<Vec<ChatEvent>, StorageError> {
    let mut rows = rows;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        events.push(event_from_row(row)?);
    }
    Ok(events)
}

/// Appends `body` to the chat's log with the next seq and bumps
/// `chats.last_seq`. Must run inside the writer's write transaction: the seq
/// read and the insert are atomic only there.
pub(crate) fn append(
    conn: &Connection,
    chat_id: ChatId,
    sender: UserId,
    at: Timestamp,
    body: EventBody,
) -> Result<ChatEvent, StorageError> {
    append_prepared(conn, chat_id, sender, at, prepare(body)?)
}

/// An event body with what its `body` column will store, so its size is
/// known before anything is written (the storage quota).
pub(crate) struct Prepared {
    body: EventBody,
    stored: Value,
}

impl Prepared {
    /// Bytes of the stored body column.
    pub(crate) fn stored_len(&self) -> usize {
        match &self.stored {
            Value::Blob(bytes) => bytes.len(),
            Value::Text(text) => text.len(),
            _ => 0,
        }
    }
}

pub(crate) fn prepare(body: EventBody) -> Result<Prepared, StorageError> {
    let stored = stored_body(&body)?;
    Ok(Prepared { body, stored })
}

/// [`append`] of a [`prepare`]d body.
pub(crate) fn append_prepared(
    conn: &Connection,
    chat_id: ChatId,
    sender: UserId,
    at: Timestamp,
    prepared: Prepared,
) -> Result<ChatEvent, StorageError> {
    let Prepared { body, stored } = prepared;
    let seq: Seq = conn
        .prepare_cached(
            "UPDATE chats SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
        )?
        .query_row([chat_id.0], |r| r.get(0))?;
    let (client_msg_id, target_seq) = match &body {
        EventBody::Message { client_msg_id, .. } => (Some(client_msg_id.as_str()), None),
        EventBody::Edit {
            target_seq,
            envelope,
        } => (
            Some(envelope.header.client_msg_id.as_str()),
            Some(*target_seq),
        ),
        EventBody::Delete { target_seq } => (None, Some(*target_seq)),
        _ => (None, None),
    };
    conn.prepare_cached(
        "INSERT INTO chat_events (chat_id, seq, sender, at, kind, target_seq, client_msg_id, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        chat_id.0,
        seq,
        sender.0,
        at,
        kind_of(&body),
        target_seq,
        client_msg_id,
        stored
    ])?;
    Ok(ChatEvent {
        chat_id,
        seq,
        sender,
        at,
        body,
    })
}

/// The event at `seq`, if any.
pub fn by_seq(
    conn: &Connection,
    chat_id: ChatId,
    seq: Seq,
) -> Result<Option<ChatEvent>, StorageError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM chat_events WHERE chat_id = ?1 AND seq = ?2"
    ))?;
    let mut rows = stmt.query(params![chat_id.0, seq])?;
    rows.next()?.map(event_from_row).transpose()
}

/// The message or edit `sender` stored with this client id, if any.
pub fn by_client_msg_id(
    conn: &Connection,
    chat_id: ChatId,
    sender: UserId,
    client_msg_id: &str,
) -> Result<Option<ChatEvent>, StorageError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM chat_events \
         WHERE chat_id = ?1 AND sender = ?2 AND client_msg_id = ?3"
    ))?;
    let mut rows = stmt.query(params![chat_id.0, sender.0, client_msg_id])?;
    rows.next()?.map(event_from_row).transpose()
}

/// The delete event of the message at `target_seq`, if it was deleted.
pub fn deletion_of(
    conn: &Connection,
    chat_id: ChatId,
    target_seq: Seq,
) -> Result<Option<ChatEvent>, StorageError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM chat_events INDEXED BY chat_events_target \
         WHERE chat_id = ?1 AND target_seq = ?2 AND kind = 'delete' LIMIT 1"
    ))?;
    let mut rows = stmt.query(params![chat_id.0, target_seq])?;
    rows.next()?.map(event_from_row).transpose()
}

/// Events with `seq > after_seq`, oldest first, at most `limit`: what a
/// client that saw `after_seq` has missed. No membership check: callers
/// clamp `after_seq` to the member's first visible seq (see `history`).
pub fn events_after(
    conn: &Connection,
    chat_id: ChatId,
    after_seq: Seq,
    limit: u32,
) -> Result<Vec<ChatEvent>, StorageError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM chat_events WHERE chat_id = ?1 AND seq > ?2 \
         ORDER BY seq LIMIT ?3"
    ))?;
    let events = collect(stmt.query(params![chat_id.0, after_seq, limit])?)?;
    Ok(events)
}

/// One page of a chat's log for one reader, in the terms of `HistoryRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The first seq the member may see (their `joined_seq`).
    pub first_visible: Seq,
    pub before_seq: Option<Seq>,
    pub after_seq: Option<Seq>,
    pub limit: u32,
    /// JSON bytes the page's events may take together (as the reader
    /// receives them). The page ends before the event that would go over,
    /// but always holds at least one event.
    pub max_bytes: usize,
}

/// Events with `after_seq < seq < before_seq` and `seq >= first_visible`,
/// oldest first, at most `limit` and at most `max_bytes`, each as `reader`
/// receives it ([`event_for_reader`]: a version 2 message holds only the
/// reader's own key wrap). Without `after_seq` the newest such page, with it
/// the oldest page after it. The flag says whether more events remain beyond
/// the page (older ones, or with `after_seq` newer ones).
///
/// Rows are read one at a time and reading stops at the page's end, so a
/// page of big messages never sits in memory beyond `max_bytes`.
pub fn history(
    conn: &Connection,
    chat_id: ChatId,
    reader: UserId,
    query: &HistoryQuery,
) -> Result<(Vec<ChatEvent>, bool), StorageError> {
    let low = query.after_seq.map_or(query.first_visible, |after| {
        after.next().max(query.first_visible)
    });
    let high = query.before_seq.unwrap_or(Seq::MAX);
    // One row more than asked for tells whether the page is the last one.
    let fetch = i64::from(query.limit) + 1;
    let (order, oldest_first) = if query.after_seq.is_some() {
        ("ASC", true)
    } else {
        ("DESC", false)
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM chat_events \
         WHERE chat_id = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq {order} LIMIT ?4"
    ))?;
    let mut rows = stmt.query(params![chat_id.0, low, high, fetch])?;
    let mut events = Vec::new();
    let mut bytes = 0usize;
    let mut more = false;
    while let Some(row) = rows.next()? {
        if events.len() >= query.limit as usize {
            more = true;
            break;
        }
        let event = event_for_reader(event_from_row(row)?, reader);
        // The comma between two events of the JSON array counts too.
        let size = crate::json_len(&event) + 1;
        if !events.is_empty() && bytes + size > query.max_bytes {
            more = true;
            break;
        }
        bytes += size;
        events.push(event);
    }
    if !oldest_first {
        events.reverse();
    }
    Ok((events, more))
}

/// The time of the newest message (not deleted) at or after `first_visible`
/// sent at or before `as_of`: the order of `chat.list`.
pub fn last_message_at(
    conn: &Connection,
    chat_id: ChatId,
    first_visible: Seq,
    as_of: Timestamp,
) -> Result<Option<Timestamp>, StorageError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT m.at FROM chat_events AS m \
         WHERE m.chat_id = ?1 AND m.kind = 'message' AND m.seq >= ?2 AND m.at <= ?3 \
         AND {NOT_DELETED} ORDER BY m.seq DESC LIMIT 1"
    ))?;
    Ok(stmt
        .query_row(params![chat_id.0, first_visible, as_of], |r| r.get(0))
        .optional()?)
}

/// The newest message (not deleted) at or after `first_visible`: the preview
/// of `chat.list`.
pub fn last_message(
    conn: &Connection,
    chat_id: ChatId,
    first_visible: Seq,
) -> Result<Option<ChatEvent>, StorageError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM chat_events AS m \
         WHERE m.chat_id = ?1 AND m.kind = 'message' AND m.seq >= ?2 AND {NOT_DELETED} \
         ORDER BY m.seq DESC LIMIT 1"
    ))?;
    let mut rows = stmt.query(params![chat_id.0, first_visible])?;
    rows.next()?.map(event_from_row).transpose()
}

/// Messages after `read_seq` that `user` did not send and nobody deleted.
pub fn unread_count(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
    read_seq: Seq,
) -> Result<u32, StorageError> {
    let count: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM chat_events AS m \
             WHERE m.chat_id = ?1 AND m.seq > ?3 AND m.kind = 'message' AND m.sender != ?2 \
             AND {NOT_DELETED}"
        ))?
        .query_row(params![chat_id.0, user.0, read_seq], |r| r.get(0))?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// The distinct senders of the messages in `(after, upto]`, sorted: whom a
/// delivery receipt covering that range concerns.
pub fn message_senders(
    conn: &Connection,
    chat_id: ChatId,
    after: Seq,
    upto: Seq,
) -> Result<Vec<UserId>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT sender FROM chat_events \
         WHERE chat_id = ?1 AND seq > ?2 AND seq <= ?3 AND kind = 'message' ORDER BY sender",
    )?;
    let senders = stmt.query_map(params![chat_id.0, after, upto], |r| r.get(0).map(UserId))?;
    Ok(senders.collect::<Result<_, _>>()?)
}

/// Number of events stored for a chat (tests and diagnostics).
pub fn count(conn: &Connection, chat_id: ChatId) -> Result<i64, StorageError> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM chat_events WHERE chat_id = ?1")?
        .query_row([chat_id.0], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_storage;
    use crate::writer::tests::{add_users, allow_all, change, group, message};
    use crate::writer::{Change, EventWriter, WriteContext, WriterConfig};

    fn page(
        storage: &crate::Storage,
        chat: ChatId,
        first_visible: i64,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> (Vec<i64>, bool) {
        let query = HistoryQuery {
            first_visible: Seq::new(first_visible),
            before_seq: before_seq.map(Seq::new),
            after_seq: after_seq.map(Seq::new),
            limit,
            max_bytes: usize::MAX,
        };
        let (events, more) = storage
            .with_conn(|conn| history(conn, chat, UserId(0), &query))
            .unwrap();
        (events.iter().map(|e| e.seq.get()).collect(), more)
    }

    #[tokio::test]
    async fn envelopes_are_stored_in_binary_and_read_back_whole() {
        let (_dir, storage) = temp_storage();
        let writer =
            EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
        let u = add_users(&storage, 2);
        let chat = group(&writer, u[0], &u).await;
        let sent = writer
            .append(message(chat, u[1], "m1", &u), WriteContext::default())
            .await
            .unwrap();
        let mut edit = crate::writer::tests::envelope(chat, u[1], "e1", &u);
        edit.body = ferrogram_core::b64::B64(vec![7; 100]);
        writer
            .append(
                change(
                    chat,
                    u[1],
                    Change::Edit {
                        target_seq: Seq::new(2),
                        envelope: edit.clone(),
                    },
                ),
                WriteContext::default(),
            )
            .await
            .unwrap();

        let (types, stored) = storage
            .with_conn(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT typeof(body) FROM chat_events WHERE chat_id = ?1 ORDER BY seq",
                )?;
                let types = stmt
                    .query_map([chat.0], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                let stored = events_after(conn, chat, Seq::ZERO, 10)?;
                Ok::<_, StorageError>((types, stored))
            })
            .unwrap();
        // created (JSON), message and edit (binary envelopes)
        assert_eq!(types, ["text", "blob", "blob"]);
        assert_eq!(stored[1], sent.events[0]);
        assert_eq!(
            stored[2].body,
            EventBody::Edit {
                target_seq: Seq::new(2),
                envelope: edit
            }
        );
        // the retry check finds a binary row too
        let again = writer
            .append(message(chat, u[1], "m1", &u), WriteContext::default())
            .await
            .unwrap();
        assert!(again.duplicate);
        assert_eq!(again.events, sent.events);
    }

    #[tokio::test]
    async fn json_rows_from_before_and_broken_rows() {
        let (_dir, storage) = temp_storage();
        let writer =
            EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
        let u = add_users(&storage, 2);
        let chat = group(&writer, u[0], &u).await;
        let sent = writer
            .append(message(chat, u[1], "m1", &u), WriteContext::default())
            .await
            .unwrap();
        let json = serde_json::to_string(&sent.events[0].body).unwrap();
        let set_body = |body: rusqlite::types::Value| {
            storage
                .with_conn(|conn| {
                    conn.execute(
                        "UPDATE chat_events SET body = ?2 WHERE chat_id = ?1 AND seq = 2",
                        params![chat.0, body],
                    )
                    .map_err(StorageError::from)
                })
                .unwrap();
        };
        // A message stored before migration 0005 (JSON text) reads the same.
        set_body(json.into());
        let read = storage
            .with_conn(|conn| by_seq(conn, chat, Seq::new(2)))
            .unwrap();
        assert_eq!(read.as_ref(), Some(&sent.events[0]));
        // A damaged binary row is an error, not a panic or a wrong message.
        for broken in [vec![1u8, 0xff], vec![9u8; 40], Vec::new()] {
            set_body(broken.into());
            let err = storage
                .with_conn(|conn| by_seq(conn, chat, Seq::new(2)))
                .unwrap_err();
            assert!(
                matches!(err, StorageError::Corrupt { column: "body" }),
                "{err:?}"
            );
        }
    }

    /// A message to `members` whose body is `body_bytes` long.
    fn big_message(
        chat: ChatId,
        sender: UserId,
        id: &str,
        members: &[UserId],
        body_bytes: usize,
    ) -> crate::writer::AppendRequest {
        let mut envelope = crate::writer::tests::envelope(chat, sender, id, members);
        envelope.body = ferrogram_core::b64::B64(vec![1; body_bytes]);
        change(
            chat,
            sender,
            crate::writer::Change::Message {
                client_msg_id: id.to_owned(),
                envelope,
            },
        )
    }

    #[tokio::test]
    async fn history_gives_the_reader_only_its_own_wrap_and_stops_before_the_byte_cap() {
        let (_dir, storage) = temp_storage();
        let writer =
            EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
        let u = add_users(&storage, 100);
        let chat = group(&writer, u[0], &u).await;
        for n in 0..6 {
            writer
                .append(
                    big_message(chat, u[n], &format!("m{n}"), &u, 20_000),
                    WriteContext::default(),
                )
                .await
                .unwrap();
        }
        let read = |after_seq: Option<i64>, max_bytes: usize| {
            let query = HistoryQuery {
                first_visible: Seq::new(1),
                before_seq: None,
                after_seq: after_seq.map(Seq::new),
                limit: 200,
                max_bytes,
            };
            storage
                .with_conn(|conn| history(conn, chat, u[42], &query))
                .unwrap()
        };
        // Everything: the reader's own wrap and its proof, nobody else's.
        let (all, more) = read(Some(0), usize::MAX);
        assert!(!more);
        assert_eq!(all.len(), 7);
        for event in &all[1..] {
            let EventBody::Message { envelope, .. } = &event.body else {
                panic!("{event:?}")
            };
            assert_eq!(envelope.wraps.len(), 1);
            assert_eq!(envelope.wraps[0].user_id, u[42]);
            assert_eq!(envelope.wrap_proof.as_ref().map(|p| p.count), Some(100));
            // ~27 KB of body in base64, not 100 wraps of ~0.6 KB more
            let size = crate::json_len(event);
            assert!((26_000..32_000).contains(&size), "{size}");
        }
        // Room for two messages: forwards the oldest two, more to come.
        let cap = 2 * crate::json_len(&all[2]) + 10;
        let (page, more) = read(Some(1), cap);
        assert_eq!(page.iter().map(|e| e.seq.get()).collect::<Vec<_>>(), [2, 3]);
        assert!(more);
        // Backwards the newest two.
        let (page, more) = read(None, cap);
        assert_eq!(page.iter().map(|e| e.seq.get()).collect::<Vec<_>>(), [6, 7]);
        assert!(more);
        // A cap below one message still gives one, and says there is more.
        let (page, more) = read(Some(1), 10);
        assert_eq!(page.iter().map(|e| e.seq.get()).collect::<Vec<_>>(), [2]);
        assert!(more);
        let (page, more) = read(Some(6), 10);
        assert_eq!(page.iter().map(|e| e.seq.get()).collect::<Vec<_>>(), [7]);
        assert!(!more);
    }

    #[tokio::test]
    async fn history_pages_backwards_and_forwards() {
        let (_dir, storage) = temp_storage();
        let writer =
            EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
        let u = add_users(&storage, 2);
        let chat = group(&writer, u[0], &u).await;
        for n in 0..9 {
            writer
                .append(
                    message(chat, u[n % 2], &format!("m{n}"), &u),
                    WriteContext::default(),
                )
                .await
                .unwrap();
        }
        // seqs 1 (created) to 10
        assert_eq!(
            page(&storage, chat, 1, None, None, 4),
            (vec![7, 8, 9, 10], true)
        );
        assert_eq!(
            page(&storage, chat, 1, Some(7), None, 4),
            (vec![3, 4, 5, 6], true)
        );
        assert_eq!(
            page(&storage, chat, 1, Some(3), None, 4),
            (vec![1, 2], false)
        );
        assert_eq!(
            page(&storage, chat, 1, None, Some(0), 4),
            (vec![1, 2, 3, 4], true)
        );
        assert_eq!(
            page(&storage, chat, 1, None, Some(8), 4),
            (vec![9, 10], false)
        );
        assert_eq!(
            page(&storage, chat, 1, Some(6), Some(2), 10),
            (vec![3, 4, 5], false)
        );
        assert_eq!(
            page(&storage, chat, 1, Some(6), Some(2), 2),
            (vec![3, 4], true)
        );
        assert_eq!(page(&storage, chat, 1, None, Some(10), 4), (vec![], false));
        // a member who joined at seq 6 sees nothing older
        assert_eq!(
            page(&storage, chat, 6, Some(9), None, 10),
            (vec![6, 7, 8], false)
        );
        assert_eq!(
            page(&storage, chat, 6, None, Some(0), 2),
            (vec![6, 7], true)
        );

        let after: Vec<Seq> = storage
            .with_conn(|conn| events_after(conn, chat, Seq::new(7), 2))
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(after, [Seq::new(8), Seq::new(9)]);
        assert_eq!(storage.with_conn(|conn| count(conn, chat)).unwrap(), 10);
    }

    #[test]
    fn query_plans_use_the_indexes() {
        let (_dir, storage) = temp_storage();
        let plan = |sql: &str| -> String {
            storage
                .with_conn(|conn| {
                    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let rows = stmt.query_map(params![1, 2, 3], |r| r.get::<_, String>(3))?;
                    Ok::<_, StorageError>(rows.collect::<Result<Vec<_>, _>>()?.join("; "))
                })
                .unwrap()
        };
        let unread = plan(&format!(
            "SELECT count(*) FROM chat_events AS m WHERE m.chat_id = ?1 AND m.seq > ?3 \
             AND m.sender != ?2 AND {NOT_DELETED}"
        ));
        assert!(
            unread.contains("USING INDEX chat_events_seq (chat_id=? AND seq>?)")
                && unread.contains("USING INDEX chat_events_target (chat_id=? AND target_seq=?)"),
            "{unread}"
        );
        let retry = plan(
            "SELECT seq FROM chat_events WHERE chat_id = ?1 AND sender = ?2 AND client_msg_id = ?3",
        );
        assert!(
            retry.contains("(chat_id=? AND sender=? AND client_msg_id=?)"),
            "{retry}"
        );
        let members = plan("SELECT chat_id FROM chat_members WHERE user_id = ?1 AND ?2 AND ?3");
        assert!(members.contains("chat_members_user"), "{members}");
    }

    #[tokio::test]
    async fn unread_counts_and_the_preview_skip_own_and_deleted_messages() {
        let (_dir, storage) = temp_storage();
        let writer =
            EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
        let u = add_users(&storage, 2);
        let chat = group(&writer, u[0], &u).await;
        let unread = |user: UserId, read_seq| {
            storage
                .with_conn(|conn| unread_count(conn, chat, user, Seq::new(read_seq)))
                .unwrap()
        };
        let preview = || {
            storage
                .with_conn(|conn| last_message(conn, chat, Seq::new(1)))
                .unwrap()
                .map(|e| e.seq.get())
        };
        assert_eq!(preview(), None);
        writer
            .append(message(chat, u[0], "a", &u), WriteContext::default())
            .await
            .unwrap(); // 2
        writer
            .append(message(chat, u[0], "b", &u), WriteContext::default())
            .await
            .unwrap(); // 3
        writer
            .append(message(chat, u[1], "c", &u), WriteContext::default())
            .await
            .unwrap(); // 4
        writer
            .append(
                change(chat, u[0], Change::Rename { title: "x".into() }),
                WriteContext::default(),
            )
            .await
            .unwrap(); // 5
        assert_eq!(unread(u[1], 1), 2);
        assert_eq!(unread(u[1], 2), 1);
        assert_eq!(unread(u[0], 1), 1);
        assert_eq!(preview(), Some(4));
        writer
            .append(
                change(
                    chat,
                    u[1],
                    Change::Delete {
                        target_seq: Seq::new(4),
                    },
                ),
                WriteContext::default(),
            )
            .await
            .unwrap();
        writer
            .append(
                change(
                    chat,
                    u[0],
                    Change::Delete {
                        target_seq: Seq::new(3),
                    },
                ),
                WriteContext::default(),
            )
            .await
            .unwrap();
        assert_eq!(unread(u[1], 1), 1);
        assert_eq!(unread(u[0], 1), 0);
        assert_eq!(preview(), Some(2));
        assert_eq!(
            storage
                .with_conn(|conn| last_message(conn, chat, Seq::new(3)))
                .unwrap(),
            None
        );
    }
}
