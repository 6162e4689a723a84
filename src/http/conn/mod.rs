//! One HTTP/1.x connection: reads request heads, feeds each request body to
//! the handler as it reads it, writes the answer, and keeps the connection
//! for the next request. Between requests a connection holds no buffer, so
//! an idle keep-alive connection costs little more than its socket.
//!
//! `receive`: the request body and the client while the handler runs;
//! `send`: the answer on the wire; `io`: the socket's reads and writes.

#![forbid(unsafe_code)]

mod io;
mod receive;
mod send;
mod tls;

use std::io as stdio;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use http::{Method, Version};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};

use self::io::{ended, linger, read_some, write_all, Transport};
use self::receive::{answer_or_gone, answer_while_receiving, finish_body, Awaited, BodyIn};
use self::send::{encode_whole, write_streamed};
pub(crate) use self::tls::serve_tls;
use super::answer::Body;
use super::body::RequestBody;
use super::compress::Encoded;
use super::h1::{self, Decoder, Framing, Head, Refusal};
use super::handler::handle;
use super::served::{self, Served};
use super::state::ServerState;

/// First read of a request: room for a typical head (and a small body).
const FIRST_READ: usize = 1024;

/// Most bytes of a request body read at once (one chunk to the handler), as
/// Node's 64 KiB socket reads: fewer, larger chunks cost the JS thread less
/// per megabyte (docs/performance.md, 2026-12-02 uploads).
const BODY_READ: usize = 64 * 1024;
// A read brings at most `BODY_READ` + 256 bytes (`io::tcp_read_some`), which
// the batches to JS leave room for.
const _: () = assert!(BODY_READ + 256 <= crate::wire::MAX_BODY_READ);

/// A body of known length up to this size goes to its handler whole, once
/// all of it has arrived; a longer one goes as it is read.
const WHOLE_BODY: usize = 16 * 1024;

/// A request head must arrive within this time of its first byte (Node's
/// `headersTimeout`), or the request timeout if that is shorter.
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a connection closed by a stopping server reads on for the
/// client's close, so that closing does not reset the connection under its
/// last answer (RFC 9112 9.6); within the server's grace.
const LINGER: Duration = Duration::from_secs(1);

/// Serves one connection until it closes, the server stops, or it idles out.
/// `_live` is held until this returns, so the server can wait for all
/// connections when it stops.
pub async fn serve<T: Transport>(
    mut io: T,
    state: Arc<ServerState>,
    mut stop: watch::Receiver<bool>,
    _live: mpsc::Sender<()>,
) {
    let _open = state.metrics.connection();
    let mut buf: Option<BytesMut> = None;
    let mut idle = state.keep_alive_timeout.map(IdleLimit::new);
    let head_limit = head_limit(&state);
    loop {
        let read = read_head(&io, &mut buf, &mut stop, idle.as_mut(), head_limit).await;
        let (head, started) = match read {
            Ok(Some(head)) => head,
            Ok(None) => break,
            Err(e) => {
                let _ = write_all(&io, e.answer()).await;
                served::refused_head(&state, e, buf.as_ref().map_or(0, BytesMut::len));
                break;
            }
        };
        match exchange(&io, &mut buf, &state, &stop, head, started).await {
            Ok(true) => {}
            Ok(false) | Err(_) => break,
        }
        if buf.as_ref().is_some_and(|b| b.is_empty()) {
            // Nothing of a next request yet: hold no buffer while idle.
            buf = None;
        }
    }
    io.shutdown().await;
    if *stop.borrow() {
        // Boxed: only a stopping server lingers.
        Box::pin(linger(&io, LINGER)).await;
    }
}

/// How long a request head may take to arrive: `HEAD_TIMEOUT`, or the
/// request timeout if that is shorter.
fn head_limit(state: &ServerState) -> Duration {
    state
        .request_timeout
        .map_or(HEAD_TIMEOUT, |t| t.min(HEAD_TIMEOUT))
}

/// How long a keep-alive connection may wait for its next request, kept with
/// one timer per connection rather than one per request: arming a timer takes
/// the runtime's timer lock, and on a runtime whose other timers are all idle
/// it also wakes the runtime's driver (a system call), for every request.
/// The timer is armed for the earliest moment the connection could idle out
/// and moved on only when it fires while the connection is (or was) busy.
struct IdleLimit {
    limit: Duration,
    timer: Pin<Box<Sleep>>,
}

impl IdleLimit {
    fn new(limit: Duration) -> Self {
        IdleLimit {
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }

    /// Resolves once the connection has been idle for the limit, counted
    /// from `since`.
    async fn expired(&mut self, since: Instant) {
        let due = since + self.limit;
        loop {
            self.timer.as_mut().await;
            if Instant::now() >= due {
                return;
            }
            self.timer.as_mut().reset(due);
        }
    }
}

/// Reads until a whole request head is buffered, with when its first bytes
/// came when that was before the last read (a head that came in one read
/// started just now). `Ok(None)`: the connection closed, idled out, or the
/// server is stopping. A head that is not whole within `limit` of its first
/// bytes is refused with 408, and one cut short by the client with 400, as
/// Node's server answers them.
async fn read_head<T: Transport>(
    io: &T,
    buf: &mut Option<BytesMut>,
    stop: &mut watch::Receiver<bool>,
    mut idle: Option<&mut IdleLimit>,
    limit: Duration,
) -> Result<Option<(Head, Option<Instant>)>, Refusal> {
    let mut deadline: Option<Instant> = None;
    loop {
        if let Some(b) = buf.as_mut().filter(|b| !b.is_empty()) {
            if let Some(head) = h1::parse_head(b)? {
                return Ok(Some((head, deadline.map(|due| due - limit))));
            }
        }
        if buf.as_ref().is_none_or(|b| b.is_empty()) {
            *buf = None;
            // Stopping: a request that has already arrived is served (its
            // answer closes the connection); an idle connection closes.
            if *stop.borrow() {
                if io.read_now(buf, FIRST_READ) {
                    continue;
                }
                return Ok(None);
            }
            let since = Instant::now();
            let idled_out = async {
                match idle.as_mut() {
                    Some(idle) => idle.expired(since).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ready = io.readable() => if ready.is_err() { return Ok(None) },
                // The next turn sees the stop (a dropped sender: gone too).
                changed = stop.changed() => if changed.is_err() { return Ok(None) } else { continue },
                () = idled_out => return Ok(None),
            }
        } else {
            let due = *deadline.get_or_insert_with(|| Instant::now() + limit);
            match tokio::time::timeout_at(due, io.readable()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Ok(None),
                Err(_) => return Err(Refusal::Timeout),
            }
        }
        let want = buf.as_ref().map_or(FIRST_READ, |b| b.len().max(FIRST_READ));
        match read_some(io, buf, want) {
            // The client ended its side in the middle of a head.
            Ok(0) if buf.as_ref().is_some_and(|b| !b.is_empty()) => return Err(Refusal::Bad),
            read if ended(&read) => return Ok(None),
            _ => {}
        }
    }
}

/// One request and its answer. `Ok(true)`: the connection may carry another.
async fn exchange<T: Transport>(
    io: &T,
    buf: &mut Option<BytesMut>,
    state: &Arc<ServerState>,
    stop: &watch::Receiver<bool>,
    head: Head,
    started: Option<Instant>,
) -> stdio::Result<bool> {
    let Head {
        request,
        framing,
        keep_alive,
        expect_continue,
        len,
    } = head;
    let mut served = Served::begin(state, request.method(), request.uri(), len);
    let method = request.method().clone();
    let version = request.version();
    let (parts, ()) = request.into_parts();
    // `compression`: the coding is chosen from the head, applied to the answer.
    let accepted = (state.compression.as_ref()).map(|c| c.accepted(&parts.method, &parts.headers));

    if expect_continue {
        // Node answers `expect: 100-continue` at once, before any handler.
        write_all(io, h1::CONTINUE).await?;
        served.sent += h1::CONTINUE.len() as u64;
    }
    let mut body_in: Option<BodyIn> = None;
    let body = request_body(framing, buf, &mut body_in);
    if let (None, Framing::Length(n)) = (&body_in, framing) {
        served.received += n;
    }
    let mut late = body_deadline(&body_in, state.request_timeout, started);

    let mut answering = Box::pin(handle(state, parts, body, &served.kind));
    let answer = if body_in.is_none() {
        match answer_or_gone(io, buf, answering.as_mut()).await {
            Some(answer) => answer,
            // Dropping the pending answer tells the handler its client is
            // gone.
            None => return Ok(false),
        }
    } else {
        let awaited =
            answer_while_receiving(io, buf, answering.as_mut(), &mut body_in, &mut late).await;
        served.received += body_in.as_ref().map_or(0, |b| b.received);
        match awaited {
            Awaited::Answer(answer) => answer,
            Awaited::PeerGone => return Ok(false),
            Awaited::Refused(refusal) => {
                // The handler is told its client is gone; the client gets the
                // refusal and the connection closes.
                drop(answering);
                let _ = write_all(io, refusal).await;
                served.refused(refusal);
                return Ok(false);
            }
        }
    };
    drop(answering);
    let answer = match (&state.compression, accepted) {
        (Some(compression), Some(accepted)) => match compression.encode(accepted, answer) {
            Encoded::Ready(answer) => answer,
            Encoded::Later(answer) => answer.await,
        },
        _ => answer,
    };

    let (parts, body) = answer.into_parts();
    served.answer(&parts);
    let to = AnswerTo {
        method: &method,
        version,
        reuse: reuse(keep_alive, stop, state, &body_in, buf),
    };
    // A whole answer is written here rather than in a step of its own: an
    // awaited step would add a state machine to every request's.
    let keep = match body {
        Body::Full(bytes) => {
            let whole = encode_whole(&parts, &bytes, &to);
            write_all(io, &whole.out).await?;
            served.sent += whole.out.len() as u64;
            if whole.body_apart {
                write_all(io, &bytes).await?;
                served.sent += bytes.len() as u64;
            }
            whole.keep_alive
        }
        Body::Stream(stream) => {
            let (from, sent) = (body_in.as_ref().map_or(0, |b| b.received), &mut served.sent);
            let keep = write_streamed(io, buf, &mut body_in, &mut late, &parts, stream, &to, sent);
            let keep = keep.await;
            // What arrived of a duplex body while the answer streamed.
            served.received += body_in.as_ref().map_or(0, |b| b.received) - from;
            keep?
        }
    };
    served.written();
    match body_in {
        Some(rest) => finish_body(io, buf, rest, keep).await,
        None => Ok(keep),
    }
}

/// Sets up the request body: whole when it came with the head (the common
/// case), otherwise fed from the connection as it arrives, through the
/// `BodyIn` it leaves in `body_in` (written in place: it is large).
fn request_body(
    framing: Framing,
    buf: &mut Option<BytesMut>,
    body_in: &mut Option<BodyIn>,
) -> RequestBody {
    match framing {
        Framing::Length(0) => RequestBody::empty(),
        Framing::Length(n) if buf.as_ref().is_some_and(|b| b.len() as u64 >= n) => {
            let bytes = buf
                .as_mut()
                .map(|b| b.split_to(n as usize).freeze())
                .unwrap_or_default();
            RequestBody::whole(bytes)
        }
        _ => {
            let (tx, rx) = mpsc::channel(1);
            *body_in = Some(BodyIn {
                decoder: Decoder::new(framing),
                tx: Some(tx),
                broken: false,
                received: 0,
            });
            let length = match framing {
                Framing::Length(n) => Some(n),
                Framing::Chunked => None,
            };
            RequestBody::incoming(rx, length)
        }
    }
}

/// When a body still to come is too late: the request timeout, counted from
/// the request's first bytes as Node counts it. Only then is a timer set up:
/// most bodies come with their head.
fn body_deadline(
    body_in: &Option<BodyIn>,
    limit: Option<Duration>,
    started: Option<Instant>,
) -> Option<Pin<Box<Sleep>>> {
    match (body_in, limit) {
        (Some(_), Some(limit)) => Some(Box::pin(tokio::time::sleep_until(
            started.unwrap_or_else(Instant::now) + limit,
        ))),
        _ => None,
    }
}

/// What an answer's head depends on besides the answer: the request's
/// method and version, and whether the connection may stay open.
struct AnswerTo<'a> {
    method: &'a Method,
    version: Version,
    reuse: h1::Reuse,
}

/// Whether the answer may offer the connection for another request (the
/// client allows it, the server is not stopping or has already read some of
/// the next request, the body's framing held), and for how long it may then
/// idle.
fn reuse(
    keep_alive: bool,
    stop: &watch::Receiver<bool>,
    state: &ServerState,
    body_in: &Option<BodyIn>,
    buf: &Option<BytesMut>,
) -> h1::Reuse {
    let go_on = !*stop.borrow() || read_ahead(body_in, buf);
    if keep_alive && go_on && !body_in.as_ref().is_some_and(|b| b.broken) {
        h1::Reuse::KeepAlive {
            idle_secs: state.keep_alive_timeout.map(|t| t.as_secs()),
        }
    } else {
        h1::Reuse::Close
    }
}

/// While the server stops: whether bytes of a next request (pipelined) are
/// already read, past this request's body. A request read is answered, not
/// dropped; the connection closes after the last answer.
fn read_ahead(body_in: &Option<BodyIn>, buf: &Option<BytesMut>) -> bool {
    body_in.as_ref().is_none_or(|b| b.decoder.is_done())
        && buf.as_ref().is_some_and(|b| !b.is_empty())
}
