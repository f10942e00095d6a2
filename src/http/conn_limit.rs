//! The cap on open TCP connections per client IP address
//! (`limits.max_connections_per_ip`).
//!
//! Counted in `HttpServer::on_connect`, the first place a connection reaches
//! the server's code (for HTTPS: after its TLS handshake, which has its own
//! timeout in actix). An admitted connection carries a [`ConnSlot`] in its
//! connection data; the slot gives its place back when the connection's data
//! is dropped, that is when the connection ends. A connection over the cap is
//! shut down at once (`shutdown(2)` on its socket, so the worker reads EOF
//! and drops it before reading a byte): its descriptor is freed as soon as
//! possible, without a response to write to a client that may not read.

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use std::any::Any;
use std::collections::HashMap;
use std::net::{IpAddr, Shutdown};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Open connections per IP address, shared by every worker.
pub struct ConnLimiter {
    max_per_ip: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
    refused: AtomicU64,
}

/// One admitted connection's place (connection data); freed on drop.
struct ConnSlot {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.limiter.release(self.ip);
    }
}

impl ConnLimiter {
    pub fn new(max_per_ip: usize) -> Arc<ConnLimiter> {
        Arc::new(ConnLimiter {
            max_per_ip,
            open: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        })
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Open connections of `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.lock().get(&ip).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place for `ip`, or says there is none.
    fn try_acquire(&self, ip: IpAddr) -> bool {
        let mut open = self.lock();
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return false;
        }
        *count += 1;
        true
    }

    fn release(&self, ip: IpAddr) {
        let mut open = self.lock();
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }

    /// `on_connect` part: admits the connection (and keeps its slot in
    /// `data`), or shuts it down and returns false. A transport that is not
    /// TCP is admitted uncounted.
    pub fn admit(self: &Arc<Self>, conn: &dyn Any, data: &mut Extensions) -> bool {
        let tcp = if let Some(tcp) = conn.downcast_ref::<TcpStream>() {
            tcp
        } else if let Some(tls) = conn.downcast_ref::<TlsStream<TcpStream>>() {
            tls.get_ref().0
        } else {
            return true;
        };
        let Ok(peer) = tcp.peer_addr() else {
            // Already gone: nothing to count.
            return true;
        };
        let ip = peer.ip().to_canonical();
        if self.try_acquire(ip) {
            data.insert(ConnSlot {
                limiter: self.clone(),
                ip,
            });
            return true;
        }
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if refused.is_power_of_two() {
            tracing::warn!(
                %ip,
                refused,
                max = self.max_per_ip,
                "connections over limits.max_connections_per_ip are refused"
            );
        }
        // Not connected any more is fine: it is closing anyway.
        let _ = socket2::SockRef::from(tcp).shutdown(Shutdown::Both);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_ip_and_given_back() {
        let limiter = ConnLimiter::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.try_acquire(a));
        assert!(limiter.try_acquire(a));
        assert!(!limiter.try_acquire(a), "the third from one address");
        assert!(limiter.try_acquire(b), "another address is not affected");
        limiter.release(a);
        assert_eq!(limiter.open_from(a), 1);
        assert!(limiter.try_acquire(a));
        limiter.release(a);
        limiter.release(a);
        limiter.release(b);
        assert!(
            limiter.lock().is_empty(),
            "no entry stays for a quiet address"
        );
    }
}
