//! An answer on the wire: whole in one write when small, or streamed.

use std::io;
use std::pin::Pin;

use bytes::BytesMut;
use http::response;
use http_body_util::BodyExt;
use tokio::time::Sleep;

use super::io::{write_all, Transport};
use super::receive::{io_step, receiving, timer, BodyIn, Step};
use super::AnswerTo;
use crate::http::h1::{self, BodyOut};
use crate::http::stream::ChunkStream;

/// Whole answers up to this size go out with their head in one write.
pub(super) const COPY_LIMIT: usize = 64 * 1024;

/// The room an answer's head takes on the wire, near enough.
pub(super) fn head_room(parts: &response::Parts) -> usize {
    parts
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + 128
}

/// A whole answer encoded for the wire.
pub(super) struct WholeOut {
    /// The head, followed by the body when it is small enough to share the
    /// head's write.
    pub(super) out: Vec<u8>,
    /// The body is still to be written, on its own.
    pub(super) body_apart: bool,
    pub(super) keep_alive: bool,
}

/// Encodes a whole answer's head and, when it goes in the same write, its
/// body.
pub(super) fn encode_whole(parts: &response::Parts, bytes: &[u8], to: &AnswerTo<'_>) -> WholeOut {
    let copy = bytes.len() <= COPY_LIMIT;
    let mut out = Vec::with_capacity(head_room(parts) + if copy { bytes.len() } else { 0 });
    let how = h1::encode_head(
        &mut out,
        parts.status,
        &parts.headers,
        BodyOut::Known(bytes.len() as u64),
        to.method,
        to.version,
        to.reuse,
    );
    if how.body && copy {
        out.extend_from_slice(bytes);
    }
    WholeOut {
        out,
        body_apart: how.body && !copy,
        keep_alive: how.keep_alive,
    }
}

/// Writes a streamed answer's head and body, adding the bytes written to
/// `sent`. `Ok(true)`: as far as the answer goes, the connection may carry
/// another request.
#[allow(clippy::too_many_arguments)]
pub(super) async fn write_streamed<T: Transport>(
    io: &T,
    buf: &mut Option<BytesMut>,
    body_in: &mut Option<BodyIn>,
    late: &mut Option<Pin<Box<Sleep>>>,
    parts: &response::Parts,
    stream: ChunkStream,
    to: &AnswerTo<'_>,
    sent: &mut u64,
) -> io::Result<bool> {
    let mut out = Vec::with_capacity(head_room(parts));
    let how = h1::encode_head(
        &mut out,
        parts.status,
        &parts.headers,
        BodyOut::Streamed,
        to.method,
        to.version,
        to.reuse,
    );
    write_all(io, &out).await?;
    *sent += out.len() as u64;
    if how.body {
        // Boxed: the streaming loop's state is not part of every
        // exchange's (most answers are whole).
        let streamed = Box::pin(stream_answer(
            io,
            buf,
            body_in,
            late,
            stream,
            how.chunked,
            sent,
        ));
        if !streamed.await? {
            return Ok(false);
        }
    }
    Ok(how.keep_alive)
}

/// Writes a streamed answer's body. `Ok(false)`: the connection ends (the
/// client went away, or the request body came too slowly).
pub(super) async fn stream_answer<T: Transport>(
    io: &T,
    buf: &mut Option<BytesMut>,
    body_in: &mut Option<BodyIn>,
    late: &mut Option<Pin<Box<Sleep>>>,
    mut stream: ChunkStream,
    chunked: bool,
    sent: &mut u64,
) -> io::Result<bool> {
    let mut out = Vec::new();
    loop {
        tokio::select! {
            biased;
            frame = stream.frame() => match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    if data.is_empty() {
                        continue;
                    }
                    if chunked {
                        out.clear();
                        h1::encode_chunk(&mut out, &data);
                        write_all(io, &out).await?;
                        *sent += out.len() as u64;
                    } else {
                        write_all(io, &data).await?;
                        *sent += data.len() as u64;
                    }
                }
                Some(Err(never)) => match never {},
                None => {
                    if chunked {
                        write_all(io, h1::LAST_CHUNK).await?;
                        *sent += h1::LAST_CHUNK.len() as u64;
                    }
                    return Ok(true);
                }
            },
            // A duplex exchange: the request body keeps flowing while the
            // answer streams.
            // Once the answer has begun, a broken body only ends the
            // connection (Node's server does the same).
            step = io_step(io, buf, body_in) => {
                if !matches!(step, Step::Progress) {
                    return Ok(false);
                }
            }
            // The answer has begun: a body that is too slow only ends the
            // connection.
            () = timer(late), if receiving(body_in) => return Ok(false),
        }
    }
}
