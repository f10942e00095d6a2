//! Envelope seal and open for chats of 1, 10 and 100 members.
//!
//! Sealing wraps the content key with RSA-OAEP once per member and signs
//! once (RSA-PSS); opening verifies the signature and unwraps one key. Two
//! RSA identities are generated up front and shared by the members (key
//! generation costs seconds; the per-member work is the same for any key).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrogram_core::crypto::envelope::{open_payload, seal_payload};
use ferrogram_core::crypto::Identity;
use ferrogram_core::ids::{ChatId, Timestamp, UserId};
use ferrogram_core::proto::{EnvelopeHeader, MessagePayload, PublicKeys};
use std::time::Duration;

fn header() -> EnvelopeHeader {
    EnvelopeHeader {
        chat_id: ChatId(1),
        sender: UserId(1),
        client_msg_id: "bench-0001".to_owned(),
        sent_at: Timestamp::from_millis(1_700_000_000_000),
    }
}

fn bench(c: &mut Criterion) {
    let mut rng = rand::rng();
    let identities: Vec<Identity> = (0..2)
        .map(|_| Identity::generate(&mut rng).expect("key generation"))
        .collect();
    let payload = MessagePayload::text("x".repeat(1024));
    let mut group = c.benchmark_group("envelope");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for members in [1usize, 10, 100] {
        // Member 1 (the sender) holds identity 0, the others alternate.
        let recipients: Vec<(UserId, PublicKeys)> = (0..members)
            .map(|i| (UserId(i as i64 + 1), identities[i % 2].public_keys()))
            .collect();
        group.throughput(Throughput::Elements(members as u64));
        group.bench_with_input(BenchmarkId::new("seal", members), &members, |b, _| {
            b.iter(|| {
                seal_payload(&payload, header(), &identities[0], &recipients, &mut rng)
                    .expect("seal")
            });
        });
        let envelope =
            seal_payload(&payload, header(), &identities[0], &recipients, &mut rng).expect("seal");
        let reader = UserId(members as i64);
        let reader_identity = &identities[(members - 1) % 2];
        let sender_keys = identities[0].public_keys();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("open", members), &members, |b, _| {
            b.iter(|| {
                open_payload(&envelope, reader, reader_identity, &sender_keys).expect("open")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
