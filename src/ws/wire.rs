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

use actix_http::ws::{CloseReason, Codec, Frame, Message, OpCode, Parser, ProtocolError};
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
    let (tx, rx) = mpsc::channel(BODY_QUEUE);
    let response = response.message_body(BodyStream::new(OutgoingBody { rx }).boxed())?;
    Ok((
        response.into(),
        FrameWriter { tx },
        Incoming {
            payload,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(max_frame_bytes),
            ended: false,
        },
    ))
}

/// The response body: the queued chunks, as they are.
struct OutgoingBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Stream for OutgoingBody {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|chunk| chunk.map(Ok))
    }
}

/// Writes frames to the connection. Dropping it (or [`FrameWriter::close`])
/// ends the response once what is queued has been written.
pub struct FrameWriter {
    tx: mpsc::Sender<Bytes>,
}

impl FrameWriter {
    /// A text frame; `text` itself is not copied.
    pub async fn text(&mut self, text: &ByteString) -> Result<(), Closed> {
        let payload = text.as_bytes().clone();
        self.send(frame_header(OpCode::Text, payload.len())).await?;
        self.send(payload).await
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
        self.tx.send(chunk).await.map_err(|_| Closed)
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

/// The client's messages, decoded from the request's payload.
pub struct Incoming {
    payload: web::Payload,
    buf: BytesMut,
    codec: Codec,
    /// The payload ended or failed: what is buffered is decoded, then the
    /// stream ends.
    ended: bool,
}

impl Incoming {
    fn next_buffered(&mut self) -> Result<Option<Message>, ProtocolError> {
        let Some(frame) = self.codec.decode(&mut self.buf)? else {
            return Ok(None);
        };
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
