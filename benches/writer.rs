//! The group-commit event writer at batch sizes 1, 10 and 100, against what
//! SQLite itself reaches for batched inserts on the same machine, with the
//! same pragmas (WAL, synchronous=FULL), in the same run.
//!
//! - `writer/append/N`: N 1:1 messages with 1 KiB bodies handed to the
//!   `EventWriter` at once and awaited together (the writer commits what is
//!   queued in one transaction: the batch).
//! - `sqlite/insert_1k/N`: N rows of 1 KiB in one transaction into a plain
//!   rowid table without indexes, with a cached prepared statement: the
//!   reference limit the issue names.
//! - `sqlite/insert_like_writer/N`: the same with rows as large as the
//!   writer's stored events: the limit for rows of the writer's size.
//!
//! At the end the bench prints writer / SQLite ratios from a fixed-time
//! measurement of each (criterion's own numbers are in its report).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrogram_core::b64::B64;
use ferrogram_core::ids::{ChatId, Timestamp, UserId};
use ferrogram_core::proto::{Envelope, EnvelopeHeader, KdfParams, KeyWrap, PublicKeys};
use ferrogram_handlers::rules::ChatPolicy;
use ferrogram_storage::rusqlite::{params, Connection};
use ferrogram_storage::writer::{AppendRequest, Change, NewChat, WriteContext};
use ferrogram_storage::{users, EventWriter, Storage, WriterConfig};
use futures_util::future::join_all;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCHES: [usize; 3] = [1, 10, 100];
/// Text bytes of a message; padded to 64 and sealed with a 16-byte tag.
const BODY: usize = 1024 + 64 + 16;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct WriterSetup {
    _dir: tempfile::TempDir,
    writer: EventWriter,
    chat: ChatId,
    sender: UserId,
    members: Vec<UserId>,
    runtime: tokio::runtime::Runtime,
}

fn new_user(storage: &Storage, i: usize) -> UserId {
    storage
        .with_conn(|conn| {
            users::insert(
                conn,
                &users::NewUser {
                    email: format!("bench{i}@example.org"),
                    handle: format!("bench{i}"),
                    display_name: "Bench".into(),
                    auth_hash: "$argon2id$bench".into(),
                    kdf_salt: vec![0; 16],
                    kdf: KdfParams::DEFAULT,
                    public_keys: PublicKeys {
                        sign: B64(vec![1; 32]),
                        enc: B64(vec![2; 32]),
                    },
                    sealed_keys: vec![3; 64],
                    created_at: Timestamp::EPOCH,
                },
            )
        })
        .expect("user")
}

fn writer_setup() -> WriterSetup {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(dir.path().join("bench.sqlite3"), 2).expect("storage");
    let a = new_user(&storage, 1);
    let b = new_user(&storage, 2);
    // The server's rules, with its default limits (config.yaml).
    let rules = Arc::new(ChatPolicy {
        max_group_members: ferrogram_handlers::DEFAULT_MAX_GROUP_MEMBERS,
        account_storage_bytes: 1 << 30,
    });
    let writer =
        EventWriter::start(&storage, WriterConfig::default(), rules, None).expect("writer");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let created = runtime
        .block_on(writer.create_chat(NewChat::Direct {
            creator: a,
            peer: b,
        }))
        .expect("chat");
    let mut members = vec![a, b];
    members.sort_unstable();
    WriterSetup {
        _dir: dir,
        writer,
        chat: created.chat_id,
        sender: a,
        members,
        runtime,
    }
}

fn message(s: &WriterSetup) -> AppendRequest {
    let id = format!("bench-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    AppendRequest {
        chat_id: s.chat,
        sender: s.sender,
        change: Change::Message {
            client_msg_id: id.clone(),
            envelope: Envelope {
                version: 1,
                header: EnvelopeHeader {
                    chat_id: s.chat,
                    sender: s.sender,
                    client_msg_id: id,
                    sent_at: Timestamp::EPOCH,
                },
                sender_key: B64(vec![7; 32]),
                nonce: B64(vec![1; 12]),
                body: B64(vec![2; BODY]),
                wraps: s
                    .members
                    .iter()
                    .map(|&user_id| KeyWrap {
                        user_id,
                        key_id: B64(vec![3; 32]),
                        wrapped_key: B64(vec![4; 384]),
                    })
                    .collect(),
                signature: B64(vec![5; 384]),
                wrap_proof: None,
            },
        },
    }
}

fn append_batch(s: &WriterSetup, n: usize) {
    let requests: Vec<AppendRequest> = (0..n).map(|_| message(s)).collect();
    s.runtime.block_on(async {
        let results = join_all(
            requests
                .into_iter()
                .map(|r| s.writer.append(r, WriteContext::default())),
        )
        .await;
        for r in results {
            r.expect("append");
        }
    });
}

/// The stored size of one writer event (its JSON body), for the like-for-like reference.
/// Bytes of the body column the writer stores for one of these messages
/// (the envelope in binary, see migration 0005).
fn writer_row_bytes(s: &WriterSetup) -> usize {
    let AppendRequest { change, .. } = message(s);
    let Change::Message { envelope, .. } = change else {
        unreachable!("a message")
    };
    envelope.to_stored().expect("stored form").len()
}

struct Raw {
    _dir: tempfile::TempDir,
    conn: Connection,
    next: i64,
    row: Vec<u8>,
}

fn raw_setup(row_bytes: usize) -> Raw {
    let dir = tempfile::tempdir().expect("temp dir");
    let conn = Connection::open(dir.path().join("raw.sqlite3")).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("full");
    conn.execute_batch(
        // The plainest table: rows appended in rowid order, no index.
        "CREATE TABLE rows (id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL, \
         seq INTEGER NOT NULL, body BLOB NOT NULL) STRICT",
    )
    .expect("table");
    Raw {
        _dir: dir,
        conn,
        next: 0,
        row: vec![b'x'; row_bytes],
    }
}

fn insert_batch(raw: &mut Raw, n: usize) {
    let tx = raw.conn.transaction().expect("begin");
    {
        let mut stmt = tx
            .prepare_cached("INSERT INTO rows (chat_id, seq, body) VALUES (1, ?1, ?2)")
            .expect("prepare");
        for _ in 0..n {
            raw.next += 1;
            stmt.execute(params![raw.next, raw.row]).expect("insert");
        }
    }
    tx.commit().expect("commit");
}

/// Rows and seconds of back-to-back batches for `time`.
fn run_for(time: Duration, n: usize, batch: &mut dyn FnMut()) -> (usize, f64) {
    let started = Instant::now();
    let mut rows = 0usize;
    while started.elapsed() < time {
        batch();
        rows += n;
    }
    (rows, started.elapsed().as_secs_f64())
}

/// Rows per second of each contender, measured in interleaved slices so
/// that a change in the machine's disk or CPU load (neighbours) hits all of
/// them alike.
#[allow(clippy::cast_precision_loss)] // row counts stay far below 2^52
fn interleaved(
    slice: Duration,
    rounds: usize,
    n: usize,
    contenders: &mut [&mut dyn FnMut()],
) -> Vec<f64> {
    let mut totals = vec![(0usize, 0.0f64); contenders.len()];
    for _ in 0..rounds {
        for (total, batch) in totals.iter_mut().zip(contenders.iter_mut()) {
            let (rows, secs) = run_for(slice, n, *batch);
            total.0 += rows;
            total.1 += secs;
        }
    }
    totals
        .into_iter()
        .map(|(rows, secs)| rows as f64 / secs.max(1e-9))
        .collect()
}

fn bench(c: &mut Criterion) {
    let setup = writer_setup();
    let like_writer = writer_row_bytes(&setup);
    let mut raw_1k = raw_setup(1024);
    let mut raw_like = raw_setup(like_writer);
    let mut group = c.benchmark_group("writer");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    for n in BATCHES {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("append", n), &n, |b, &n| {
            b.iter(|| append_batch(&setup, n));
        });
        group.bench_with_input(BenchmarkId::new("sqlite_insert_1k", n), &n, |b, &n| {
            b.iter(|| insert_batch(&mut raw_1k, n));
        });
        group.bench_with_input(
            BenchmarkId::new("sqlite_insert_like_writer", n),
            &n,
            |b, &n| b.iter(|| insert_batch(&mut raw_like, n)),
        );
    }
    group.finish();

    // The ratio the issue asks for, measured side by side in this run.
    let (slice, rounds) = if std::env::args().any(|a| a == "--bench") {
        (Duration::from_millis(200), 10)
    } else {
        (Duration::from_millis(10), 1) // `cargo test` runs benches once, quickly
    };
    eprintln!(
        "\nwriter vs SQLite batched inserts (rows/s, interleaved {rounds} x {} ms; writer rows are {like_writer} B, the binary envelope):",
        slice.as_millis()
    );
    for n in BATCHES {
        let rates = interleaved(
            slice,
            rounds,
            n,
            &mut [
                &mut || append_batch(&setup, n),
                &mut || insert_batch(&mut raw_1k, n),
                &mut || insert_batch(&mut raw_like, n),
            ],
        );
        let (writer, raw, like) = (rates[0], rates[1], rates[2]);
        eprintln!(
            "  batch {n:>3}: writer {writer:>9.0}  sqlite 1 KiB {raw:>9.0} (ratio {:.2})  sqlite {like_writer} B {like:>9.0} (ratio {:.2})",
            writer / raw,
            writer / like
        );
    }
    let stats = setup.writer.stats();
    eprintln!(
        "  writer transactions {}, mean batch {:.1}, largest {}",
        stats.transactions,
        stats.mean_batch(),
        stats.largest_batch
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
