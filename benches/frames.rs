//! WebSocket frame decode and encode for a 1:1 message of 1 KiB: what the
//! gateway does per `message.send` (parse the command frame, then the typed
//! request) and per delivery (serialize the event frame, once per room).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrogram_core::b64::B64;
use ferrogram_core::ids::{ChatId, Seq, Timestamp, UserId};
use ferrogram_core::proto::chat::{ChatEvent, EventBody};
use ferrogram_core::proto::ws::{ClientFrame, ServerFrame};
use ferrogram_core::proto::{Envelope, EnvelopeHeader, KeyWrap, SendMessageRequest};
use ferrogram_server::gateway::transport::frame::{encode, parse_client_frame};
use std::time::Duration;

/// A structurally valid envelope for two members (RSA-3072 sized fields).
fn envelope(body_bytes: usize) -> Envelope {
    Envelope {
        version: 1,
        header: EnvelopeHeader {
            chat_id: ChatId(42),
            sender: UserId(1),
            client_msg_id: "bench-0001".to_owned(),
            sent_at: Timestamp::from_millis(1_700_000_000_000),
        },
        sender_key: B64(vec![7; 32]),
        nonce: B64(vec![1; 12]),
        body: B64(vec![2; body_bytes]),
        wraps: (1..=2)
            .map(|u| KeyWrap {
                user_id: UserId(u),
                key_id: B64(vec![3; 32]),
                wrapped_key: B64(vec![4; 384]),
            })
            .collect(),
        signature: B64(vec![5; 384]),
        wrap_proof: None,
    }
}

fn bench(c: &mut Criterion) {
    // 1 KiB of text, padded to 64 bytes and sealed with a 16-byte tag.
    let envelope = envelope(1024 + 64 + 16);
    let request = SendMessageRequest {
        chat_id: ChatId(42),
        client_msg_id: "bench-0001".to_owned(),
        envelope: envelope.clone(),
    };
    let command = serde_json::json!({
        "type": "command", "id": 1, "command": "message.send", "body": request,
    })
    .to_string();
    let event = ChatEvent {
        chat_id: ChatId(42),
        seq: Seq::new(1000),
        sender: UserId(1),
        at: Timestamp::from_millis(1_700_000_000_000),
        body: EventBody::Message {
            client_msg_id: "bench-0001".to_owned(),
            envelope,
        },
    };
    let mut group = c.benchmark_group("frames");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(command.len() as u64));
    group.bench_function("decode_send_command", |b| {
        b.iter(|| {
            let ClientFrame::Command { body, .. } = parse_client_frame(&command).expect("frame")
            else {
                unreachable!("a command frame")
            };
            serde_json::from_value::<SendMessageRequest>(body).expect("request")
        });
    });
    group.bench_function("encode_event", |b| {
        b.iter(|| {
            encode(&ServerFrame::Event {
                event: event.clone(),
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
