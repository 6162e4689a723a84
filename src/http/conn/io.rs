//! Reads and writes on the socket, driven by its readiness.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Whether a read found the connection closed (or broken); a read that
/// would block found nothing yet.
pub(super) fn ended(read: &io::Result<usize>) -> bool {
    match read {
        Ok(n) => *n == 0,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

/// One non-blocking read into the buffer, with room for `want` bytes.
pub(super) fn read_some(
    io: &TcpStream,
    buf: &mut Option<BytesMut>,
    want: usize,
) -> io::Result<usize> {
    let b = buf.get_or_insert_with(|| BytesMut::with_capacity(want));
    if b.capacity() - b.len() < want {
        // A little more than asked: when everything expected has arrived the
        // read comes up short, and that tells us the socket is drained.
        b.reserve(want + 256);
    }
    let room = b.capacity() - b.len();
    // A short read drained the socket: the readiness is forgotten at once
    // rather than learnt from one more read that would block (tokio's own
    // `poll_read` does the same). The read runs inside `try_io`, so what is
    // forgotten is the readiness seen before it: data that arrives after
    // the read (with another worker thread running the I/O driver) keeps
    // its newer readiness and wakes the connection.
    let mut got = 0;
    let read = io.try_io(Interest::READABLE, || {
        got = io.try_read_buf(b)?;
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
pub(super) async fn write_all(io: &TcpStream, mut data: &[u8]) -> io::Result<()> {
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
pub(super) async fn linger(io: &TcpStream, within: Duration) {
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(within, async {
        loop {
            if io.readable().await.is_err() {
                return;
            }
            match io.try_read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    })
    .await;
}

/// Reads what has already arrived, without waiting; true when something
/// did. Past tokio's readiness too, which lags the socket until the runtime
/// next polls for events: a stopping server serves a request that is there
/// rather than close the connection under it.
pub(super) fn read_now(io: &TcpStream, buf: &mut Option<BytesMut>, want: usize) -> bool {
    match read_some(io, buf, want) {
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
