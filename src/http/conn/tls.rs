//! TLS over the connection's socket: a rustls session driven by the socket's
//! readiness, so the connection driver runs over it as it runs over TCP.
//! The handshake runs on the worker, bounded by the head timeout.
//!
//! The session sits behind a mutex that is held only inside a call, never
//! across an await: the driver watches for the client while it writes.
//! Plaintext may wait in the session while the socket has nothing to read,
//! so readiness asks the session first.

use std::io::{self, BufRead, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::BytesMut;
use rustls::{ServerConfig, ServerConnection};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::io::Transport;
use super::{head_limit, serve};
use crate::http::state::ServerState;

/// Handshakes, then serves the connection as [`serve`] does. A client that
/// does not finish its handshake within the head timeout, or that does not
/// speak TLS, is disconnected.
pub(crate) async fn serve_tls(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
    state: Arc<ServerState>,
    mut stop: watch::Receiver<bool>,
    live: mpsc::Sender<()>,
) {
    let Ok(session) = ServerConnection::new(config) else {
        return;
    };
    let mut stream = TlsStream {
        tcp,
        session: Mutex::new(session),
    };
    let limit = head_limit(&state);
    let shaken = tokio::select! {
        done = tokio::time::timeout(limit, stream.handshake()) => matches!(done, Ok(Ok(()))),
        _ = stop.changed() => false,
    };
    if !shaken {
        let _ = AsyncWriteExt::shutdown(&mut stream.tcp).await;
        return;
    }
    serve(stream, state, stop, live).await;
}

/// A TLS session over a non-blocking socket.
pub(crate) struct TlsStream {
    tcp: TcpStream,
    session: Mutex<ServerConnection>,
}

/// The socket as rustls reads and writes it: without blocking, a read that
/// comes up short noted (the socket is drained).
struct Socket<'a> {
    tcp: &'a TcpStream,
    short: bool,
}

impl Read for Socket<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.tcp.try_read(out)?;
        self.short |= n < out.len();
        Ok(n)
    }
}

impl Write for Socket<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.tcp.try_write(data)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.tcp.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsStream {
    /// Nothing panics while it is held; the session stays whole.
    fn session(&self) -> MutexGuard<'_, ServerConnection> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn socket(&self) -> Socket<'_> {
        Socket {
            tcp: &self.tcp,
            short: false,
        }
    }

    async fn handshake(&self) -> io::Result<()> {
        loop {
            self.flush().await?;
            if !self.session().is_handshaking() {
                return Ok(());
            }
            self.tcp.readable().await?;
            let mut session = self.session();
            match self.receive(&mut session) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes out what the session has to send, waiting for the socket.
    async fn flush(&self) -> io::Result<()> {
        loop {
            if self.send_now(&mut self.session())? {
                return Ok(());
            }
            self.tcp.writable().await?;
        }
    }

    /// Writes what the session has to send as far as the socket takes it
    /// now. `Ok(true)`: all of it.
    fn send_now(&self, session: &mut ServerConnection) -> io::Result<bool> {
        while session.wants_write() {
            match session.write_tls(&mut self.socket()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads TLS records from the socket, without blocking, and processes
    /// them. `Ok(0)`: the socket reached its end. A short read forgets the
    /// socket's readiness, as the plain TCP read does.
    fn receive(&self, session: &mut ServerConnection) -> io::Result<usize> {
        let mut socket = self.socket();
        let mut got = 0;
        let read = self.tcp.try_io(Interest::READABLE, || {
            got = session.read_tls(&mut socket)?;
            if got > 0 && socket.short {
                Err(io::Error::from(io::ErrorKind::WouldBlock))
            } else {
                Ok(got)
            }
        });
        let got = match read {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => got,
            other => other?,
        };
        if got > 0 {
            let processed = session.process_new_packets();
            // Alerts, tickets and key updates go out as far as the socket
            // takes them now; what it does not is sent with the next write.
            let _ = self.send_now(session);
            if let Err(e) = processed {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        Ok(got)
    }

    /// Whether a read would find something without the socket: plaintext
    /// waiting in the session, or its end.
    fn has_pending(&self) -> bool {
        match self.session().reader().fill_buf() {
            Ok(_) => true,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        }
    }
}

/// Moves plaintext waiting in the session into the buffer. `Ok(0)`: the
/// client closed the session (with close_notify, or by ending the socket).
fn take_plaintext(
    session: &mut ServerConnection,
    buf: &mut Option<BytesMut>,
    want: usize,
) -> io::Result<usize> {
    let mut reader = session.reader();
    let mut taken = 0;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(taken),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && taken > 0 => return Ok(taken),
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(taken);
        }
        let b = buf.get_or_insert_with(|| BytesMut::with_capacity(want));
        if taken == 0 && b.capacity() - b.len() < want {
            b.reserve(want + 256);
        }
        let n = chunk.len().min(b.capacity() - b.len());
        if n == 0 {
            return Ok(taken);
        }
        b.extend_from_slice(&chunk[..n]);
        reader.consume(n);
        taken += n;
    }
}

impl Transport for TlsStream {
    async fn readable(&self) -> io::Result<()> {
        if self.has_pending() {
            return Ok(());
        }
        self.tcp.readable().await
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.has_pending() {
            return Poll::Ready(Ok(()));
        }
        self.tcp.poll_read_ready(cx)
    }

    fn read_some(&self, buf: &mut Option<BytesMut>, want: usize) -> io::Result<usize> {
        let mut session = self.session();
        loop {
            match take_plaintext(&mut session, buf, want) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            if self.receive(&mut session)? == 0 {
                return Ok(0);
            }
        }
    }

    async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        loop {
            let sent_all = {
                let mut session = self.session();
                while !data.is_empty() {
                    let n = session.writer().write(data)?;
                    if n == 0 {
                        // The session's buffer is full: send some first.
                        break;
                    }
                    data = &data[n..];
                }
                self.send_now(&mut session)?
            };
            match (sent_all, data.is_empty()) {
                (true, true) => return Ok(()),
                (true, false) => {}
                (false, _) => self.tcp.writable().await?,
            }
        }
    }

    async fn shutdown(&mut self) {
        {
            let mut session = self.session();
            session.send_close_notify();
            // Only what the socket takes now: a client that reads nothing
            // cannot hold the connection open.
            let _ = self.send_now(&mut session);
        }
        let _ = AsyncWriteExt::shutdown(&mut self.tcp).await;
    }
}
