//! While the handler runs: its request body fed from the connection, and
//! the client watched for going away.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::mpsc;
use tokio::time::Sleep;

use super::io::{ended, read_some, Transport};
use super::{BODY_READ, FIRST_READ, WHOLE_BODY};
use crate::http::body::BodyMsg;
use crate::http::h1::{self, Decoded, Decoder, Refusal};

/// How long an unread request body is read and discarded after an early
/// answer, so the client (still sending) receives it.
pub(super) const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The request body still on the wire.
pub(super) struct BodyIn {
    pub(super) decoder: Decoder,
    /// To the handler, while it wants the body.
    pub(super) tx: Option<mpsc::Sender<BodyMsg>>,
    /// The framing broke: the connection cannot carry another request.
    pub(super) broken: bool,
    /// Bytes of the body taken off the wire so far, its framing included.
    pub(super) received: u64,
}

/// What one round of connection I/O achieved while the handler runs.
pub(super) enum Step {
    /// A chunk went to the handler, or the body ended, or the handler let go.
    Progress,
    /// The connection broke (or the client closed it with nothing owed).
    PeerGone,
    /// The request body is malformed, or ended before its framing did: the
    /// request is refused with this answer, unless the answer has begun.
    Refused(Refusal),
}

/// Awaits the answer to a request that came whole with its head (the usual
/// case), reading whatever the client sends meanwhile; `None`: the client
/// went away. The client is watched for through the socket's read
/// readiness, which needs no waiter registered and dropped per request.
pub(super) fn answer_or_gone<'a, T: Transport, F: Future>(
    io: &'a T,
    buf: &'a mut Option<BytesMut>,
    mut answering: Pin<&'a mut F>,
) -> impl Future<Output = Option<F::Output>> + 'a {
    std::future::poll_fn(move |cx| loop {
        if let Poll::Ready(answer) = answering.as_mut().poll(cx) {
            return Poll::Ready(Some(answer));
        }
        if buf.as_ref().is_some_and(|b| b.len() >= h1::MAX_HEAD) {
            // Enough buffered; the next read comes after the answer.
            return Poll::Pending;
        }
        match io.poll_read_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(None),
            Poll::Ready(Ok(())) => {
                if ended(&read_some(io, buf, FIRST_READ)) {
                    return Poll::Ready(None);
                }
            }
        }
    })
}

/// How awaiting the answer to a request whose body is still arriving ended.
pub(super) enum Awaited<T> {
    Answer(T),
    /// The connection broke, or the client closed it.
    PeerGone,
    /// The request is refused with this answer, and the connection closes.
    Refused(&'static [u8]),
}

/// Awaits the answer to a request whose body is still arriving, feeding the
/// body to the handler as it comes, within the request timeout.
pub(super) async fn answer_while_receiving<T: Transport, F: Future>(
    io: &T,
    buf: &mut Option<BytesMut>,
    mut answering: Pin<&mut F>,
    body_in: &mut Option<BodyIn>,
    late: &mut Option<Pin<Box<Sleep>>>,
) -> Awaited<F::Output> {
    loop {
        tokio::select! {
            biased;
            answer = answering.as_mut() => return Awaited::Answer(answer),
            step = io_step(io, buf, body_in) => match step {
                Step::Progress => {}
                Step::PeerGone => return Awaited::PeerGone,
                // The body is malformed or cut short: the parser's answer.
                Step::Refused(refusal) => return Awaited::Refused(refusal.answer()),
            },
            // Too slow: the client gets a 408.
            () = timer(late), if receiving(body_in) => return Awaited::Refused(h1::REQUEST_TIMEOUT),
        }
    }
}

/// While the handler runs: feeds its body, or (body done or unwanted)
/// watches for the client closing. Cancel-safe: bytes read stay in `buf`.
pub(super) async fn io_step<T: Transport>(
    io: &T,
    buf: &mut Option<BytesMut>,
    body_in: &mut Option<BodyIn>,
) -> Step {
    let Some(body) = body_in.as_mut() else {
        return watch_close(io, buf).await;
    };
    let Some(tx) = body.tx.as_ref() else {
        return watch_close(io, buf).await;
    };
    let Ok(permit) = tx.reserve().await else {
        // The handler dropped the body: the rest is drained after the answer.
        body.tx = None;
        return Step::Progress;
    };
    loop {
        // A small body of known length goes over whole, in one piece.
        let whole = match body.decoder {
            Decoder::Length(n) if n <= WHOLE_BODY as u64 => Some(n as usize),
            _ => None,
        };
        let have = buf.as_ref().map_or(0, BytesMut::len);
        let wait_for_all = whole.is_some_and(|n| have < n);
        if let Some(b) = buf.as_mut().filter(|_| !wait_for_all) {
            let before = b.len();
            let decoded = body.decoder.decode(b);
            body.received += (before - b.len()) as u64;
            match decoded {
                Ok(Decoded::Data(data)) => {
                    permit.send(BodyMsg::Data(data));
                    return Step::Progress;
                }
                Ok(Decoded::Done) => {
                    permit.send(BodyMsg::End);
                    body.tx = None;
                    return Step::Progress;
                }
                Ok(Decoded::NeedMore) => {}
                Err(refusal) => {
                    permit.send(BodyMsg::Error);
                    body.tx = None;
                    body.broken = true;
                    return Step::Refused(refusal);
                }
            }
        }
        let want = match whole {
            Some(n) => n - have.min(n),
            None => body.decoder.wanted().clamp(FIRST_READ, BODY_READ),
        };
        let step = match io.readable().await {
            Err(_) => Step::PeerGone,
            // The client ended its side before the body's end: the request
            // is incomplete, which Node and hyper answer with 400.
            Ok(()) => match read_some(io, buf, want) {
                Ok(0) => Step::Refused(Refusal::Bad),
                read if ended(&read) => Step::PeerGone,
                _ => continue,
            },
        };
        permit.send(BodyMsg::Error);
        body.tx = None;
        body.broken = true;
        return step;
    }
}

/// Reads whatever the client sends while nothing is expected of it
/// (pipelined requests stay buffered, up to a head's worth) until it closes.
pub(super) async fn watch_close<T: Transport>(io: &T, buf: &mut Option<BytesMut>) -> Step {
    loop {
        if buf.as_ref().is_some_and(|b| b.len() >= h1::MAX_HEAD) {
            // Enough buffered; the next read comes after the answer.
            std::future::pending::<()>().await;
        }
        if io.readable().await.is_err() {
            return Step::PeerGone;
        }
        if ended(&read_some(io, buf, FIRST_READ)) {
            return Step::PeerGone;
        }
    }
}

/// What is left of the request body once the answer is out: nobody's now,
/// and drained when the connection is to carry another request (`keep`).
/// `Ok(true)`: it may.
pub(super) async fn finish_body<T: Transport>(
    io: &T,
    buf: &mut Option<BytesMut>,
    mut rest: BodyIn,
    keep: bool,
) -> io::Result<bool> {
    rest.tx = None;
    if rest.broken {
        return Ok(false);
    }
    if !rest.decoder.is_done() {
        if !keep {
            return Ok(false);
        }
        // Boxed, as the streaming loop: a rare path.
        let drained = Box::pin(tokio::time::timeout(
            DRAIN_TIMEOUT,
            drain(io, buf, &mut rest.decoder),
        ));
        if !matches!(drained.await, Ok(Ok(true))) {
            return Ok(false);
        }
    }
    Ok(keep)
}

/// Reads and discards the rest of a request body. `Ok(true)`: it ended and
/// the connection is in step for the next request.
pub(super) async fn drain<T: Transport>(
    io: &T,
    buf: &mut Option<BytesMut>,
    decoder: &mut Decoder,
) -> io::Result<bool> {
    loop {
        if let Some(b) = buf.as_mut() {
            loop {
                match decoder.decode(b) {
                    Ok(Decoded::Data(_)) => {}
                    Ok(Decoded::Done) => return Ok(true),
                    Ok(Decoded::NeedMore) => break,
                    Err(_) => return Ok(false),
                }
            }
        }
        io.readable().await?;
        match read_some(io, buf, decoder.wanted().clamp(FIRST_READ, BODY_READ)) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether the request body is still being received for the handler.
pub(super) fn receiving(body_in: &Option<BodyIn>) -> bool {
    body_in.as_ref().is_some_and(|b| b.tx.is_some())
}

/// Fires when the request timeout has passed; never without one.
pub(super) async fn timer(late: &mut Option<Pin<Box<Sleep>>>) {
    match late.as_mut() {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}
