//! One HTTP/1.x connection: reads request heads, feeds each request body to
//! the handler as it reads it, writes the answer, and keeps the connection
//! for the next request. Between requests a connection holds no buffer, so
//! an idle keep-alive connection costs little more than its socket.

#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use http::{response, Method, Version};
use http_body_util::BodyExt;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};

use super::answer::Body;
use super::body::{BodyMsg, RequestBody};
use super::h1::{self, BodyOut, Decoded, Decoder, Framing, Head, Refusal};
use super::handler::handle;
use super::state::ServerState;
use super::stream::ChunkStream;

/// First read of a request: room for a typical head (and a small body).
const FIRST_READ: usize = 1024;
/// Most bytes of a request body read at once (one chunk to the handler).
const BODY_READ: usize = 16 * 1024;
/// A request head must arrive within this time of its first byte (Node's
/// `headersTimeout`), or the request timeout if that is shorter.
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an unread request body is read and discarded after an early
/// answer, so the client (still sending) receives it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Whole answers up to this size go out with their head in one write.
const COPY_LIMIT: usize = 64 * 1024;

/// The request body still on the wire.
struct BodyIn {
    decoder: Decoder,
    /// To the handler, while it wants the body.
    tx: Option<mpsc::Sender<BodyMsg>>,
    /// The framing broke: the connection cannot carry another request.
    broken: bool,
}

/// What one round of connection I/O achieved while the handler runs.
enum Step {
    /// A chunk went to the handler, or the body ended, or the handler let go.
    Progress,
    /// The connection broke (or the client closed it with nothing owed).
    PeerGone,
    /// The request body is malformed, or ended before its framing did: the
    /// request is refused with this answer, unless the answer has begun.
    Refused(Refusal),
}

/// Serves one connection until it closes, the server stops, or it idles out.
/// `_live` is held until this returns, so the server can wait for all
/// connections when it stops.
pub async fn serve(
    io: TcpStream,
    state: Arc<ServerState>,
    mut stop: watch::Receiver<bool>,
    _live: mpsc::Sender<()>,
) {
    let mut buf: Option<BytesMut> = None;
    let mut idle = state.keep_alive_timeout.map(IdleLimit::new);
    let head_limit = state
        .request_timeout
        .map_or(HEAD_TIMEOUT, |t| t.min(HEAD_TIMEOUT));
    loop {
        let read = read_head(&io, &mut buf, &mut stop, idle.as_mut(), head_limit).await;
        let (head, started) = match read {
            Ok(Some(head)) => head,
            Ok(None) => break,
            Err(e) => {
                let _ = write_all(&io, e.answer()).await;
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
    let mut io = io;
    let _ = io.shutdown().await;
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
async fn read_head(
    io: &TcpStream,
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
            if *stop.borrow() {
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
                _ = stop.changed() => return Ok(None),
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
async fn exchange(
    io: &TcpStream,
    buf: &mut Option<BytesMut>,
    state: &Arc<ServerState>,
    stop: &watch::Receiver<bool>,
    head: Head,
    started: Option<Instant>,
) -> io::Result<bool> {
    let Head {
        request,
        framing,
        keep_alive,
        expect_continue,
    } = head;
    let method = request.method().clone();
    let version = request.version();
    let (parts, ()) = request.into_parts();

    if expect_continue {
        // Node answers `expect: 100-continue` at once, before any handler.
        write_all(io, h1::CONTINUE).await?;
    }
    let mut body_in: Option<BodyIn> = None;
    let body = request_body(framing, buf, &mut body_in);
    let mut late = body_deadline(&body_in, state.request_timeout, started);

    let mut answering = Box::pin(handle(state, parts, body));
    let answer = if body_in.is_none() {
        match answer_or_gone(io, buf, answering.as_mut()).await {
            Some(answer) => answer,
            // Dropping the pending answer tells the handler its client is
            // gone.
            None => return Ok(false),
        }
    } else {
        match answer_while_receiving(io, buf, answering.as_mut(), &mut body_in, &mut late).await {
            Awaited::Answer(answer) => answer,
            Awaited::PeerGone => return Ok(false),
            Awaited::Refused(refusal) => {
                // The handler is told its client is gone; the client gets the
                // refusal and the connection closes.
                drop(answering);
                let _ = write_all(io, refusal).await;
                return Ok(false);
            }
        }
    };
    drop(answering);

    let (parts, body) = answer.into_parts();
    let to = AnswerTo {
        method: &method,
        version,
        reuse: reuse(keep_alive, stop, state, &body_in),
    };
    // A whole answer is written here rather than in a step of its own: an
    // awaited step would add a state machine to every request's.
    let keep = match body {
        Body::Full(bytes) => {
            let whole = encode_whole(&parts, &bytes, &to);
            write_all(io, &whole.out).await?;
            if whole.body_apart {
                write_all(io, &bytes).await?;
            }
            whole.keep_alive
        }
        Body::Stream(stream) => {
            write_streamed(io, buf, &mut body_in, &mut late, &parts, stream, &to).await?
        }
    };
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

/// Awaits the answer to a request that came whole with its head (the usual
/// case), reading whatever the client sends meanwhile; `None`: the client
/// went away. The client is watched for through the socket's read
/// readiness, which needs no waiter registered and dropped per request.
fn answer_or_gone<'a, F: Future>(
    io: &'a TcpStream,
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
enum Awaited<T> {
    Answer(T),
    /// The connection broke, or the client closed it.
    PeerGone,
    /// The request is refused with this answer, and the connection closes.
    Refused(&'static [u8]),
}

/// Awaits the answer to a request whose body is still arriving, feeding the
/// body to the handler as it comes, within the request timeout.
async fn answer_while_receiving<F: Future>(
    io: &TcpStream,
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

/// What an answer's head depends on besides the answer: the request's
/// method and version, and whether the connection may stay open.
struct AnswerTo<'a> {
    method: &'a Method,
    version: Version,
    reuse: h1::Reuse,
}

/// Whether the answer may offer the connection for another request (the
/// client allows it, the server is not stopping, the body's framing held),
/// and for how long it may then idle.
fn reuse(
    keep_alive: bool,
    stop: &watch::Receiver<bool>,
    state: &ServerState,
    body_in: &Option<BodyIn>,
) -> h1::Reuse {
    if keep_alive && !*stop.borrow() && !body_in.as_ref().is_some_and(|b| b.broken) {
        h1::Reuse::KeepAlive {
            idle_secs: state.keep_alive_timeout.map(|t| t.as_secs()),
        }
    } else {
        h1::Reuse::Close
    }
}

/// The room an answer's head takes on the wire, near enough.
fn head_room(parts: &response::Parts) -> usize {
    parts
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + 128
}

/// A whole answer encoded for the wire.
struct WholeOut {
    /// The head, followed by the body when it is small enough to share the
    /// head's write.
    out: Vec<u8>,
    /// The body is still to be written, on its own.
    body_apart: bool,
    keep_alive: bool,
}

/// Encodes a whole answer's head and, when it goes in the same write, its
/// body.
fn encode_whole(parts: &response::Parts, bytes: &[u8], to: &AnswerTo<'_>) -> WholeOut {
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

/// Writes a streamed answer's head and body. `Ok(true)`: as far as the
/// answer goes, the connection may carry another request.
async fn write_streamed(
    io: &TcpStream,
    buf: &mut Option<BytesMut>,
    body_in: &mut Option<BodyIn>,
    late: &mut Option<Pin<Box<Sleep>>>,
    parts: &response::Parts,
    stream: ChunkStream,
    to: &AnswerTo<'_>,
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
    if how.body {
        // Boxed: the streaming loop's state is not part of every
        // exchange's (most answers are whole).
        let streamed = Box::pin(stream_answer(io, buf, body_in, late, stream, how.chunked));
        if !streamed.await? {
            return Ok(false);
        }
    }
    Ok(how.keep_alive)
}

/// What is left of the request body once the answer is out: nobody's now,
/// and drained when the connection is to carry another request (`keep`).
/// `Ok(true)`: it may.
async fn finish_body(
    io: &TcpStream,
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

/// Writes a streamed answer's body. `Ok(false)`: the connection ends (the
/// client went away, or the request body came too slowly).
async fn stream_answer(
    io: &TcpStream,
    buf: &mut Option<BytesMut>,
    body_in: &mut Option<BodyIn>,
    late: &mut Option<Pin<Box<Sleep>>>,
    mut stream: ChunkStream,
    chunked: bool,
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
                    } else {
                        write_all(io, &data).await?;
                    }
                }
                Some(Err(never)) => match never {},
                None => {
                    if chunked {
                        write_all(io, h1::LAST_CHUNK).await?;
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

/// Whether the request body is still being received for the handler.
fn receiving(body_in: &Option<BodyIn>) -> bool {
    body_in.as_ref().is_some_and(|b| b.tx.is_some())
}

/// Fires when the request timeout has passed; never without one.
async fn timer(late: &mut Option<Pin<Box<Sleep>>>) {
    match late.as_mut() {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

/// While the handler runs: feeds its body, or (body done or unwanted)
/// watches for the client closing. Cancel-safe: bytes read stay in `buf`.
async fn io_step(io: &TcpStream, buf: &mut Option<BytesMut>, body_in: &mut Option<BodyIn>) -> Step {
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
            Decoder::Length(n) if n <= BODY_READ as u64 => Some(n as usize),
            _ => None,
        };
        let have = buf.as_ref().map_or(0, BytesMut::len);
        let wait_for_all = whole.is_some_and(|n| have < n);
        if let Some(b) = buf.as_mut().filter(|_| !wait_for_all) {
            match body.decoder.decode(b) {
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
async fn watch_close(io: &TcpStream, buf: &mut Option<BytesMut>) -> Step {
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

/// Reads and discards the rest of a request body. `Ok(true)`: it ended and
/// the connection is in step for the next request.
async fn drain(
    io: &TcpStream,
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

/// Whether a read found the connection closed (or broken); a read that
/// would block found nothing yet.
fn ended(read: &io::Result<usize>) -> bool {
    match read {
        Ok(n) => *n == 0,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

/// One non-blocking read into the buffer, with room for `want` bytes.
fn read_some(io: &TcpStream, buf: &mut Option<BytesMut>, want: usize) -> io::Result<usize> {
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
async fn write_all(io: &TcpStream, mut data: &[u8]) -> io::Result<()> {
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
