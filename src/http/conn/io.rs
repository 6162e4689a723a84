//! Reads and writes on the socket, driven by its readiness.

use std::io;

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
