//! Tests of the writer: batching, durability, refusals, listeners.

use super::*;
use crate::chats::{ChatRecord, Membership};
use crate::invitations::InvitationLimits;
use crate::rules::StorageUse;
use crate::test_support::temp_storage;
use crate::{chats, events, invitations, users};
use ferrogram_core::b64::B64;
use ferrogram_core::ids::{Origin, Seq, Timestamp};
use ferrogram_core::proto::{ChatEvent, Envelope, EventBody, Role};
use ferrogram_core::proto::{EnvelopeHeader, GroupAddPolicy, KeyWrap, ENVELOPE_VERSION};
use ferrogram_core::Refusal;
use std::sync::Mutex;

/// Rules with one fixed verdict. `ALLOW_ALL` allows everything, so these
/// tests see the writer's data mechanics alone (the server's rules are
/// tested in the handlers), and a group whose owner's account is deleted
/// goes to its last remaining member. `Fixed(Some(refusal))` refuses every
/// decision with that refusal and names no successor.
pub(crate) struct Fixed(pub Option<Refusal>);

pub(crate) const ALLOW_ALL: Fixed = Fixed(None);

impl Fixed {
    fn verdict(&self) -> Result<(), Refusal> {
        self.0.map_or(Ok(()), Err)
    }
}

impl ChatRules for Fixed {
    fn may_create_direct(&self, _: UserId, _: UserId) -> Result<(), Refusal> {
        self.verdict()
    }
    fn may_hold(&self, _: usize) -> Result<(), Refusal> {
        self.verdict()
    }
    fn may_add_members(&self, _: &ChatRecord, _: &Membership) -> Result<(), Refusal> {
        self.verdict()
    }
    fn may_accept_invitation(&self, _: &ChatRecord) -> Result<(), Refusal> {
        self.verdict()
    }
    fn may_remove_member(
        &self,
        _: &ChatRecord,
        _: &Membership,
        _: UserId,
        _: Option<&Membership>,
    ) -> Result<(), Refusal> {
        self.verdict()
    }
    fn may_leave(&self, _: &ChatRecord, _: &Membership, _: usize) -> Result<(), Refusal> {
        self.verdict()
    }
    fn may_rename(&self, _: &ChatRecord, _: &Membership) -> Result<(), Refusal> {
        self.verdict()
    }
    fn may_set_role(
        &self,
        _: &ChatRecord,
        _: &Membership,
        _: UserId,
        _: Role,
    ) -> Result<(), Refusal> {
        self.verdict()
    }
    fn may_transfer_ownership(
        &self,
        _: &ChatRecord,
        _: &Membership,
        _: UserId,
    ) -> Result<(), Refusal> {
        self.verdict()
    }
    fn may_alter_message(&self, _: &Membership, _: UserId) -> Result<(), Refusal> {
        self.verdict()
    }
    fn may_store(&self, _: UserId, _: StorageUse) -> Result<(), Refusal> {
        self.verdict()
    }
    fn successor(&self, remaining: &[Membership]) -> Option<UserId> {
        match self.0 {
            None => remaining.last().map(|m| m.user_id),
            Some(_) => None,
        }
    }
}

pub(crate) fn allow_all() -> Arc<dyn ChatRules> {
    Arc::new(ALLOW_ALL)
}

/// Allows everything, and records the member count each `may_leave` was
/// given: the facts the rules see.
#[derive(Default)]
struct LeaveCounts(Mutex<Vec<usize>>);

impl ChatRules for LeaveCounts {
    fn may_create_direct(&self, a: UserId, b: UserId) -> Result<(), Refusal> {
        ALLOW_ALL.may_create_direct(a, b)
    }
    fn may_hold(&self, n: usize) -> Result<(), Refusal> {
        ALLOW_ALL.may_hold(n)
    }
    fn may_add_members(&self, c: &ChatRecord, m: &Membership) -> Result<(), Refusal> {
        ALLOW_ALL.may_add_members(c, m)
    }
    fn may_accept_invitation(&self, c: &ChatRecord) -> Result<(), Refusal> {
        ALLOW_ALL.may_accept_invitation(c)
    }
    fn may_remove_member(
        &self,
        c: &ChatRecord,
        m: &Membership,
        t: UserId,
        tm: Option<&Membership>,
    ) -> Result<(), Refusal> {
        ALLOW_ALL.may_remove_member(c, m, t, tm)
    }
    fn may_leave(&self, _: &ChatRecord, _: &Membership, members: usize) -> Result<(), Refusal> {
        self.0.lock().unwrap().push(members);
        Ok(())
    }
    fn may_rename(&self, c: &ChatRecord, m: &Membership) -> Result<(), Refusal> {
        ALLOW_ALL.may_rename(c, m)
    }
    fn may_set_role(
        &self,
        c: &ChatRecord,
        m: &Membership,
        t: UserId,
        r: Role,
    ) -> Result<(), Refusal> {
        ALLOW_ALL.may_set_role(c, m, t, r)
    }
    fn may_transfer_ownership(
        &self,
        c: &ChatRecord,
        m: &Membership,
        t: UserId,
    ) -> Result<(), Refusal> {
        ALLOW_ALL.may_transfer_ownership(c, m, t)
    }
    fn may_alter_message(&self, m: &Membership, a: UserId) -> Result<(), Refusal> {
        ALLOW_ALL.may_alter_message(m, a)
    }
    fn may_store(&self, u: UserId, s: StorageUse) -> Result<(), Refusal> {
        ALLOW_ALL.may_store(u, s)
    }
    fn successor(&self, r: &[Membership]) -> Option<UserId> {
        ALLOW_ALL.successor(r)
    }
}

/// An envelope with the right shape for the writer's checks; its bytes
/// are zeros (the writer never looks at them).
pub(crate) fn envelope(chat_id: ChatId, sender: UserId, id: &str, members: &[UserId]) -> Envelope {
    let mut members = members.to_vec();
    members.sort_unstable();
    Envelope {
        version: ENVELOPE_VERSION,
        header: EnvelopeHeader {
            chat_id,
            sender,
            client_msg_id: id.to_owned(),
            sent_at: Timestamp::from_millis(1),
        },
        sender_key: B64(vec![0; 32]),
        nonce: B64(vec![0; 12]),
        body: B64(vec![0; 32]),
        wraps: members
            .into_iter()
            .map(|user_id| KeyWrap {
                user_id,
                key_id: B64(vec![0; 32]),
                wrapped_key: B64(vec![0; 384]),
            })
            .collect(),
        signature: B64(vec![0; 384]),
        wrap_proof: None,
    }
}

pub(crate) fn message(
    chat_id: ChatId,
    sender: UserId,
    id: &str,
    members: &[UserId],
) -> AppendRequest {
    AppendRequest {
        chat_id,
        sender,
        change: Change::Message {
            client_msg_id: id.to_owned(),
            envelope: envelope(chat_id, sender, id, members),
        },
    }
}

pub(crate) fn change(chat_id: ChatId, sender: UserId, change: Change) -> AppendRequest {
    AppendRequest {
        chat_id,
        sender,
        change,
    }
}

/// `n` accounts named user0, user1, ..., that anyone may add to a group.
pub(crate) fn add_users(storage: &Storage, n: usize) -> Vec<UserId> {
    storage
        .with_conn(|conn| {
            (0..n)
                .map(|i| {
                    let id = users::insert(
                        conn,
                        &users::tests::new_user(&format!("u{i}@x.org"), &format!("user{i}")),
                    )?;
                    set_policy(conn, id, GroupAddPolicy::Everyone)?;
                    Ok(id)
                })
                .collect::<Result<Vec<_>, StorageError>>()
        })
        .unwrap()
}

pub(crate) fn set_policy(
    conn: &Connection,
    user: UserId,
    policy: GroupAddPolicy,
) -> Result<(), StorageError> {
    let update = users::ProfileUpdate {
        who_can_add_me: Some(policy),
        ..users::ProfileUpdate::default()
    };
    users::update_profile(conn, user, &update, Timestamp::from_millis(1))?;
    Ok(())
}

pub(crate) async fn group(writer: &EventWriter, creator: UserId, members: &[UserId]) -> ChatId {
    writer
        .create_chat(NewChat::Group {
            creator,
            title: "team".into(),
            members: members.to_vec(),
            invitations: InvitationLimits::default(),
        })
        .await
        .unwrap()
        .chat_id
}

fn stored_seqs(storage: &Storage, chat_id: ChatId) -> Vec<i64> {
    storage
        .with_conn(|conn| {
            let mut stmt =
                conn.prepare("SELECT seq FROM chat_events WHERE chat_id = ?1 ORDER BY seq")?;
            let seqs = stmt.query_map([chat_id.0], |r| r.get(0))?;
            Ok::<_, StorageError>(seqs.collect::<Result<Vec<i64>, _>>()?)
        })
        .unwrap()
}

/// Waits until `n` requests are queued behind a closed gate.
async fn queued(writer: &EventWriter, n: usize) {
    for _ in 0..500 {
        if writer.queued() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    panic!("only {} of {n} requests queued", writer.queued());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seqs_strictly_increase_without_gaps_under_concurrent_appends() {
    let (_dir, storage) = temp_storage();
    let writer = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let users = add_users(&storage, 3);
    let chat = group(&writer, users[0], &users).await;
    let mut tasks = Vec::new();
    for task in 0..20 {
        let writer = writer.clone();
        let users = users.clone();
        tasks.push(tokio::spawn(async move {
            let sender = users[task % 3];
            let mut seqs = Vec::new();
            for n in 0..25 {
                let id = format!("t{task}-m{n}");
                let done = writer
                    .append(message(chat, sender, &id, &users), WriteContext::default())
                    .await
                    .unwrap();
                assert!(!done.duplicate);
                seqs.push(done.event().seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.unwrap();
        // each task's own messages come out in the order it sent them
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        all.extend(seqs);
    }
    all.sort_unstable();
    // seq 1 is the `created` event
    assert_eq!(all, (2..=501).map(Seq::new).collect::<Vec<_>>());
    assert_eq!(stored_seqs(&storage, chat), (1..=501).collect::<Vec<_>>());
    let last_seq = storage
        .with_conn(|conn| chats::by_id(conn, chat))
        .unwrap()
        .unwrap()
        .last_seq;
    assert_eq!(last_seq, Seq::new(501));
    let stats = writer.stats();
    assert_eq!(stats.requests, 501);
    assert!(stats.transactions <= 501);
    assert_eq!(stats.batch_sizes.iter().sum::<u64>(), stats.transactions);
}

fn stored_bytes(storage: &Storage, user: UserId) -> u64 {
    storage
        .with_conn(|conn| {
            Ok::<_, StorageError>(
                conn.query_row(
                    "SELECT stored_bytes FROM account_storage WHERE user_id = ?1",
                    [user.0],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap_or(0) as u64,
            )
        })
        .unwrap()
}

#[tokio::test]
async fn without_a_quota_bytes_are_still_counted() {
    let (_dir, storage) = temp_storage();
    let writer = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let users = add_users(&storage, 2);
    let chat = group(&writer, users[0], &users).await;
    for n in 0..5 {
        writer
            .append(
                message(chat, users[1], &format!("m{n}"), &users),
                WriteContext::default(),
            )
            .await
            .unwrap();
    }
    let size = envelope(chat, users[1], "m0", &users)
        .to_stored()
        .unwrap()
        .len() as u64;
    assert_eq!(stored_bytes(&storage, users[1]), 5 * size);
}

#[tokio::test]
async fn a_duplicate_client_msg_id_is_stored_once() {
    let (_dir, storage) = temp_storage();
    let writer = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let users = add_users(&storage, 2);
    let chat = group(&writer, users[0], &users).await;
    let first = writer
        .append(
            message(chat, users[0], "same", &users),
            WriteContext::default(),
        )
        .await
        .unwrap();
    let again = writer
        .append(
            message(chat, users[0], "same", &users),
            WriteContext::default(),
        )
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.event(), first.event());
    // twice in one batch: the second finds the first
    let (a, b) = tokio::join!(
        writer.append(
            message(chat, users[1], "twin", &users),
            WriteContext::default()
        ),
        writer.append(
            message(chat, users[1], "twin", &users),
            WriteContext::default()
        ),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.event().seq, b.event().seq);
    assert!(a.duplicate != b.duplicate);
    // the same id from another sender is another message
    let other = writer
        .append(
            message(chat, users[1], "same", &users),
            WriteContext::default(),
        )
        .await
        .unwrap();
    assert!(!other.duplicate);
    assert_eq!(stored_seqs(&storage, chat), [1, 2, 3, 4]);
}

#[tokio::test]
async fn a_batch_of_100_commits_in_one_transaction() {
    let (_dir, storage) = temp_storage();
    let setup = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let users = add_users(&storage, 2);
    let chat = group(&setup, users[0], &users).await;

    let (open, gate) = std::sync::mpsc::channel();
    let writer =
        EventWriter::start_gated(&storage, WriterConfig::default(), allow_all(), None, gate)
            .unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|n| {
            let writer = writer.clone();
            let users = users.clone();
            tokio::spawn(async move {
                writer
                    .append(
                        message(chat, users[n % 2], &format!("m{n}"), &users),
                        WriteContext::default(),
                    )
                    .await
            })
        })
        .collect();
    queued(&writer, 100).await;
    open.send(()).unwrap();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let stats = writer.stats();
    assert_eq!(stats.transactions, 1);
    assert_eq!(stats.requests, 100);
    assert_eq!(stats.largest_batch, 100);
    assert_eq!(stats.batch_sizes[6], 1, "64..=127: {stats:?}");
    assert!((stats.mean_batch() - 100.0).abs() < f64::EPSILON);
    assert_eq!(stored_seqs(&storage, chat), (1..=101).collect::<Vec<_>>());
}

/// Appends message `id` from a member (alternating by id) in a task.
fn spawn_append(
    writer: &EventWriter,
    chat: ChatId,
    users: &[UserId],
    id: String,
) -> tokio::task::JoinHandle<Result<Appended, WriteError>> {
    let (writer, users) = (writer.clone(), users.to_vec());
    tokio::spawn(async move {
        let sender = users[id.len() % users.len()];
        writer
            .append(message(chat, sender, &id, &users), WriteContext::default())
            .await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_busy_batch_the_writer_waits_for_company_and_never_when_idle() {
    let (_dir, storage) = temp_storage();
    let setup = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let users = add_users(&storage, 2);
    let chat = group(&setup, users[0], &users).await;
    let delay = std::time::Duration::from_millis(300);
    let (open, gate) = std::sync::mpsc::channel();
    let config = WriterConfig {
        commit_delay: delay,
        ..WriterConfig::default()
    };
    let writer = EventWriter::start_gated(&storage, config, allow_all(), None, gate).unwrap();
    let send = |n: usize| spawn_append(&writer, chat, &users, format!("m{n}"));

    // An idle writer answers a lone request at once.
    let started = std::time::Instant::now();
    open.send(()).unwrap();
    send(0).await.unwrap().unwrap();
    assert!(started.elapsed() < delay, "{:?}", started.elapsed());

    // A busy batch (BUSY_BATCH requests at once) ...
    let (open2, gate2) = std::sync::mpsc::channel();
    drop(writer);
    let writer = EventWriter::start_gated(&storage, config, allow_all(), None, gate2).unwrap();
    let send = |n: usize| spawn_append(&writer, chat, &users, format!("b{n}"));
    let busy: Vec<_> = (0..BUSY_BATCH).map(send).collect();
    queued(&writer, BUSY_BATCH).await;
    open2.send(()).unwrap();
    for task in busy {
        task.await.unwrap().unwrap();
    }
    // ... then the next request waits: requests sent while the writer
    // holds it (a third of the delay later) share its transaction.
    let first = send(100);
    tokio::time::sleep(delay / 3).await;
    let later: Vec<_> = (101..106).map(send).collect();
    first.await.unwrap().unwrap();
    for task in later {
        task.await.unwrap().unwrap();
    }
    let stats = writer.stats();
    assert_eq!(stats.transactions, 2, "{stats:?}");
    assert_eq!(stats.requests, BUSY_BATCH as u64 + 6, "{stats:?}");
}

#[tokio::test]
async fn batches_never_exceed_max_batch() {
    let (_dir, storage) = temp_storage();
    let setup = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let users = add_users(&storage, 1);
    let chat = group(&setup, users[0], &users).await;
    let (open, gate) = std::sync::mpsc::channel();
    let config = WriterConfig {
        max_batch: 8,
        queue_capacity: 64,
        ..WriterConfig::default()
    };
    let writer = EventWriter::start_gated(&storage, config, allow_all(), None, gate).unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let writer = writer.clone();
            let users = users.clone();
            tokio::spawn(async move {
                writer
                    .append(
                        message(chat, users[0], &format!("m{n}"), &users),
                        WriteContext::default(),
                    )
                    .await
            })
        })
        .collect();
    queued(&writer, 20).await;
    drop(open);
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let stats = writer.stats();
    assert_eq!(stats.largest_batch, 8);
    assert_eq!(stats.transactions, 3);
}

#[tokio::test]
async fn an_acknowledged_event_is_visible_to_a_fresh_connection() {
    let (_dir, storage) = temp_storage();
    let writer = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let users = add_users(&storage, 2);
    let chat = group(&writer, users[0], &users).await;
    let done = writer
        .append(
            message(chat, users[1], "durable", &users),
            WriteContext::default(),
        )
        .await
        .unwrap();
    // not the pool, not the writer's connection: a new one, as after a restart
    let conn = Connection::open(storage.path()).unwrap();
    let stored = events::by_seq(&conn, chat, done.event().seq)
        .unwrap()
        .unwrap();
    assert_eq!(&stored, done.event());
    let sync: i64 = storage
        .with_conn(|c| {
            Ok::<_, StorageError>(c.pragma_query_value(None, "synchronous", |r| r.get(0))?)
        })
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
}

#[tokio::test]
async fn a_refused_request_does_not_disturb_its_batch() {
    let (_dir, storage) = temp_storage();
    let setup = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let users = add_users(&storage, 3);
    let members = &users[..2];
    let chat = group(&setup, users[0], members).await;
    let (open, gate) = std::sync::mpsc::channel();
    let writer =
        EventWriter::start_gated(&storage, WriterConfig::default(), allow_all(), None, gate)
            .unwrap();
    let requests = [
        message(chat, users[0], "ok-1", members),
        message(chat, users[2], "outsider", &users),
        message(chat, users[1], "missing-wrap", &users[..1]),
        message(chat, users[1], "ok-2", members),
    ];
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.append(request, WriteContext::default()).await })
        })
        .collect();
    queued(&writer, 4).await;
    open.send(()).unwrap();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().map(|done| done.event().seq.get()));
    }
    assert_eq!(
        results,
        [
            Ok(2),
            Err(WriteError::NotAMember),
            Err(WriteError::MembersChanged),
            Ok(3)
        ]
    );
    assert_eq!(writer.stats().transactions, 1);
    assert_eq!(stored_seqs(&storage, chat), [1, 2, 3]);
}

#[tokio::test]
async fn a_failed_batch_stores_nothing_and_fails_every_request() {
    let (_dir, storage) = temp_storage();
    let setup = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let users = add_users(&storage, 1);
    let chat = group(&setup, users[0], &users).await;
    // A statement that fails in the middle of the batch, as a full disk would.
    storage
        .with_conn(|conn| {
            conn.execute_batch(
                "CREATE TRIGGER boom BEFORE INSERT ON chat_events \
                 WHEN NEW.client_msg_id = 'boom' BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )?;
            Ok::<_, StorageError>(())
        })
        .unwrap();
    let (open, gate) = std::sync::mpsc::channel();
    let writer =
        EventWriter::start_gated(&storage, WriterConfig::default(), allow_all(), None, gate)
            .unwrap();
    let tasks: Vec<_> = ["a", "boom", "c"]
        .into_iter()
        .map(|id| {
            let writer = writer.clone();
            let users = users.clone();
            tokio::spawn(async move {
                writer
                    .append(message(chat, users[0], id, &users), WriteContext::default())
                    .await
            })
        })
        .collect();
    queued(&writer, 3).await;
    open.send(()).unwrap();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Err(WriteError::Failed));
    }
    assert_eq!(stored_seqs(&storage, chat), [1]);
    let stats = writer.stats();
    assert_eq!((stats.transactions, stats.failed_transactions), (0, 1));
    // the writer carries on, and the seq has no gap
    let done = writer
        .append(
            message(chat, users[0], "after", &users),
            WriteContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(done.event().seq, Seq::new(2));
}

#[tokio::test]
async fn a_removed_member_cannot_append() {
    let (_dir, storage) = temp_storage();
    let writer = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let users = add_users(&storage, 3);
    let chat = group(&writer, users[0], &users).await;
    let removed = writer
        .append(
            change(chat, users[0], Change::RemoveMember { user_id: users[2] }),
            WriteContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(removed.removed, [users[2]]);
    assert_eq!(removed.members, &users[..2]);
    assert_eq!(
        writer
            .append(
                message(chat, users[2], "late", &users),
                WriteContext::default()
            )
            .await,
        Err(WriteError::NotAMember)
    );
    // wraps for the old member list no longer fit
    assert_eq!(
        writer
            .append(
                message(chat, users[1], "stale", &users),
                WriteContext::default()
            )
            .await,
        Err(WriteError::MembersChanged)
    );
    assert_eq!(
        writer.mark_read(chat, users[2], Seq::new(1)).await,
        Err(WriteError::NotAMember)
    );
    assert_eq!(
        writer
            .append(
                message(ChatId(999), users[0], "x", &users),
                WriteContext::default()
            )
            .await,
        Err(WriteError::ChatNotFound)
    );
}

#[derive(Default)]
struct Recorder {
    path: std::path::PathBuf,
    seen: Mutex<Vec<(Seq, Vec<UserId>, bool)>>,
}

impl CommitListener for Recorder {
    fn committed(&self, event: &ChatEvent, recipients: &[UserId], _: WriteContext) {
        // committed means: another connection can read it already
        let conn = Connection::open(&self.path).unwrap();
        let visible = events::by_seq(&conn, event.chat_id, event.seq)
            .unwrap()
            .is_some();
        self.seen
            .lock()
            .unwrap()
            .push((event.seq, recipients.to_vec(), visible));
    }
}

/// Logs what a listener hears and when callers get their answers.
#[derive(Default)]
struct BatchLog(Mutex<Vec<String>>);

impl BatchLog {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

impl CommitListener for BatchLog {
    fn committed(&self, event: &ChatEvent, _: &[UserId], _: WriteContext) {
        self.push(format!("event {}", event.seq));
    }

    fn batch_done(&self) {
        self.push("batch done".into());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_announced_whole_before_any_caller_is_answered() {
    let (_dir, storage) = temp_storage();
    let setup = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let users = add_users(&storage, 2);
    let chat = group(&setup, users[0], &users).await;

    let log = Arc::new(BatchLog::default());
    let (open, gate) = std::sync::mpsc::channel();
    let writer = EventWriter::start_gated(
        &storage,
        WriterConfig::default(),
        allow_all(),
        Some(log.clone()),
        gate,
    )
    .unwrap();
    let tasks: Vec<_> = (0..5)
        .map(|n| {
            let (writer, users, log) = (writer.clone(), users.clone(), log.clone());
            tokio::spawn(async move {
                let done = writer
                    .append(
                        message(chat, users[n % 2], &format!("m{n}"), &users),
                        WriteContext::default(),
                    )
                    .await
                    .unwrap();
                log.push(format!("answered {}", done.event().seq));
            })
        })
        .collect();
    queued(&writer, 5).await;
    open.send(()).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    // a refused request and a duplicate: answered, nothing to announce
    writer
        .append(
            message(chat, users[0], "m0", &users),
            WriteContext::default(),
        )
        .await
        .unwrap();
    log.push("duplicate answered".into());

    let lines = log.0.lock().unwrap().clone();
    let expected_head: Vec<String> = (2..=6)
        .map(|seq| format!("event {seq}"))
        .chain(["batch done".to_owned()])
        .collect();
    assert_eq!(lines[..6], expected_head[..], "{lines:?}");
    let mut answered: Vec<&str> = lines[6..11].iter().map(String::as_str).collect();
    answered.sort_unstable();
    assert_eq!(
        answered,
        [
            "answered 2",
            "answered 3",
            "answered 4",
            "answered 5",
            "answered 6"
        ]
    );
    // the duplicate's batch announced nothing and so did not call batch_done
    assert_eq!(lines[11..], ["duplicate answered".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_listener_hears_each_event_after_its_commit_in_seq_order() {
    let (_dir, storage) = temp_storage();
    let recorder = Arc::new(Recorder {
        path: storage.path().to_path_buf(),
        ..Recorder::default()
    });
    let writer = EventWriter::start(
        &storage,
        WriterConfig::default(),
        allow_all(),
        Some(recorder.clone()),
    )
    .unwrap();
    let users = add_users(&storage, 3);
    let chat = group(&writer, users[0], &users[..2]).await;
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let writer = writer.clone();
            let members = users[..2].to_vec();
            tokio::spawn(async move {
                writer
                    .append(
                        message(chat, members[n % 2], &format!("m{n}"), &members),
                        WriteContext::default(),
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // a duplicate is not announced again
    writer
        .append(
            message(chat, users[0], "m0", &users[..2]),
            WriteContext::default(),
        )
        .await
        .unwrap();
    writer
        .append(
            change(chat, users[0], Change::RemoveMember { user_id: users[1] }),
            WriteContext::default(),
        )
        .await
        .unwrap();
    let seen = recorder.seen.lock().unwrap().clone();
    let seqs: Vec<i64> = seen.iter().map(|(seq, _, _)| seq.get()).collect();
    assert_eq!(seqs, (1..=42).collect::<Vec<_>>());
    assert!(seen.iter().all(|(_, _, visible)| *visible));
    assert!(seen[..41].iter().all(|(_, to, _)| to == &users[..2]));
    // the removed member hears of the removal too
    assert_eq!(seen[41].1, &users[..2]);
}

#[tokio::test]
async fn direct_chats_are_one_per_pair() {
    let (_dir, storage) = temp_storage();
    let writer = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let users = add_users(&storage, 3);
    let first = writer
        .create_chat(NewChat::Direct {
            creator: users[0],
            peer: users[1],
        })
        .await
        .unwrap();
    assert!(first.event.is_some());
    assert_eq!(first.members, &users[..2]);
    // the other way round finds the same chat, without a new event
    let again = writer
        .create_chat(NewChat::Direct {
            creator: users[1],
            peer: users[0],
        })
        .await
        .unwrap();
    assert_eq!((again.chat_id, again.event), (first.chat_id, None));
    let chat = first.chat_id;
    assert_eq!(
        writer
            .create_chat(NewChat::Direct {
                creator: users[0],
                peer: UserId(999)
            })
            .await,
        Err(WriteError::UserNotFound(UserId(999)))
    );
    let done = writer
        .append(
            message(chat, users[1], "hi", &users[..2]),
            WriteContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(done.event().seq, Seq::new(2));
}

#[derive(Default)]
struct Origins(Mutex<Vec<(Seq, Option<Origin>)>>);

impl CommitListener for Origins {
    fn committed(&self, event: &ChatEvent, _: &[UserId], context: WriteContext) {
        self.0.lock().unwrap().push((event.seq, context.origin));
    }
}

#[tokio::test]
async fn the_listener_learns_the_connection_a_change_came_in_on() {
    let (_dir, storage) = temp_storage();
    let origins = Arc::new(Origins::default());
    let writer = EventWriter::start(
        &storage,
        WriterConfig::default(),
        allow_all(),
        Some(origins.clone()),
    )
    .unwrap();
    let users = add_users(&storage, 2);
    let chat = group(&writer, users[0], &users).await;
    writer
        .append(
            message(chat, users[0], "a", &users),
            WriteContext::from_origin(Some(Origin(7))),
        )
        .await
        .unwrap();
    writer
        .append(
            message(chat, users[1], "b", &users),
            WriteContext::default(),
        )
        .await
        .unwrap();
    // a retry is answered, not announced again
    let retry = writer
        .append(
            message(chat, users[0], "a", &users),
            WriteContext::from_origin(Some(Origin(8))),
        )
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(
        *origins.0.lock().unwrap(),
        vec![
            (Seq::new(1), None),
            (Seq::new(2), Some(Origin(7))),
            (Seq::new(3), None)
        ]
    );
}

#[tokio::test]
async fn edits_and_deletes_are_for_a_live_message() {
    let (_dir, storage) = temp_storage();
    let writer = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let u = add_users(&storage, 2);
    let chat = group(&writer, u[0], &u).await;
    let sent = writer
        .append(message(chat, u[0], "m", &u), WriteContext::default())
        .await
        .unwrap();
    let seq = sent.event().seq;
    let edit = |sender, id: &str, target_seq| {
        change(
            chat,
            sender,
            Change::Edit {
                target_seq,
                envelope: envelope(chat, sender, id, &u),
            },
        )
    };
    assert_eq!(
        writer
            .append(edit(u[0], "e0", Seq::new(1)), WriteContext::default())
            .await,
        Err(WriteError::MessageNotFound)
    );
    assert_eq!(
        writer
            .append(edit(u[0], "e0", Seq::new(99)), WriteContext::default())
            .await,
        Err(WriteError::MessageNotFound)
    );
    // the message's own id cannot name an edit
    assert_eq!(
        writer
            .append(edit(u[0], "m", seq), WriteContext::default())
            .await,
        Err(WriteError::ClientMsgIdReused)
    );
    let edited = writer
        .append(edit(u[0], "e1", seq), WriteContext::default())
        .await
        .unwrap();
    let retried = writer
        .append(edit(u[0], "e1", seq), WriteContext::default())
        .await
        .unwrap();
    assert!(retried.duplicate);
    assert_eq!(retried.event(), edited.event());
    // an edit's id cannot name a message either
    assert_eq!(
        writer
            .append(message(chat, u[0], "e1", &u), WriteContext::default())
            .await,
        Err(WriteError::ClientMsgIdReused)
    );
    let delete = |sender, target_seq| change(chat, sender, Change::Delete { target_seq });
    assert_eq!(
        writer
            .append(delete(u[0], edited.event().seq), WriteContext::default())
            .await,
        Err(WriteError::MessageNotFound)
    );
    let deleted = writer
        .append(delete(u[0], seq), WriteContext::default())
        .await
        .unwrap();
    let again = writer
        .append(delete(u[0], seq), WriteContext::default())
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.event(), deleted.event());
    assert_eq!(
        writer
            .append(edit(u[0], "e2", seq), WriteContext::default())
            .await,
        Err(WriteError::MessageNotFound)
    );
    assert_eq!(stored_seqs(&storage, chat), [1, 2, 3, 4]);
}

#[tokio::test]
async fn read_positions_only_move_forwards_and_not_past_the_end() {
    let (_dir, storage) = temp_storage();
    let writer = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let u = add_users(&storage, 2);
    let chat = group(&writer, u[0], &u).await;
    for n in 0..3 {
        writer
            .append(
                message(chat, u[0], &format!("m{n}"), &u),
                WriteContext::default(),
            )
            .await
            .unwrap();
    }
    let mark = writer.mark_read(chat, u[1], Seq::new(3)).await.unwrap();
    assert_eq!((mark.seq, mark.moved), (Seq::new(3), true));
    assert_eq!(mark.notify, u);
    let back = writer.mark_read(chat, u[1], Seq::new(2)).await.unwrap();
    assert_eq!((back.seq, back.moved), (Seq::new(3), false));
    assert!(back.notify.is_empty());
    let future = writer.mark_read(chat, u[1], Seq::new(1_000)).await.unwrap();
    assert_eq!((future.seq, future.moved), (Seq::new(4), true));
    // Reading implies delivery: the delivery position followed.
    let delivered = writer
        .mark_delivered(chat, u[1], Seq::new(4))
        .await
        .unwrap();
    assert_eq!((delivered.seq, delivered.moved), (Seq::new(4), false));
}

#[tokio::test]
async fn delivery_receipts_move_forwards_and_tell_the_senders_they_cover() {
    let (_dir, storage) = temp_storage();
    let writer = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let u = add_users(&storage, 4);
    // seq 1: created
    let chat = group(&writer, u[0], &u).await;
    // seq 2, 3: u0; seq 4: u1; seq 5: u2
    for (n, sender) in [u[0], u[0], u[1], u[2]].into_iter().enumerate() {
        writer
            .append(
                message(chat, sender, &format!("m{n}"), &u),
                WriteContext::default(),
            )
            .await
            .unwrap();
    }
    // u3 received up to 3: only u0's messages are newly covered.
    let mark = writer
        .mark_delivered(chat, u[3], Seq::new(3))
        .await
        .unwrap();
    assert_eq!((mark.seq, mark.moved), (Seq::new(3), true));
    assert_eq!(mark.notify, vec![u[0], u[3]]);
    // Again, or less: nothing moves, nobody is told.
    let same = writer
        .mark_delivered(chat, u[3], Seq::new(2))
        .await
        .unwrap();
    assert_eq!((same.seq, same.moved), (Seq::new(3), false));
    assert!(same.notify.is_empty());
    // Up to the end (a too-large seq is capped): u1 and u2 are covered now.
    let rest = writer
        .mark_delivered(chat, u[3], Seq::new(99))
        .await
        .unwrap();
    assert_eq!((rest.seq, rest.moved), (Seq::new(5), true));
    assert_eq!(rest.notify, vec![u[1], u[2], u[3]]);
    // u1 receiving its own and others' messages tells the others, and itself once.
    let own = writer
        .mark_delivered(chat, u[1], Seq::new(5))
        .await
        .unwrap();
    assert_eq!(own.notify, vec![u[0], u[1], u[2]]);
    // The positions are what chat.get shows.
    let members = storage
        .with_conn(move |conn| chats::members(conn, chat))
        .unwrap();
    let delivered: Vec<i64> = members.iter().map(|m| m.delivered_seq.get()).collect();
    // Everyone starts at the creation (seq 1).
    assert_eq!(delivered, vec![1, 5, 1, 5]);
    let first = u[0];
    let (read, got) = storage
        .with_conn(move |conn| chats::others_positions(conn, chat, first))
        .unwrap();
    assert_eq!((read, got), (Seq::new(1), Seq::new(5)));
    assert_eq!(
        writer.mark_delivered(ChatId(999), u[0], Seq::new(1)).await,
        Err(WriteError::ChatNotFound)
    );
}

#[tokio::test]
async fn a_deleted_owner_hands_the_group_on() {
    let (_dir, storage) = temp_storage();
    let writer = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let u = add_users(&storage, 4);
    let chat = group(&writer, u[0], &u).await;
    writer
        .append(message(chat, u[0], "before", &u), WriteContext::default())
        .await
        .unwrap();
    let done = writer
        .append(
            change(chat, u[0], Change::AccountDeleted),
            WriteContext::default(),
        )
        .await
        .unwrap();
    let bodies: Vec<_> = done.events.iter().map(|e| e.body.clone()).collect();
    // the successor the rules name (ALLOW_ALL: the last remaining) is owner now
    assert_eq!(
        bodies,
        [
            EventBody::MemberLeft { user_id: u[0] },
            EventBody::RoleChanged {
                user_id: u[3],
                role: Role::Owner
            }
        ]
    );
    assert_eq!(done.members, &u[1..]);
    assert_eq!(done.removed, [u[0]]);
    // the account goes; its messages stay, with a sender that no longer resolves
    storage.with_conn(|conn| users::delete(conn, u[0])).unwrap();
    let kept = storage
        .with_conn(|conn| events::by_seq(conn, chat, Seq::new(2)))
        .unwrap()
        .unwrap();
    assert_eq!(kept.sender, u[0]);
    assert_eq!(
        storage
            .with_conn(|conn| chats::profile(conn, u[0]))
            .unwrap(),
        None
    );
}

fn add(user_ids: Vec<UserId>) -> Change {
    Change::AddMembers {
        user_ids,
        invitations: InvitationLimits::default(),
    }
}

fn left_events(storage: &Storage, chat: ChatId, user: UserId) -> usize {
    let events = storage
        .with_conn(|conn| events::events_after(conn, chat, Seq::ZERO, 1000))
        .unwrap();
    events
        .iter()
        .filter(|e| e.body == EventBody::MemberLeft { user_id: user })
        .count()
}

/// Point 14c of issue 11: an account deletion racing an add. Both go
/// through the writer, so in either order the group ends with a member
/// list without the deleted account, and a `member_left` wherever it
/// had become a member.
#[tokio::test]
async fn an_account_deletion_and_an_add_serialize_in_either_order() {
    for add_first in [true, false] {
        let (_dir, storage) = temp_storage();
        let u = add_users(&storage, 3);
        let (owner, doomed) = (u[0], u[2]);
        let chat = {
            let writer =
                EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
            group(&writer, owner, &[u[1]]).await
        };
        let (open, gate) = std::sync::mpsc::channel();
        let writer =
            EventWriter::start_gated(&storage, WriterConfig::default(), allow_all(), None, gate)
                .unwrap();
        let adding = {
            let writer = writer.clone();
            async move {
                writer
                    .append(
                        change(chat, owner, add(vec![doomed])),
                        WriteContext::default(),
                    )
                    .await
            }
        };
        let deleting = {
            let writer = writer.clone();
            async move { writer.delete_account(doomed).await }
        };
        let (added, deleted) = if add_first {
            let added = tokio::spawn(adding);
            queued(&writer, 1).await;
            let deleted = tokio::spawn(deleting);
            queued(&writer, 2).await;
            open.send(()).unwrap();
            (added.await.unwrap(), deleted.await.unwrap())
        } else {
            let deleted = tokio::spawn(deleting);
            queued(&writer, 1).await;
            let added = tokio::spawn(adding);
            queued(&writer, 2).await;
            open.send(()).unwrap();
            (added.await.unwrap(), deleted.await.unwrap())
        };
        let added = added.unwrap();
        let departures = deleted.unwrap();
        let members = storage
            .with_conn(|conn| chats::member_ids(conn, chat))
            .unwrap();
        assert_eq!(members, [owner, u[1]], "add first: {add_first}");
        if add_first {
            assert_eq!(added.added, [doomed]);
            assert_eq!(departures.len(), 1);
            assert_eq!(departures[0].removed, [doomed]);
            assert_eq!(left_events(&storage, chat, doomed), 1);
        } else {
            // The account was gone: answered like any unknown id.
            assert!(added.added.is_empty() && added.events.is_empty());
            assert!(departures.is_empty());
            assert_eq!(left_events(&storage, chat, doomed), 0);
        }
    }
}

#[tokio::test]
async fn consent_decides_between_membership_and_invitation() {
    let (_dir, storage) = temp_storage();
    let writer = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let u = add_users(&storage, 4);
    let (alice, bob, carol, dave) = (u[0], u[1], u[2], u[3]);
    storage
        .with_conn(|conn| {
            set_policy(conn, bob, GroupAddPolicy::ChatPartners)?;
            set_policy(conn, carol, GroupAddPolicy::Nobody)
        })
        .unwrap();
    let created = writer
        .create_chat(NewChat::Group {
            creator: alice,
            title: "t".into(),
            members: vec![bob, carol, dave, UserId(999)],
            invitations: InvitationLimits::default(),
        })
        .await
        .unwrap();
    assert_eq!(created.members, [alice, dave]);
    assert_eq!(created.invited, [bob, carol]);
    let chat = created.chat_id;
    // An invitee is no member: not in the wraps, cannot write.
    assert_eq!(
        writer
            .append(
                message(chat, bob, "x", &[alice, dave]),
                WriteContext::default()
            )
            .await,
        Err(WriteError::NotAMember)
    );
    // Dave shares this group with Alice now; Bob does not.
    let other = group(&writer, dave, &[]).await;
    let done = writer
        .append(
            change(other, dave, add(vec![alice, bob])),
            WriteContext::default(),
        )
        .await
        .unwrap();
    assert_eq!((done.added, done.invited), (vec![alice], vec![bob]));
    // Accepting: a member, with members_added sent by himself.
    let accepted = writer
        .append(
            change(chat, bob, Change::AcceptInvitation),
            WriteContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(accepted.added, [bob]);
    assert_eq!(accepted.event().sender, bob);
    assert_eq!(accepted.members, [alice, bob, dave]);
    assert_eq!(
        writer
            .append(
                change(chat, bob, Change::AcceptInvitation),
                WriteContext::default()
            )
            .await,
        Err(WriteError::NoInvitation)
    );
    // An accept the rules refuse (a full group) keeps the invitation for later.
    drop(writer);
    let full = Refusal::TooManyMembers { max: 3 };
    let writer = EventWriter::start(
        &storage,
        WriterConfig::default(),
        Arc::new(Fixed(Some(full))),
        None,
    )
    .unwrap();
    assert_eq!(
        writer
            .append(
                change(chat, carol, Change::AcceptInvitation),
                WriteContext::default()
            )
            .await,
        Err(WriteError::Refused(full))
    );
    let pending = storage
        .with_conn(|conn| invitations::list(conn, carol, Timestamp::EPOCH))
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].inviter.as_ref().map(|p| p.id), Some(alice));
}

#[tokio::test]
async fn invitations_per_invitee_are_capped_and_expire() {
    let (_dir, storage) = temp_storage();
    let u = add_users(&storage, 2);
    let (alice, bob) = (u[0], u[1]);
    let limits = InvitationLimits {
        max_pending: 3,
        ttl_ms: 1_000,
    };
    let writer = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let chats: Vec<ChatId> = {
        let mut chats = Vec::new();
        for _ in 0..5 {
            chats.push(group(&writer, alice, &[]).await);
        }
        chats
    };
    storage
        .with_conn(|conn| {
            for (i, chat) in chats.iter().enumerate() {
                invitations::invite(
                    conn,
                    *chat,
                    bob,
                    alice,
                    Timestamp::from_millis(100 + i as i64),
                    limits,
                )?;
            }
            Ok::<_, StorageError>(())
        })
        .unwrap();
    let listed = |now| {
        storage
            .with_conn(|conn| invitations::list(conn, bob, now))
            .unwrap()
            .iter()
            .map(|i| i.chat_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(Timestamp::from_millis(200)),
        [chats[4], chats[3], chats[2]]
    );
    assert_eq!(
        storage
            .with_conn(|conn| invitations::stored_count(conn, bob))
            .unwrap(),
        3
    );
    // After their lifetime they are not listed, and the next one prunes them.
    assert!(listed(Timestamp::from_millis(2_000)).is_empty());
    storage
        .with_conn(|conn| {
            invitations::invite(
                conn,
                chats[0],
                bob,
                alice,
                Timestamp::from_millis(5_000),
                limits,
            )
        })
        .unwrap();
    assert_eq!(listed(Timestamp::from_millis(5_000)), [chats[0]]);
    assert_eq!(
        storage
            .with_conn(|conn| invitations::stored_count(conn, bob))
            .unwrap(),
        1
    );
}

/// Every change guarded by a rule: refused by the rules, nothing of it is
/// stored (no event, no member, no title, no role, no bytes counted, no
/// chat), nothing is announced, and the refusal is the rules' own.
#[tokio::test]
async fn a_change_the_rules_refuse_stores_nothing() {
    let (_dir, storage) = temp_storage();
    let u = add_users(&storage, 4);
    let (chat, sent) = {
        let writer =
            EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
        let chat = group(&writer, u[0], &u[..3]).await;
        let sent = writer
            .append(message(chat, u[0], "m0", &u[..3]), WriteContext::default())
            .await
            .unwrap();
        (chat, sent.event().seq)
    };
    let bytes_before = stored_bytes(&storage, u[0]);
    let seqs_before = stored_seqs(&storage, chat);
    let refusal = Refusal::Outranked;
    let log = Arc::new(BatchLog::default());
    let writer = EventWriter::start(
        &storage,
        WriterConfig::default(),
        Arc::new(Fixed(Some(refusal))),
        Some(log.clone()),
    )
    .unwrap();
    let changes = [
        Change::Message {
            client_msg_id: "m1".into(),
            envelope: envelope(chat, u[0], "m1", &u[..3]),
        },
        Change::Edit {
            target_seq: sent,
            envelope: envelope(chat, u[0], "e1", &u[..3]),
        },
        Change::Delete { target_seq: sent },
        add(vec![u[3]]),
        Change::RemoveMember { user_id: u[1] },
        Change::Leave,
        Change::Rename { title: "x".into() },
        Change::SetRole {
            user_id: u[1],
            role: Role::Admin,
        },
        Change::TransferOwnership { user_id: u[1] },
    ];
    for refused in changes {
        let what = format!("{refused:?}");
        assert_eq!(
            writer
                .append(change(chat, u[0], refused), WriteContext::default())
                .await,
            Err(WriteError::Refused(refusal)),
            "{what}"
        );
    }
    for new in [
        NewChat::Direct {
            creator: u[0],
            peer: u[3],
        },
        NewChat::Group {
            creator: u[0],
            title: "t".into(),
            members: vec![u[3]],
            invitations: InvitationLimits::default(),
        },
    ] {
        assert_eq!(
            writer.create_chat(new).await,
            Err(WriteError::Refused(refusal))
        );
    }
    // The data checks come first where they did: a stranger is no member.
    assert_eq!(
        writer
            .append(message(chat, u[3], "x", &u[..3]), WriteContext::default())
            .await,
        Err(WriteError::NotAMember)
    );
    assert_eq!(stored_seqs(&storage, chat), seqs_before);
    assert_eq!(stored_bytes(&storage, u[0]), bytes_before);
    let record = storage
        .with_conn(|conn| chats::by_id(conn, chat))
        .unwrap()
        .unwrap();
    assert_eq!(record.title.as_deref(), Some("team"));
    let members = storage
        .with_conn(|conn| chats::memberships(conn, chat))
        .unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| (m.user_id, m.role))
            .collect::<Vec<_>>(),
        [
            (u[0], Role::Owner),
            (u[1], Role::Member),
            (u[2], Role::Member)
        ]
    );
    let chats_of_u3 = storage
        .with_conn(|conn| chats::chat_ids_for_user(conn, u[3]))
        .unwrap();
    assert!(chats_of_u3.is_empty());
    assert!(log.0.lock().unwrap().is_empty(), "nothing announced");
    // An account deletion is not a refusable change: it happens, and with
    // no successor named the group has no owner.
    let departures = writer.delete_account(u[0]).await.unwrap();
    assert_eq!(departures.len(), 1);
    assert_eq!(
        departures[0]
            .events
            .iter()
            .map(|e| e.body.clone())
            .collect::<Vec<_>>(),
        [EventBody::MemberLeft { user_id: u[0] }]
    );
}

/// The rules judge facts read inside the batch's transaction, after the
/// requests before them in the same batch: a leave right after a removal,
/// in one transaction, sees the chat without the removed member.
#[tokio::test]
async fn the_rules_see_the_facts_of_their_own_transaction() {
    let (_dir, storage) = temp_storage();
    let u = add_users(&storage, 3);
    let chat = {
        let writer =
            EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
        group(&writer, u[0], &u).await
    };
    let (owner, leaving, removed) = (u[0], u[1], u[2]);
    let rules = Arc::new(LeaveCounts::default());
    let (open, gate) = std::sync::mpsc::channel();
    let writer =
        EventWriter::start_gated(&storage, WriterConfig::default(), rules.clone(), None, gate)
            .unwrap();
    let remove = {
        let writer = writer.clone();
        tokio::spawn(async move {
            writer
                .append(
                    change(chat, owner, Change::RemoveMember { user_id: removed }),
                    WriteContext::default(),
                )
                .await
        })
    };
    queued(&writer, 1).await;
    let leave = {
        let writer = writer.clone();
        tokio::spawn(async move {
            writer
                .append(
                    change(chat, leaving, Change::Leave),
                    WriteContext::default(),
                )
                .await
        })
    };
    queued(&writer, 2).await;
    open.send(()).unwrap();
    remove.await.unwrap().unwrap();
    leave.await.unwrap().unwrap();
    assert_eq!(writer.stats().transactions, 1);
    // Three members before the batch; the leave was judged with two.
    assert_eq!(*rules.0.lock().unwrap(), [2]);
}

/// The data checks of membership changes, whatever the rules allow.
#[tokio::test]
async fn membership_changes_check_who_is_a_member() {
    let (_dir, storage) = temp_storage();
    let writer = EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
    let u = add_users(&storage, 3);
    let chat = group(&writer, u[0], &u[..2]).await;
    let run = |sender, change: Change| {
        let writer = writer.clone();
        async move {
            writer
                .append(
                    super::tests::change(chat, sender, change),
                    WriteContext::default(),
                )
                .await
        }
    };
    assert_eq!(
        run(u[0], Change::RemoveMember { user_id: u[2] }).await,
        Err(WriteError::NotMember(u[2]))
    );
    for target in [
        Change::SetRole {
            user_id: u[2],
            role: Role::Admin,
        },
        Change::TransferOwnership { user_id: u[2] },
    ] {
        assert_eq!(run(u[0], target).await, Err(WriteError::NotMember(u[2])));
    }
    assert_eq!(
        run(u[0], add(vec![u[1], u[2]])).await,
        Err(WriteError::AlreadyMember(u[1]))
    );
    // an id without an account is skipped: nothing stored, nobody invited
    let nobody = run(u[0], add(vec![UserId(999)])).await.unwrap();
    assert_eq!(
        (
            nobody.events.len(),
            nobody.added.len(),
            nobody.invited.len()
        ),
        (0, 0, 0)
    );
    assert_eq!(stored_seqs(&storage, chat), [1]);
    let added = run(u[0], add(vec![u[2]])).await.unwrap();
    assert_eq!((added.added, added.members), (vec![u[2]], u.clone()));
}
