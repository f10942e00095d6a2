//! `Connection`: one actor per WebSocket connection.
//!
//! Incoming frames arrive as a stream ([`crate::gateway::transport::wire::Incoming`]); outgoing
//! ones go to the connection's writer task through bounded queues
//! ([`crate::gateway::transport::writer`]). The actor authenticates the first frame, runs
//! commands through the same `Registry::dispatch` as REST (concurrently, at
//! most [`MAX_COMMANDS_IN_FLIGHT`]), sends heartbeats, drives `resume`, and
//! receives the events the hub and the rooms route to it.
//!
//! Flow control ([`crate::gateway::transport::input`]): reading the client's frames pauses
//! while half the outbound queue is taken (in frames or in bytes, see
//! [`crate::gateway::transport::budget`]) or the most commands run, so a client's own
//! requests never overflow its queue; events pushed to it do, when it does
//! not read, and then it is disconnected as too slow. How many commands may
//! run at once also shrinks with the size of the replies the connection gets
//! ([`Connection::window`]), so that the replies of the commands running when
//! reading pauses fit in the other half of the byte budget.
//!
//! Caps ([`crate::gateway::transport::caps`]): the socket holds its place under the per-IP
//! cap from the upgrade and takes its places under the per-account and
//! per-session caps when its `auth` frame is accepted; all are given back as
//! soon as it closes.

use crate::gateway::messages::{
    CloseConnection, ConnId, ConnectionEnded, ConnectionLink, DeliverEvent, DeliverLive,
    RegisterConnection,
};
use crate::gateway::resume::{Offer, Release, ResumeGate};
use crate::gateway::settings::Gateway;
use crate::gateway::transport::budget::OverBudget;
use crate::gateway::transport::caps::CapGuard;
use crate::gateway::transport::frame::{
    encode, error_frame, parse_client_frame, Assembled, CloseCause, FragmentError, FrameError,
    Reassembler, Strikes,
};
use crate::gateway::transport::input::{FrameRate, InputGate};
use crate::gateway::transport::writer::{CloseRequest, Outbound, Outbox, PushError};
use crate::reply::{new_request_id, public_error};
use actix::prelude::*;
use actix_http::ws::{Message, ProtocolError};
use actix_web::web;
use bytestring::ByteString;
use ferrogram_core::command::{AuthSession, Credentials, DispatchEnv, Registry, Request};
use ferrogram_core::ids::{ChatId, Origin, Seq, Timestamp};
use ferrogram_core::proto::ws::{ClientFrame, ResumePosition, ServerFrame};
use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_handlers::HandlerCtx;
use ferrogram_storage::chats::{self, PageRange, Visible};
use ferrogram_storage::StorageError;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Commands of one connection running at once (at most a quarter of the
/// outbound queue): reading pauses until one finishes.
pub const MAX_COMMANDS_IN_FLIGHT: usize = 32;

/// Events read from storage per backlog page (also at most
/// `limits.max_reply_bytes` of them).
const RESUME_PAGE: u32 = 200;

/// How often a connection checks its token again. Commands in between run
/// as the session checked last (no database read per command); a revoked
/// session or deleted account is closed at once by the hub anyway, so this
/// catches expiry and a change of the verified flag.
pub const REVALIDATE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

enum Stage {
    /// Waiting for the `auth` frame.
    AwaitingAuth,
    /// The token is being checked; frames wait (`ctx.wait`).
    Authenticating,
    Ready(Authed),
}

struct Authed {
    session: AuthSession,
    /// Checked again every `REVALIDATE_INTERVAL`. Never logged.
    token: String,
}

/// One chat of a running `resume`.
struct ResumeStep {
    chat_id: ChatId,
    /// Read the backlog after this seq (every page checks membership).
    after: Seq,
}

/// Per-connection state of a `resume` in progress.
struct ResumeRun {
    queue: VecDeque<ResumeStep>,
    positions: Vec<ChatId>,
}

pub struct Connection {
    conn: ConnId,
    ip: IpAddr,
    /// This socket's places under the connection caps (IP, then account and
    /// session once authenticated); given back on close.
    places: Vec<CapGuard>,
    /// The largest recent reply, decaying (for [`Connection::window`]).
    largest_reply: usize,
    handlers: web::Data<HandlerCtx>,
    registry: web::Data<Registry<HandlerCtx>>,
    gateway: web::Data<Gateway>,
    stage: Stage,
    outbox: Outbox,
    last_heard: Instant,
    reassembler: Reassembler,
    strikes: Strikes,
    commands_in_flight: usize,
    max_in_flight: usize,
    input: Arc<InputGate>,
    waiting_for_room: bool,
    /// Frames this client may still send before reading pauses.
    frame_rate: FrameRate,
    /// A timer to resume reading after a [`FrameRate`] pause is running.
    rate_timer: bool,
    gate: ResumeGate<ByteString>,
    resume: Option<ResumeRun>,
    closing: bool,
}

impl Connection {
    pub fn new(
        ip: IpAddr,
        ip_place: CapGuard,
        handlers: web::Data<HandlerCtx>,
        registry: web::Data<Registry<HandlerCtx>>,
        gateway: web::Data<Gateway>,
        outbox: Outbox,
        input: Arc<InputGate>,
    ) -> Self {
        let settings = &gateway.settings;
        let max_in_flight = (outbox.capacity() / 4).clamp(1, MAX_COMMANDS_IN_FLIGHT);
        let frame_rate = FrameRate::new(
            settings.max_frames_per_sec,
            settings.frame_burst,
            Instant::now(),
        );
        Self {
            conn: ConnId::next(),
            ip,
            places: vec![ip_place],
            // Until replies show otherwise, assume they may be large: a few
            // commands at once at first (see `window`).
            largest_reply: settings.outbound_queue_bytes / 8,
            reassembler: Reassembler::new(settings.max_frame_bytes),
            strikes: Strikes::new(settings.max_invalid_frames),
            // Live events held during a resume: as many as the outbound
            // queue takes, in frames and in bytes.
            gate: ResumeGate::with_byte_budget(
                settings.outbound_queue,
                settings.outbound_queue_bytes,
            ),
            handlers,
            registry,
            gateway,
            stage: Stage::AwaitingAuth,
            outbox,
            last_heard: Instant::now(),
            commands_in_flight: 0,
            max_in_flight,
            input,
            waiting_for_room: false,
            frame_rate,
            rate_timer: false,
            resume: None,
            closing: false,
        }
    }

    fn authed(&self) -> Option<&Authed> {
        match &self.stage {
            Stage::Ready(authed) => Some(authed),
            _ => None,
        }
    }

    /// Queues a frame the server pushes on its own (events); a full queue
    /// (in frames or bytes, or the server's total budget spent) disconnects
    /// the client as too slow.
    fn push(&mut self, ctx: &mut Context<Self>, frame: Outbound) {
        let result = self.outbox.push(frame);
        self.after_push(ctx, result);
    }

    /// Queues an answer to something the client sent (a reply, a pong, an
    /// error frame): counted in bytes but never refused for them; reading
    /// pauses instead (see `update_input`).
    fn answer(&mut self, ctx: &mut Context<Self>, text: ByteString) {
        let result = self.outbox.push_reply(text);
        self.after_push(ctx, result);
    }

    fn after_push(&mut self, ctx: &mut Context<Self>, result: Result<(), PushError>) {
        let why = match result {
            Ok(()) => return self.update_input(ctx),
            Err(PushError::Closed) => return ctx.stop(),
            Err(PushError::Full) => "outbound queue full",
            Err(PushError::OverBudget(OverBudget::Connection)) => {
                "outbound queue over its byte budget"
            }
            Err(PushError::OverBudget(OverBudget::Server)) => {
                "the server's outbound byte budget is spent"
            }
        };
        tracing::info!(
            conn = %self.conn,
            user_id = ?self.authed().map(|a| a.session.user_id),
            queued_bytes = self.outbox.meter().used(),
            "client too slow: {why}; disconnecting"
        );
        self.close(ctx, CloseCause::TooSlow, None);
    }

    /// Commands this connection may run at once: at most `max_in_flight`,
    /// and only as many of its recent largest reply as fill half the byte
    /// budget (the other half is what reading pauses at).
    fn window(&self) -> usize {
        let half = self.outbox.meter().budget() / 2;
        (half / self.largest_reply.max(1)).clamp(1, self.max_in_flight)
    }

    fn note_reply(&mut self, len: usize) {
        self.largest_reply = len.max(self.largest_reply - self.largest_reply / 16);
    }

    /// The most bytes the connection may have queued and still read
    /// commands: half its budget, or nothing while the whole server is over
    /// half its total.
    fn readable_bytes(&self) -> usize {
        let meter = self.outbox.meter();
        if meter.server().is_busy() {
            0
        } else {
            meter.budget() / 2
        }
    }

    /// Pauses or resumes reading the client's frames (see the module docs).
    fn update_input(&mut self, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        let half = self.outbox.capacity() / 2;
        let bytes = self.readable_bytes();
        let queue_busy = self.outbox.free() < half || self.outbox.meter().used() > bytes;
        let rate_wait = self.frame_rate.wait(Instant::now());
        let busy =
            queue_busy || self.commands_in_flight >= self.window() || rate_wait > Duration::ZERO;
        if busy != self.input.is_paused() {
            if busy {
                self.input.pause();
            } else {
                self.input.resume();
            }
        }
        if rate_wait > Duration::ZERO && !self.rate_timer {
            self.rate_timer = true;
            ctx.run_later(rate_wait, |session, ctx| {
                session.rate_timer = false;
                session.update_input(ctx);
            });
        }
        if queue_busy && !self.waiting_for_room {
            self.waiting_for_room = true;
            let room = self.outbox.wait_for_room(half, bytes);
            ctx.spawn(room.into_actor(self).map(|_, session, ctx| {
                session.waiting_for_room = false;
                session.update_input(ctx);
            }));
        }
    }

    fn send(&mut self, ctx: &mut Context<Self>, frame: &ServerFrame) {
        self.push(ctx, Outbound::Text(encode(frame)));
    }

    fn send_error(&mut self, ctx: &mut Context<Self>, error: ApiError) {
        self.answer(ctx, error_frame(public_error(error)));
    }

    /// Closes the connection: an optional error frame, then the close frame
    /// with `cause`'s code and reason. The actor stops at once; the writer
    /// finishes the close on its own.
    fn close(&mut self, ctx: &mut Context<Self>, cause: CloseCause, error: Option<ApiError>) {
        if self.closing {
            return;
        }
        self.closing = true;
        // The socket no longer counts under the caps from here on.
        self.places.clear();
        tracing::debug!(conn = %self.conn, cause = cause.kind(), "closing websocket");
        self.outbox.close(CloseRequest {
            error_frame: error.map(|e| error_frame(public_error(e))),
            cause,
        });
        ctx.stop();
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        if self.last_heard.elapsed() > self.gateway.settings.client_timeout {
            self.close(ctx, CloseCause::IdleTimeout, None);
        } else {
            self.push(ctx, Outbound::Ping);
        }
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        let frame = match parse_client_frame(text) {
            Ok(frame) => frame,
            Err(e) => return self.on_invalid(ctx, e),
        };
        match (&self.stage, frame) {
            (Stage::AwaitingAuth, ClientFrame::Auth { token }) => self.authenticate(ctx, token),
            (Stage::AwaitingAuth | Stage::Authenticating, _) => self.close(
                ctx,
                CloseCause::AuthFailed,
                Some(ApiError::new(
                    ErrorCode::Unauthorized,
                    "the first frame must be auth",
                )),
            ),
            (Stage::Ready(_), ClientFrame::Auth { .. }) => {
                self.strikes.reset();
                self.send_error(
                    ctx,
                    ApiError::new(ErrorCode::InvalidFrame, "already authenticated"),
                );
            }
            (Stage::Ready(_), ClientFrame::Command { id, command, body }) => {
                self.strikes.reset();
                self.command(ctx, id, command, body, text.len());
            }
            (Stage::Ready(_), ClientFrame::Resume { positions }) => {
                self.strikes.reset();
                self.start_resume(ctx, positions);
            }
            (Stage::Ready(_), ClientFrame::Ping) => {
                self.strikes.reset();
                self.answer(ctx, encode(&ServerFrame::Pong));
            }
        }
    }

    fn on_invalid(&mut self, ctx: &mut Context<Self>, error: FrameError) {
        tracing::debug!(conn = %self.conn, kind = error.kind(), "invalid frame");
        if !matches!(self.stage, Stage::Ready(_)) {
            return self.close(ctx, CloseCause::AuthFailed, Some(error.to_api_error()));
        }
        if self.strikes.strike() {
            return self.close(
                ctx,
                CloseCause::TooManyInvalidFrames,
                Some(error.to_api_error()),
            );
        }
        self.send_error(ctx, error.to_api_error());
    }

    fn authenticate(&mut self, ctx: &mut Context<Self>, token: String) {
        self.stage = Stage::Authenticating;
        let handlers = self.handlers.clone();
        let check = async move {
            let result = handlers.authenticate(&token).await;
            (result, token)
        };
        // `wait`: no further frame is handled until the token is checked.
        ctx.wait(
            check
                .into_actor(self)
                .map(|(result, token), session, ctx| match result {
                    Ok(auth) => session.authenticated(ctx, auth, token),
                    Err(e) => {
                        let cause = if e.http_status() >= 500 {
                            CloseCause::InternalError
                        } else {
                            CloseCause::AuthFailed
                        };
                        session.close(ctx, cause, Some(e));
                    }
                }),
        );
    }

    /// Checks the connection's token again (see [`REVALIDATE_INTERVAL`]).
    fn revalidate(&mut self, ctx: &mut Context<Self>) {
        let Some(authed) = self.authed() else { return };
        let token = authed.token.clone();
        let handlers = self.handlers.clone();
        let check = async move { handlers.authenticate(&token).await };
        ctx.spawn(check.into_actor(self).map(|result, session, ctx| {
            let Stage::Ready(authed) = &mut session.stage else {
                return;
            };
            match result {
                Ok(auth) if auth.session_id == authed.session.session_id => authed.session = auth,
                Ok(_) => {}
                // A storage hiccup is not the client's fault: keep going.
                Err(e) if e.http_status() >= 500 => {}
                Err(e) => session.close(ctx, CloseCause::ConnectionEnded, Some(e)),
            }
        }));
    }

    fn authenticated(&mut self, ctx: &mut Context<Self>, auth: AuthSession, token: String) {
        if self.closing {
            return;
        }
        match self
            .gateway
            .caps
            .acquire_account(auth.user_id, &auth.session_id)
        {
            Ok(places) => self.places.extend(places),
            Err(over) => {
                tracing::info!(
                    conn = %self.conn,
                    user_id = %auth.user_id,
                    "websocket refused: {}",
                    over.message()
                );
                return self.close(
                    ctx,
                    CloseCause::TooManyConnections,
                    Some(ApiError::new(ErrorCode::TooManyConnections, over.message())),
                );
            }
        }
        tracing::debug!(
            conn = %self.conn,
            user_id = %auth.user_id,
            session_id = %auth.session_id,
            "websocket authenticated"
        );
        self.gateway.hub.do_send(RegisterConnection {
            conn: self.conn,
            user: auth.user_id,
            session_id: auth.session_id.clone(),
            link: ConnectionLink::of(&ctx.address()),
        });
        self.send(
            ctx,
            &ServerFrame::Ready {
                user_id: auth.user_id,
                session_id: auth.session_id.clone(),
                server_time: Timestamp::now(),
            },
        );
        self.stage = Stage::Ready(Authed {
            session: auth,
            token,
        });
    }

    fn command(
        &mut self,
        ctx: &mut Context<Self>,
        id: u64,
        command: String,
        body: serde_json::Value,
        frame_len: usize,
    ) {
        let Some(authed) = self.authed() else { return };
        // No body is an empty one, as for a REST call without a body.
        let body = if body.is_null() {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            body
        };
        if self.commands_in_flight >= self.max_in_flight {
            // Reading pauses before this; kept as a guard.
            let error = ApiError {
                code: ErrorCode::RateLimited,
                message: "too many commands at once on this connection".to_owned(),
                retry_after: Some(1),
            };
            return self.reply(ctx, id, Err(error));
        }
        // The size REST would see: the body as sent. The whole frame is an
        // upper bound, exact enough unless it is near the limit.
        let body_len = if frame_len <= self.handlers.max_request_bytes() {
            frame_len
        } else {
            serde_json::to_string(&body).map_or(frame_len, |s| s.len())
        };
        let request = Request {
            command,
            ip: self.ip,
            request_id: new_request_id(),
            body,
            body_len,
        };
        let session = authed.session.clone();
        self.commands_in_flight += 1;
        self.update_input(ctx);
        let handlers = self.handlers.clone();
        let registry = self.registry.clone();
        let origin = Origin(self.conn.0);
        let dispatch = async move {
            registry
                .dispatch(
                    &handlers,
                    request,
                    Credentials::Session {
                        session,
                        origin: Some(origin),
                    },
                )
                .await
        };
        ctx.spawn(dispatch.into_actor(self).map(move |result, session, ctx| {
            session.commands_in_flight -= 1;
            session.reply(ctx, id, result);
            session.update_input(ctx);
        }));
    }

    fn reply(
        &mut self,
        ctx: &mut Context<Self>,
        id: u64,
        result: Result<serde_json::Value, ApiError>,
    ) {
        if self.closing {
            return;
        }
        let (body, error) = match result {
            Ok(body) => (Some(body), None),
            Err(e) => (None, Some(public_error(e))),
        };
        let session_gone = error
            .as_ref()
            .is_some_and(|e| matches!(e.code, ErrorCode::Unauthorized | ErrorCode::SessionExpired));
        let mut text = encode(&ServerFrame::Reply { id, body, error });
        let max = self.gateway.settings.max_reply_bytes;
        if text.len() > max {
            tracing::info!(
                conn = %self.conn,
                id,
                bytes = text.len(),
                "reply over limits.max_reply_bytes; answering reply_too_large"
            );
            let error = ApiError::new(
                ErrorCode::ReplyTooLarge,
                format!("the reply would be larger than {max} bytes; ask for less"),
            );
            text = encode(&ServerFrame::Reply {
                id,
                body: None,
                error: Some(error),
            });
        }
        self.note_reply(text.len());
        self.answer(ctx, text);
        if session_gone {
            // The socket's own token no longer works (revoked, logged out,
            // expired): nothing more may reach this connection.
            self.close(ctx, CloseCause::ConnectionEnded, None);
        }
    }

    // ---- resume ----

    fn start_resume(&mut self, ctx: &mut Context<Self>, positions: Vec<ResumePosition>) {
        if self.resume.is_some() {
            return self.send_error(
                ctx,
                ApiError::new(ErrorCode::InvalidFrame, "a resume is already running"),
            );
        }
        let max_chats = self.gateway.settings.max_resume_chats;
        if positions.len() > max_chats {
            // Nothing is resumed: the client splits its resume into frames
            // of at most this many chats, each after the previous `resumed`.
            return self.send_error(
                ctx,
                ApiError::new(
                    ErrorCode::TooManyResumeChats,
                    format!("one resume frame names at most {max_chats} chats; send the rest after `resumed`"),
                ),
            );
        }
        let mut run = ResumeRun {
            queue: VecDeque::new(),
            positions: Vec::new(),
        };
        for position in positions {
            if position.seq < Seq::ZERO {
                self.send_error(
                    ctx,
                    ApiError::new(
                        ErrorCode::InvalidFrame,
                        format!(
                            "cannot resume chat {}: seq must be 0 or more",
                            position.chat_id
                        ),
                    ),
                );
                continue;
            }
            // Live events are held from now on, before anything is read. A
            // chat named twice is resumed once, from its first position.
            if self.gate.begin(position.chat_id) {
                run.positions.push(position.chat_id);
                run.queue.push_back(ResumeStep {
                    chat_id: position.chat_id,
                    after: position.seq,
                });
            }
        }
        self.resume = Some(run);
        self.next_resume_step(ctx);
    }

    fn next_resume_step(&mut self, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        let Some(run) = self.resume.as_mut() else {
            return;
        };
        let Some(step) = run.queue.pop_front() else {
            let chats = std::mem::take(&mut run.positions);
            self.resume = None;
            let positions = chats
                .into_iter()
                .filter_map(|chat_id| {
                    self.gate
                        .position(chat_id)
                        .map(|seq| ResumePosition { chat_id, seq })
                })
                .collect();
            return self.send(ctx, &ServerFrame::Resumed { positions });
        };
        let Some(authed) = self.authed() else { return };
        let user = authed.session.user_id;
        let storage = self.handlers.storage.clone();
        let bulk = self.outbox.bulk();
        let max_bytes = self.handlers.settings.max_reply_bytes;
        let page = read_and_send_page(storage, bulk, user, step.chat_id, step.after, max_bytes);
        ctx.spawn(page.into_actor(self).map(move |result, session, ctx| {
            session.resume_page_done(ctx, step.chat_id, result);
        }));
    }

    fn resume_page_done(
        &mut self,
        ctx: &mut Context<Self>,
        chat_id: ChatId,
        result: Result<PageOutcome, PageError>,
    ) {
        match result {
            Ok(PageOutcome { last_sent, more }) if more => {
                self.requeue_front(chat_id, last_sent);
            }
            Ok(PageOutcome { last_sent, .. }) => match self.gate.backlog_sent(chat_id, last_sent) {
                Release::Done(held) => {
                    for frame in held {
                        self.push(ctx, Outbound::Text(frame));
                    }
                }
                Release::ReadMore(after) => self.requeue_front(chat_id, after),
            },
            Err(PageError::WriterGone) => return ctx.stop(),
            Err(PageError::Refused(error)) => {
                for frame in self.gate.abort(chat_id) {
                    self.push(ctx, Outbound::Text(frame));
                }
                if let Some(run) = self.resume.as_mut() {
                    run.positions.retain(|c| *c != chat_id);
                }
                self.send_error(ctx, error);
            }
        }
        self.next_resume_step(ctx);
    }

    fn requeue_front(&mut self, chat_id: ChatId, after: Seq) {
        if let Some(run) = self.resume.as_mut() {
            run.queue.push_front(ResumeStep { chat_id, after });
        }
    }
}

/// The result of one backlog page.
struct PageOutcome {
    /// The last seq sent (or the start position if the page was empty).
    last_sent: Seq,
    /// A full page: read on.
    more: bool,
}

enum PageError {
    /// Not resumable: not a member, or storage failed (the error says which).
    Refused(ApiError),
    WriterGone,
}

/// Reads one page of a chat's backlog on the blocking pool and queues it on
/// the bulk queue, waiting for room there (a slow client paces its own resume).
/// The read is `message.history`'s ([`chats::visible_events`]): members only,
/// from their join on, each message with only the member's own key wrap, at
/// most [`RESUME_PAGE`] events and `max_bytes` of them.
async fn read_and_send_page(
    storage: ferrogram_storage::Storage,
    bulk: tokio::sync::mpsc::Sender<Outbound>,
    user: ferrogram_core::ids::UserId,
    chat_id: ChatId,
    after: Seq,
    max_bytes: usize,
) -> Result<PageOutcome, PageError> {
    let range = PageRange {
        before_seq: None,
        after_seq: Some(after),
        limit: RESUME_PAGE,
        max_bytes,
    };
    let read = storage
        .run(move |conn| -> Result<Visible, StorageError> {
            chats::visible_events(conn, chat_id, user, range)
        })
        .await;
    let (page, more) = match read {
        Ok(Visible::Page { events, more }) => (events, more),
        Ok(Visible::NotAMember | Visible::NoSuchChat) => {
            return Err(PageError::Refused(ApiError::new(
                ErrorCode::NotAMember,
                format!("cannot resume chat {chat_id}: not a member"),
            )))
        }
        Err(e) => {
            tracing::error!(error = %e, chat_id = %chat_id, "resume: cannot read the backlog");
            return Err(PageError::Refused(ApiError::new(
                ErrorCode::Internal,
                format!("cannot resume chat {chat_id} now; try again"),
            )));
        }
    };
    // Nothing older than the member's join is sent: an empty page ends at
    // the position asked for.
    let mut last_sent = after;
    for event in page {
        last_sent = event.seq;
        let frame = encode(&ServerFrame::Event { event });
        if bulk.send(Outbound::Text(frame)).await.is_err() {
            return Err(PageError::WriterGone);
        }
    }
    Ok(PageOutcome { last_sent, more })
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let settings = &self.gateway.settings;
        ctx.run_later(settings.auth_timeout, |session, ctx| {
            if !matches!(session.stage, Stage::Ready(_)) {
                session.close(
                    ctx,
                    CloseCause::AuthTimeout,
                    Some(ApiError::new(
                        ErrorCode::Unauthorized,
                        "no auth frame in time",
                    )),
                );
            }
        });
        ctx.run_interval(settings.heartbeat_interval, |session, ctx| {
            session.heartbeat(ctx);
        });
        ctx.run_interval(REVALIDATE_INTERVAL, |session, ctx| {
            session.revalidate(ctx);
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if matches!(self.stage, Stage::Ready(_)) {
            self.gateway
                .hub
                .do_send(ConnectionEnded { conn: self.conn });
        }
    }
}

impl StreamHandler<Result<Message, ProtocolError>> for Connection {
    fn handle(&mut self, item: Result<Message, ProtocolError>, ctx: &mut Self::Context) {
        if self.closing {
            return;
        }
        let message = match item {
            Ok(message) => message,
            Err(ProtocolError::Overflow) => {
                tracing::debug!(conn = %self.conn, "frame over the size limit");
                return self.close(
                    ctx,
                    CloseCause::FrameTooLarge,
                    Some(frame_too_large(&self.gateway)),
                );
            }
            Err(e) => {
                // Protocol errors describe framing, never the payload.
                tracing::debug!(conn = %self.conn, error = %e, "websocket protocol error");
                return self.close(ctx, CloseCause::ProtocolError, None);
            }
        };
        self.last_heard = Instant::now();
        self.frame_rate.take(self.last_heard);
        if self.frame_rate.wait(self.last_heard) > Duration::ZERO {
            self.update_input(ctx);
        }
        match message {
            Message::Text(text) => self.on_text(ctx, &text),
            Message::Binary(_) => self.on_invalid(ctx, FrameError::Binary),
            Message::Continuation(item) => match self.reassembler.push(item) {
                Ok(None) => {}
                Ok(Some(Assembled::Text(text))) => self.on_text(ctx, &text),
                Ok(Some(Assembled::Binary)) => self.on_invalid(ctx, FrameError::Binary),
                Err(FragmentError::TooLarge) => {
                    self.close(
                        ctx,
                        CloseCause::FrameTooLarge,
                        Some(frame_too_large(&self.gateway)),
                    );
                }
                Err(FragmentError::Malformed) => self.close(ctx, CloseCause::ProtocolError, None),
            },
            Message::Ping(payload) => self.push(ctx, Outbound::Pong(payload)),
            Message::Pong(_) | Message::Nop => {}
            Message::Close(_) => self.close(ctx, CloseCause::ClientClosed, None),
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

fn frame_too_large(gateway: &Gateway) -> ApiError {
    ApiError::new(
        ErrorCode::FrameTooLarge,
        format!(
            "frames are limited to {} bytes",
            gateway.settings.max_frame_bytes
        ),
    )
}

impl Handler<DeliverEvent> for Connection {
    type Result = ();

    fn handle(&mut self, msg: DeliverEvent, ctx: &mut Self::Context) {
        if self.closing || self.authed().is_none() {
            return;
        }
        if let Offer::Send(frame) = self.gate.offer(msg.chat_id, msg.seq, msg.frame) {
            self.push(ctx, Outbound::Text(frame));
        }
    }
}

impl Handler<DeliverLive> for Connection {
    type Result = ();

    fn handle(&mut self, msg: DeliverLive, ctx: &mut Self::Context) {
        if self.closing || self.authed().is_none() {
            return;
        }
        self.push(ctx, Outbound::Text(msg.frame));
    }
}

impl Handler<CloseConnection> for Connection {
    type Result = ();

    fn handle(&mut self, msg: CloseConnection, ctx: &mut Self::Context) {
        let error = match msg.cause {
            CloseCause::ConnectionEnded => Some(ApiError::new(
                ErrorCode::Unauthorized,
                "this session was revoked or logged out",
            )),
            CloseCause::AccountDeleted => Some(ApiError::new(
                ErrorCode::Unauthorized,
                "this account was deleted",
            )),
            _ => None,
        };
        self.close(ctx, msg.cause, error);
    }
}
