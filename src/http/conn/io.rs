//! Reads and writes on the socket, driven by its readiness. `Transport` is
//! what the connection driver needs of its byte stream; the plain TCP socket
//! is one (the functions below), TLS over it another (`tls.rs`).

use std::future::Future;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

/// A connection's byte stream, driven by readiness: every method but
/// `shutdown` takes `&self`, so the driver may watch for the client while
/// it writes.
pub(crate) trait Transport: Send + Sync + 'static {
    /// Resolves when a read may find bytes (or the end of the stream).
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// `readable` as a poll: `Ready` when a read may find something.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// One non-blocking read into the buffer, with room for `want` bytes:
    /// `Ok(0)` at the end of the stream, `WouldBlock` when nothing came yet.
    fn read_some(&self, buf: &mut Option<BytesMut>, want: usize) -> io::Result<usize>;
    /// Writes everything, waiting for the socket as needed.
    fn write_all(&self, data: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
    /// Ends the server's side of the stream.
    fn shutdown(&mut self) -> impl Future<Output = ()> + Send;
    /// Reads what has already arrived, without waiting; true when something
    /// did (a stopping server serves a request that is there rather than
    /// close the connection under it).
    fn read_now(&self, buf: &mut Option<BytesMut>, want: usize) -> bool {
        matches!(self.read_some(buf, want), Ok(n) if n > 0)
    }
}

impl Transport for TcpStream {
    #[inline]
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        TcpStream::readable(self)
    }

    #[inline]
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }

    #[inline]
    fn read_some(&self, buf: &mut Option<BytesMut>, want: usize) -> io::Result<usize> {
        tcp_read_some(self, buf, want)
    }

    #[inline]
    fn write_all(&self, data: &[u8]) -> impl Future<Output = io::Result<()>> + Send {
        tcp_write_all(self, data)
    }

    async fn shutdown(&mut self) {
        let _ = AsyncWriteExt::shutdown(self).await;
    }

    fn read_now(&self, buf: &mut Option<BytesMut>, want: usize) -> bool {
        tcp_read_now(self, buf, want)
    }
}

/// One non-blocking read from the transport (see [`Transport::read_some`]).
#[inline]
pub(super) fn read_some<T: Transport>(
    io: &T,
    buf: &mut Option<BytesMut>,
    want: usize,
) -> io::Result<usize> {
    io.read_some(buf, want)
}

/// Writes everything to the transport (see [`Transport::write_all`]); the
/// transport's own future, with no state machine of its own around it.
#[inline]
pub(super) fn write_all<'a, T: Transport>(
    io: &'a T,
    data: &'a [u8],
) -> impl Future<Output = io::Result<()>> + Send + 'a {
    io.write_all(data)
}

/// Whether a read found the connection closed (or broken); a read that
/// would block found nothing yet.
pub(super) fn ended(read: &io::Result<usize>) -> bool {
    match read {
        Ok(n) => *n == 0,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

/// One non-blocking read into the buffer, with room for `want` bytes.
fn tcp_read_some(io: &TcpStream, buf: &mut Option<BytesMut>, want: usize) -> io::Result<usize> {
    let b = buf.get_or_insert_with(|| BytesMut::with_capacity(want));
    if b.capacity() - b.len() < want {
        // A little more than asked: when everything expected has arrived the
        // read comes up short, and that tells us the socket is drained.
        b.reserve(want + 256);
    }
    // At most `want` and the little more: a buffer with more room from
    // before still brings one read's worth (the batches to JS count on it).
    let room = (b.capacity() - b.len()).min(want + 256);
    // A short read drained the socket: the readiness is forgotten at once
    // rather than learnt from one more read that would block (tokio's own
    // `poll_read` does the same). The read runs inside `try_io`, so what is
    // forgotten is the readiness seen before it: data that arrives after
    // the read (with another worker thread running the I/O driver) keeps
    // its newer readiness and wakes the connection.
    let mut got = 0;
    let read = io.try_io(Interest::READABLE, || {
        got = io.try_read_buf(&mut (&mut *b).limit(room))?;
        if got > 0 && got < room {
            Err(io::Error::from(io::ErrorKind::WouldBlock))
        } else {
            Ok(got)
        }
    });
    match read {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        other => other,
    }
}

/// Writes everything, waiting for the socket as needed.
async fn tcp_write_all(io: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match io.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => io.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads and discards until the client closes its side or `within` passes:
/// closing a socket with unread bytes resets the connection, and a reset can
/// destroy an answer the client has not read yet.
pub(super) async fn linger<T: Transport>(io: &T, within: Duration) {
    let mut sink: Option<BytesMut> = None;
    let _ = tokio::time::timeout(within, async {
        loop {
            if io.readable().await.is_err() {
                return;
            }
            match io.read_some(&mut sink, 1024) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
            if let Some(b) = sink.as_mut() {
                b.clear();
            }
        }
    })
    .await;
}

/// [`Transport::read_now`] on plain TCP: past tokio's readiness too, which
/// lags the socket until the runtime next polls for events.
fn tcp_read_now(io: &TcpStream, buf: &mut Option<BytesMut>, want: usize) -> bool {
    match tcp_read_some(io, buf, want) {
        Ok(n) => return n > 0,
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => return false,
        Err(_) => {}
    }
    // The same socket through a second descriptor, read directly.
    let Ok(fd) = io.as_fd().try_clone_to_owned() else {
        return false;
    };
    let mut socket = std::net::TcpStream::from(fd);
    let mut chunk = vec![0u8; want];
    match socket.read(&mut chunk) {
        Ok(n) if n > 0 => {
            buf.get_or_insert_with(BytesMut::new)
                .extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    }
}
