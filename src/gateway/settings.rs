//! What every connection shares: the gateway's settings, the hub's address,
//! the socket caps and the outbound byte budget (app data).

use crate::config::Config;
use crate::gateway::hub::Hub;
use crate::gateway::transport::{budget, caps};
use actix::Addr;
use std::sync::Arc;
use std::time::Duration;

/// The gateway's settings, from `websocket.*` and `limits.max_frame_bytes`.
#[derive(Debug, Clone)]
pub struct WsSettings {
    pub auth_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub client_timeout: Duration,
    pub outbound_queue: usize,
    pub max_invalid_frames: u32,
    pub max_frame_bytes: usize,
    pub room_idle: Duration,
    /// `websocket.outbound_queue_bytes`: one connection's byte budget.
    pub outbound_queue_bytes: usize,
    /// `websocket.outbound_total_bytes`: the whole server's.
    pub outbound_total_bytes: usize,
    /// `limits.max_reply_bytes`.
    pub max_reply_bytes: usize,
    pub caps: caps::CapLimits,
    /// `limits.max_resume_chats`.
    pub max_resume_chats: usize,
    /// `websocket.max_frames_per_sec` and `websocket.frame_burst`.
    pub max_frames_per_sec: u32,
    pub frame_burst: u32,
}

impl WsSettings {
    pub fn from_config(config: &Config) -> Self {
        let ws = &config.websocket;
        Self {
            auth_timeout: Duration::from_secs(ws.auth_timeout_secs),
            heartbeat_interval: Duration::from_secs(ws.heartbeat_interval_secs),
            client_timeout: Duration::from_secs(ws.client_timeout_secs),
            outbound_queue: ws.outbound_queue,
            max_invalid_frames: ws.max_invalid_frames,
            max_frame_bytes: config.limits.max_frame_bytes,
            room_idle: Duration::from_secs(ws.room_idle_secs),
            outbound_queue_bytes: ws.outbound_queue_bytes,
            outbound_total_bytes: ws.outbound_total_bytes,
            max_reply_bytes: config.limits.max_reply_bytes,
            caps: caps::CapLimits {
                per_session: config.limits.max_sockets_per_session,
                per_user: config.limits.max_sockets_per_user,
                per_ip: config.limits.max_sockets_per_ip,
            },
            max_resume_chats: config.limits.max_resume_chats,
            max_frames_per_sec: ws.max_frames_per_sec,
            frame_burst: ws.frame_burst,
        }
    }
}

/// What every connection shares (app data).
pub struct Gateway {
    pub hub: Addr<Hub>,
    pub settings: WsSettings,
    /// Open sockets per IP, account and session.
    pub caps: Arc<caps::SocketCaps>,
    /// Outbound bytes per connection and in all.
    pub budget: Arc<budget::OutboundBudget>,
}

impl Gateway {
    pub fn new(hub: Addr<Hub>, settings: WsSettings) -> Self {
        Self {
            hub,
            caps: caps::SocketCaps::new(settings.caps),
            budget: budget::OutboundBudget::new(
                settings.outbound_queue_bytes,
                settings.outbound_total_bytes,
            ),
            settings,
        }
    }
}
