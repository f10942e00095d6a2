//! A way to cut a connection whose peer stopped reading.
//!
//! actix-web has no write timeout: a client that never reads keeps its
//! connection (and the few buffers under it) forever, even after the gateway
//! gave up on it. So every accepted connection keeps a duplicate of its TCP
//! socket in its connection data (`HttpServer::on_connect`), and the WebSocket
//! writer holds a weak reference to it: after a close that the peer neither
//! answers nor reads, `shutdown(2)` ends the connection for good.
//!
//! The duplicate lives exactly as long as the connection's data (the HTTP
//! dispatcher and its requests), so it never keeps a finished connection
//! open; the weak reference then simply no longer upgrades.

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use actix_web::HttpRequest;
use std::any::Any;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::{Arc, Weak};

/// The duplicated socket of one connection (connection data).
#[derive(Clone)]
struct ConnSocket(Arc<std::net::TcpStream>);

/// A handle that can end a connection; empty when the transport is unknown.
#[derive(Clone, Default)]
pub struct SocketCutter(Weak<std::net::TcpStream>);

impl SocketCutter {
    /// The cutter for the connection `req` arrived on.
    pub fn of(req: &HttpRequest) -> Self {
        SocketCutter(
            req.conn_data::<ConnSocket>()
                .map_or_else(Weak::new, |s| Arc::downgrade(&s.0)),
        )
    }

    /// Ends the connection in both directions, if it is still open. The HTTP
    /// dispatcher then sees the error and drops the connection.
    pub fn cut(&self) {
        if let Some(socket) = self.0.upgrade() {
            // NotConnected just means the peer already went away.
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Ends the reading side only: the HTTP dispatcher reads EOF (and stops
    /// draining a request body) but can still write its answer.
    pub fn stop_reading(&self) {
        if let Some(socket) = self.0.upgrade() {
            let _ = socket.shutdown(Shutdown::Read);
        }
    }

    /// True while the connection exists.
    pub fn is_open(&self) -> bool {
        self.0.strong_count() > 0
    }
}

/// `HttpServer::on_connect` callback: keeps a duplicate of the TCP socket
/// under a plain or TLS connection.
pub fn on_connect(conn: &dyn Any, data: &mut Extensions) {
    let tcp = if let Some(tcp) = conn.downcast_ref::<TcpStream>() {
        tcp
    } else if let Some(tls) = conn.downcast_ref::<TlsStream<TcpStream>>() {
        tls.get_ref().0
    } else {
        return;
    };
    match tcp.as_fd().try_clone_to_owned() {
        Ok(fd) => {
            data.insert(ConnSocket(Arc::new(std::net::TcpStream::from(fd))));
        }
        // Out of file descriptors: the connection still works, only a stuck
        // peer cannot be cut off early.
        Err(e) => tracing::warn!(error = %e, "cannot duplicate a connection's socket"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn cutting_ends_the_connection_and_an_empty_cutter_does_nothing() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let dup = Arc::new(server.try_clone().unwrap());
        let cutter = SocketCutter(Arc::downgrade(&dup));
        assert!(cutter.is_open());
        cutter.cut();
        let mut buf = [0u8; 8];
        assert_eq!(client.read(&mut buf).unwrap(), 0, "the peer sees the end");
        drop(dup);
        assert!(!cutter.is_open());
        cutter.cut();
        SocketCutter::default().cut();
        drop(server);
    }
}
