//! The WebSocket connection's two directions on top of actix-http's frame
//! codec: the upgrade response, a stream of incoming messages, and a body
//! that writes outgoing frames.
//!
//! Written for the gateway instead of using actix-ws's `handle` because of
//! what a group message costs: an event frame (63 KB for 100 members) is
//! serialized once per room and shared by every recipient, but actix-ws
//! copied it into a fresh buffer per recipient to prepend the frame header.
//! Here the header (2-10 bytes) goes out as its own chunk and the payload as
//! the shared buffer itself. Incoming frames are decoded as actix-ws does:
//! masked client frames, a size limit, text as UTF-8.

use crate::gateway::transport::budget::Charge;
use actix_http::ws::{CloseReason, Codec, Frame, Item, Message, OpCode, Parser, ProtocolError};
use actix_web::body::{BodyStream, MessageBody};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{web, HttpRequest, HttpResponse};
use bytestring::ByteString;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio_util::codec::Decoder;

/// Chunks queued between the writer task and the response body; the writer
/// waits when they are full (a peer that does not read holds it up there).
const BODY_QUEUE: usize = 32;

/// The largest control frame payload (RFC 6455, 5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// The frame could not be queued: the connection is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Answers the upgrade request. Returns the response to send (its body is
/// the outgoing side), the writer for outgoing frames and the stream of
/// incoming messages, whose frames may be at most `max_frame_bytes`.
pub fn accept(
    req: &HttpRequest,
    payload: web::Payload,
    max_frame_bytes: usize,
) -> Result<(HttpResponse, FrameWriter, Incoming), actix_web::Error> {
    let mut response = actix_http::ws::handshake(req.head())?;
    let (tx, rx) = mpsc::channel::<Chunk>(BODY_QUEUE);
    let response = response.message_body(BodyStream::new(OutgoingBody { rx }).boxed())?;
    Ok((
        response.into(),
        FrameWriter { tx },
        Incoming {
            payload,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(max_frame_bytes),
            max_frame_bytes,
            fragmented: 0,
            ended: false,
        },
    ))
}

/// One chunk on its way to the response body, with the byte count of the
/// frame it ends (released once the HTTP layer took the chunk).
struct Chunk {
    bytes: Bytes,
    charge: Option<Charge>,
}

/// The response body: the queued chunks, as they are.
struct OutgoingBody {
    rx: mpsc::Receiver<Chunk>,
}

impl Stream for OutgoingBody {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|chunk| {
            chunk.map(|Chunk { bytes, charge }| {
                drop(charge);
                Ok(bytes)
            })
        })
    }
}

/// Writes frames to the connection. Dropping it (or [`FrameWriter::close`])
/// ends the response once what is queued has been written.
pub struct FrameWriter {
    tx: mpsc::Sender<Chunk>,
}

impl FrameWriter {
    /// A text frame; `text` itself is not copied. `charge` (its count in the
    /// outbound budget) is released when the HTTP layer takes the payload.
    pub async fn text(&mut self, text: &ByteString, charge: Option<Charge>) -> Result<(), Closed> {
        let payload = text.as_bytes().clone();
        self.send(frame_header(OpCode::Text, payload.len())).await?;
        self.send_charged(payload, charge).await
    }

    pub async fn ping(&mut self) -> Result<(), Closed> {
        self.control(OpCode::Ping, &[]).await
    }

    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), Closed> {
        self.control(OpCode::Pong, payload).await
    }

    /// The close frame; nothing can be written after it.
    pub async fn close(mut self, reason: Option<CloseReason>) -> Result<(), Closed> {
        let mut frame = BytesMut::new();
        Parser::write_close(&mut frame, reason, false);
        self.send(frame.freeze()).await
    }

    async fn control(&mut self, op: OpCode, payload: &[u8]) -> Result<(), Closed> {
        let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
        let mut frame = BytesMut::new();
        Parser::write_message(&mut frame, payload, op, true, false);
        self.send(frame.freeze()).await
    }

    async fn send(&mut self, chunk: Bytes) -> Result<(), Closed> {
        self.send_charged(chunk, None).await
    }

    async fn send_charged(&mut self, bytes: Bytes, charge: Option<Charge>) -> Result<(), Closed> {
        self.tx
            .send(Chunk { bytes, charge })
            .await
            .map_err(|_| Closed)
    }
}

/// The header of a final, unmasked (server to client) frame of `len` bytes.
fn frame_header(op: OpCode, len: usize) -> Bytes {
    let first = 0x80 | u8::from(op);
    let mut header = BytesMut::with_capacity(10);
    match len {
        0..=125 => header.extend_from_slice(&[first, len as u8]),
        126..=0xffff => {
            header.extend_from_slice(&[first, 126]);
            header.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            header.extend_from_slice(&[first, 127]);
            header.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    header.freeze()
}

/// What the start of a frame declares: its opcode nibble and payload length,
/// once the length bytes are there (the mask and payload need not be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DeclaredHeader {
    opcode: u8,
    len: u64,
}

fn peek_header(buf: &[u8]) -> Option<DeclaredHeader> {
    let (&first, &second) = (buf.first()?, buf.get(1)?);
    let len = match second & 0x7f {
        126 => u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)),
        127 => u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?),
        short => u64::from(short),
    };
    Some(DeclaredHeader {
        opcode: first & 0x0f,
        len,
    })
}

/// Refuses a frame by its header: a data frame over `max` (counting the
/// fragments already received when it continues a message), a control frame
/// over 125 bytes.
fn check_declared(
    header: DeclaredHeader,
    fragmented: usize,
    max: usize,
) -> Result<(), ProtocolError> {
    const CONTINUATION: u8 = 0x0;
    const TEXT: u8 = 0x1;
    const BINARY: u8 = 0x2;
    let max = max as u64;
    match header.opcode {
        CONTINUATION if (fragmented as u64).saturating_add(header.len) > max => {
            Err(ProtocolError::Overflow)
        }
        TEXT | BINARY if header.len > max => Err(ProtocolError::Overflow),
        op if op >= 0x8 && header.len > MAX_CONTROL_PAYLOAD as u64 => Err(
            ProtocolError::InvalidLength(usize::try_from(header.len).unwrap_or(usize::MAX)),
        ),
        _ => Ok(()),
    }
}

/// The client's messages, decoded from the request's payload.
///
/// Sizes are checked on the frame *header*: actix-http's codec compares a
/// frame with its `max_size` only once the whole frame is buffered, so a
/// header declaring 2^62 bytes followed by a slow stream of data would be
/// buffered without end. Here a data frame whose declared length (or the
/// running total of the fragmented message it continues) exceeds the limit
/// is refused as soon as its length bytes are in, and a control frame over
/// 125 bytes likewise; so `buf` never holds more than one frame within the
/// limit plus one read chunk.
pub struct Incoming {
    payload: web::Payload,
    buf: BytesMut,
    codec: Codec,
    max_frame_bytes: usize,
    /// Payload bytes of the fragmented message in progress (0 when none).
    fragmented: usize,
    /// The payload ended or failed: what is buffered is decoded, then the
    /// stream ends.
    ended: bool,
}

impl Incoming {
    fn next_buffered(&mut self) -> Result<Option<Message>, ProtocolError> {
        if let Some(header) = peek_header(&self.buf) {
            check_declared(header, self.fragmented, self.max_frame_bytes)?;
        }
        let Some(frame) = self.codec.decode(&mut self.buf)? else {
            return Ok(None);
        };
        if let Frame::Continuation(item) = &frame {
            self.fragmented = match item {
                Item::FirstText(b) | Item::FirstBinary(b) => b.len(),
                Item::Continue(b) => self.fragmented.saturating_add(b.len()),
                Item::Last(_) => 0,
            };
        }
        Ok(Some(match frame {
            Frame::Text(bytes) => ByteString::try_from(bytes)
                .map(Message::Text)
                .map_err(|e| {
                    ProtocolError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                })?,
            Frame::Binary(bytes) => Message::Binary(bytes),
            Frame::Ping(bytes) => Message::Ping(bytes),
            Frame::Pong(bytes) => Message::Pong(bytes),
            Frame::Close(reason) => Message::Close(reason),
            Frame::Continuation(item) => Message::Continuation(item),
        }))
    }
}

impl Stream for Incoming {
    type Item = Result<Message, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.next_buffered() {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => {}
                Err(e) => {
                    this.ended = true;
                    this.buf.clear();
                    return Poll::Ready(Some(Err(e)));
                }
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => this.buf.extend_from_slice(&bytes),
                Poll::Ready(Some(Err(e))) => {
                    this.ended = true;
                    this.buf.clear();
                    return Poll::Ready(Some(Err(ProtocolError::Io(std::io::Error::other(
                        e.to_string(),
                    )))));
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What actix-http's own encoder makes of a server frame.
    fn reference(op: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut frame = BytesMut::new();
        Parser::write_message(&mut frame, payload, op, true, false);
        frame.to_vec()
    }

    /// A masked client frame header declaring `len` bytes.
    fn client_header(first: u8, len: u64) -> Vec<u8> {
        let mut h = vec![first];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xffff => {
                h.push(0x80 | 0x7e);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 0x7f);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    #[test]
    fn a_header_is_judged_by_its_declared_length_alone() {
        let huge = client_header(0x81, 1 << 62);
        assert_eq!(peek_header(&huge[..9]), None, "length bytes incomplete");
        let header = peek_header(&huge[..10]).unwrap();
        assert_eq!(
            header,
            DeclaredHeader {
                opcode: 1,
                len: 1 << 62
            }
        );
        assert!(matches!(
            check_declared(header, 0, 1024),
            Err(ProtocolError::Overflow)
        ));
        let medium = peek_header(&client_header(0x82, 1025)).unwrap();
        assert!(check_declared(medium, 0, 1024).is_err());
        assert!(check_declared(medium, 0, 1025).is_ok());
        // a continuation counts what the message already has
        let cont = peek_header(&client_header(0x00, 600)).unwrap();
        assert!(check_declared(cont, 400, 1024).is_ok());
        assert!(check_declared(cont, 425, 1024).is_err());
        // control frames: at most 125 bytes whatever the limit
        let ping = peek_header(&client_header(0x89, 126)).unwrap();
        assert!(matches!(
            check_declared(ping, 0, 1 << 20),
            Err(ProtocolError::InvalidLength(126))
        ));
        let small = peek_header(&client_header(0x81, 5)).unwrap();
        assert_eq!(small.len, 5);
        assert!(check_declared(small, 0, 5).is_ok());
    }

    #[test]
    fn headers_match_the_reference_encoder_at_every_length_class() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = vec![b'a'; len];
            let mut ours = frame_header(OpCode::Text, len).to_vec();
            ours.extend_from_slice(&payload);
            assert_eq!(ours, reference(OpCode::Text, &payload), "length {len}");
        }
    }
}
