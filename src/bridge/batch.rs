//! Calls cross into JavaScript in batches: tokio workers push jobs on a
//! lock-free queue and wake the JS thread once; the JS thread drains every
//! job queued so far into one buffer and makes one call per batch.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use tokio::sync::{mpsc, oneshot};

use crate::core::body::BodyKind;
use crate::core::exposure::Kind;
use crate::core::json;
use crate::http::metrics::Metrics;
use crate::http::stream::{pull_request_body, PullWindow, Pulled, StreamWriter};
use crate::http::{Call, Dispatch, Reply, RequestMeta};

use super::lock;

use crate::wire::*;

/// Bodies this large or larger stay in their own record: a large input is
/// parsed on its own, when its call runs.
const JOIN_BELOW: usize = 4096;

pub enum Job {
    Call(u32, Call, Option<Arc<PullWindow>>),
    /// A piece of a streamed request body, its end, or its failure.
    Body(u32, Pulled),
    /// A paused streamed answer may be written again.
    Resume(u32),
    /// A streamed answer lost its client.
    Gone(u32),
    /// An auth refusal to log.
    AuthFailed(String),
    Abort(u32),
    Origin(u32, Option<String>, oneshot::Sender<Option<String>>),
    Serialize(u32, String, oneshot::Sender<Option<String>>),
    Auth(u32, Arc<RequestMeta>, oneshot::Sender<bool>),
}

/// What a call holds of its request (headers, the JSON body) until it is
/// answered; it goes back with the answer, so it is freed on the server's
/// runtime that allocated it, off the JS thread.
pub type Held = (Arc<RequestMeta>, Bytes);

/// An answered call: its reply channel, the answer, and its request data.
pub type Answered = (oneshot::Sender<Reply>, Reply, Option<Held>);

/// Tickets are unique counters: a multiply spreads them over the table, no
/// need for a keyed hash.
#[derive(Default)]
pub struct TicketHasher(u64);

impl Hasher for TicketHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Maps keyed by ticket.
pub type TicketMap<V> = HashMap<u32, V, BuildHasherDefault<TicketHasher>>;

/// What [`Inbox::poll`] wrote.
pub enum Polled {
    /// Nothing was queued.
    Idle,
    /// Records; `chunks` when they hold request body chunks, which JS keeps
    /// as views into the buffer: then it must not be one JS reuses.
    Records { chunks: bool },
}

/// A job JavaScript has seen but not yet answered.
pub enum Pending {
    Call {
        reply: oneshot::Sender<Reply>,
        meta: Arc<RequestMeta>,
        body: Bytes,
    },
    /// An origin or serialization question: answered with text or nothing.
    Text(oneshot::Sender<Option<String>>),
    Auth {
        reply: oneshot::Sender<bool>,
        meta: Arc<RequestMeta>,
    },
}

/// Shared between tokio workers (which push) and the JS thread (which
/// drains and completes). `receiver` and `pending` are only touched on the JS
/// thread, so their mutexes are never contended.
pub struct Inbox {
    sender: std_mpsc::Sender<Job>,
    receiver: Mutex<std_mpsc::Receiver<Job>>,
    pub pending: Mutex<TicketMap<Pending>>,
    /// Streamed request bodies: the demand side of each body pull.
    pub bodies_in: Mutex<TicketMap<Arc<PullWindow>>>,
    /// Streamed answers being written.
    pub answers_out: Mutex<TicketMap<StreamWriter>>,
    /// To the answer-delivery task on the server's runtime while listening.
    pub answers: Mutex<Option<mpsc::UnboundedSender<Vec<Answered>>>>,
    scheduled: AtomicBool,
    next_ticket: AtomicU32,
    /// Bodies are parsed as plain JSON (no custom serializer), so those of a
    /// batch may be joined into one array.
    join_values: bool,
    /// Counts the batches JS takes and how long they waited.
    pub metrics: Arc<Metrics>,
}

impl Inbox {
    /// `join_values`: JS parses bodies with `JSON.parse`, so those of small
    /// calls may reach it joined into one array per batch.
    #[cfg(test)]
    pub fn new(join_values: bool) -> Arc<Inbox> {
        Inbox::with_metrics(join_values, Arc::new(Metrics::new(1)))
    }

    /// An inbox counting into the server's `metrics`.
    pub fn with_metrics(join_values: bool, metrics: Arc<Metrics>) -> Arc<Inbox> {
        let (sender, receiver) = std_mpsc::channel();
        Arc::new(Inbox {
            sender,
            receiver: Mutex::new(receiver),
            pending: Mutex::new(TicketMap::default()),
            bodies_in: Mutex::new(TicketMap::default()),
            answers_out: Mutex::new(TicketMap::default()),
            answers: Mutex::new(None),
            scheduled: AtomicBool::new(false),
            next_ticket: AtomicU32::new(1),
            join_values,
            metrics,
        })
    }

    /// Hands answers to the server's runtime; gives them back when not
    /// listening.
    pub fn deliver(&self, delivery: Vec<Answered>) -> Option<Vec<Answered>> {
        match lock(&self.answers).as_ref() {
            Some(tx) => tx.send(delivery).err().map(|mpsc::error::SendError(d)| d),
            None => Some(delivery),
        }
    }

    /// A fresh ticket; never 0, which marks a record of joined results.
    fn fresh_ticket(&self) -> u32 {
        loop {
            let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
            if ticket != 0 {
                return ticket;
            }
        }
    }

    /// Stops reading a streamed request body; the rest is discarded.
    pub fn close_body(&self, ticket: u32) {
        let window = lock(&self.bodies_in).remove(&ticket);
        if let Some(window) = window {
            window.close();
        }
    }

    /// Runs on the JS thread when it has finished a batch: the jobs queued
    /// meanwhile, or `None` when there are none, in which case the next job
    /// wakes the JS thread again. While batches keep coming, JS fetches them
    /// itself and the server threads never have to wake it.
    pub fn poll(&self, out: &mut Vec<u8>) -> Polled {
        let chunks = self.drain(out);
        if !out.is_empty() {
            return Polled::Records { chunks };
        }
        // Clear first: a job pushed after this point schedules a wake-up.
        self.scheduled.store(false, Ordering::SeqCst);
        let chunks = self.drain(out);
        if out.is_empty() {
            return Polled::Idle;
        }
        // Jobs slipped in before the flag was clear: keep fetching.
        self.scheduled.store(true, Ordering::SeqCst);
        Polled::Records { chunks }
    }

    /// Runs on the JS thread: appends everything queued so far to `out`;
    /// true when that includes request body chunks. The wake-up flag stays
    /// set until [`Inbox::poll`] finds nothing.
    fn drain(&self, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let mut calls = 0u64;
        let mut chunks = HeldChunks::default();
        let mut values = Values::default();
        let receiver = lock(&self.receiver);
        let mut pending = lock(&self.pending);
        while let Ok(job) = receiver.try_recv() {
            // Whatever else concerns a ticket goes out after its chunks.
            if let Some(ticket) = job.ticket() {
                chunks.flush(out, Some(ticket));
            }
            match job {
                Job::Call(ticket, call, demand) => {
                    calls += 1;
                    if let Some(demand) = demand {
                        lock(&self.bodies_in).insert(ticket, demand);
                    }
                    let kind = match call.kind {
                        Kind::Task => KIND_TASK,
                        Kind::Event => KIND_EVENT,
                    };
                    let flags = call.body_kind as u8;
                    if self.join_values
                        && call.body_kind == BodyKind::Json
                        && call.body.len() < JOIN_BELOW
                        && !call.body.is_empty()
                        && json::is_one_value(&call.body)
                    {
                        values.push(&call.body);
                        write_header(out, kind, flags | FLAG_JOINED, ticket, call.handler, 0);
                    } else {
                        write_record(out, kind, flags, ticket, call.handler, &call.body);
                    }
                    pending.insert(
                        ticket,
                        Pending::Call {
                            reply: call.reply,
                            meta: call.meta,
                            body: call.body,
                        },
                    );
                }
                Job::Abort(ticket) => {
                    self.close_body(ticket);
                    if pending.remove(&ticket).is_some() {
                        write_record(out, KIND_ABORT, 0, ticket, 0, &[]);
                    }
                }
                Job::Body(ticket, Pulled::Chunk(bytes)) => chunks.hold(ticket, bytes),
                Job::Body(ticket, pulled) => {
                    lock(&self.bodies_in).remove(&ticket);
                    let kind = if let Pulled::Error = pulled {
                        // The body broke off: the client is gone, whatever
                        // the handler answers now cannot reach it.
                        pending.remove(&ticket);
                        KIND_BODY_ERROR
                    } else {
                        KIND_BODY_END
                    };
                    write_record(out, kind, 0, ticket, 0, &[]);
                }
                Job::AuthFailed(record) => {
                    write_record(out, KIND_AUTH_FAILED, 0, 0, 0, record.as_bytes())
                }
                Job::Resume(ticket) => write_record(out, KIND_RESUME, 0, ticket, 0, &[]),
                Job::Gone(ticket) => {
                    lock(&self.answers_out).remove(&ticket);
                    self.close_body(ticket);
                    write_record(out, KIND_GONE, 0, ticket, 0, &[]);
                }
                Job::Origin(ticket, origin, reply) => {
                    let flag = u8::from(origin.is_some());
                    let bytes = origin.as_deref().map(latin1_bytes).unwrap_or_default();
                    write_record(out, KIND_ORIGIN, flag, ticket, 0, &bytes);
                    pending.insert(ticket, Pending::Text(reply));
                }
                Job::Serialize(ticket, json, reply) => {
                    write_record(out, KIND_SERIALIZE, 0, ticket, 0, json.as_bytes());
                    pending.insert(ticket, Pending::Text(reply));
                }
                Job::Auth(ticket, meta, reply) => {
                    write_record(out, KIND_AUTH, 0, ticket, 0, &[]);
                    pending.insert(ticket, Pending::Auth { reply, meta });
                }
            }
        }
        drop(pending);
        drop(receiver);
        let any_chunks = chunks.flush(out, None);
        values.write(out);
        if out.len() > start {
            self.metrics.js_batch_taken(calls);
        }
        any_chunks
    }
}

/// The bodies joined for one batch: `[body,body,...]`, last in the batch.
#[derive(Default)]
struct Values {
    text: Vec<u8>,
    count: u32,
}

impl Values {
    fn push(&mut self, body: &[u8]) {
        self.text.push(if self.count == 0 { b'[' } else { b',' });
        self.text.extend_from_slice(body);
        self.count += 1;
    }

    /// Flags 1 when the text is ASCII (JS may then decode it as Latin-1).
    fn write(mut self, out: &mut Vec<u8>) {
        if self.count == 0 {
            return;
        }
        self.text.push(b']');
        let ascii = u8::from(self.text.is_ascii());
        write_record(out, KIND_VALUES, ascii, 0, self.count, &self.text);
    }
}

impl Job {
    /// The call this job concerns, when it may be one with a streamed body.
    fn ticket(&self) -> Option<u32> {
        match self {
            Job::Body(_, Pulled::Chunk(_)) => None,
            Job::Body(ticket, _) | Job::Resume(ticket) | Job::Gone(ticket) | Job::Abort(ticket) => {
                Some(*ticket)
            }
            _ => None,
        }
    }
}

/// Request body chunks held back while a batch is drained, so that each
/// body's chunks go out as one record: its stream then hands its reader one
/// buffer rather than several that `read()` would join with a copy, and the
/// batch buffer is reserved once for all of them instead of growing (and
/// copying itself) chunk by chunk.
#[derive(Default)]
struct HeldChunks {
    bodies: Vec<(u32, Vec<Bytes>)>,
    any: bool,
}

impl HeldChunks {
    fn hold(&mut self, ticket: u32, bytes: Bytes) {
        self.any = true;
        match self.bodies.iter_mut().find(|(t, _)| *t == ticket) {
            Some((_, parts)) => parts.push(bytes),
            None => self.bodies.push((ticket, vec![bytes])),
        }
    }

    /// Writes the chunks held for `ticket` (all of them for `None`); true
    /// when the batch has held any chunk at all.
    fn flush(&mut self, out: &mut Vec<u8>, ticket: Option<u32>) -> bool {
        let wanted = |t: u32| ticket.is_none_or(|w| w == t);
        let size: usize = self
            .bodies
            .iter()
            .filter(|(t, _)| wanted(*t))
            .map(|(_, parts)| RECORD_HEADER + parts.iter().map(Bytes::len).sum::<usize>())
            .sum();
        if size > 0 {
            out.reserve(size);
            self.bodies.retain(|(t, parts)| {
                if !wanted(*t) {
                    return true;
                }
                let len: usize = parts.iter().map(Bytes::len).sum();
                write_header(out, KIND_BODY_CHUNK, 0, *t, 0, len);
                for part in parts {
                    out.extend_from_slice(part);
                }
                false
            });
        }
        self.any
    }
}

/// Origins reach JS as latin1 (as Node decodes header values).
fn latin1_bytes(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}

pub type WakeFn = ThreadsafeFunction<(), (), (), Status, false, true, 0>;

/// Queues jobs for the JS thread and wakes it when it is not already due.
#[derive(Clone)]
pub struct Pusher {
    pub inbox: Arc<Inbox>,
    pub wake: Arc<WakeFn>,
}

impl Pusher {
    pub fn push(&self, job: Job) {
        if self.inbox.sender.send(job).is_err() {
            return;
        }
        if !self.inbox.scheduled.swap(true, Ordering::SeqCst) {
            self.inbox.metrics.js_wake_requested();
            match tokio::runtime::Handle::try_current() {
                // On a server worker: wake JS once this worker has run every
                // task that is ready now, so the jobs they push share the
                // wake-up (`yield_now` defers the task until the worker next
                // looks for I/O).
                Ok(runtime) => {
                    let wake = WakeOnDrop(self.clone());
                    runtime.spawn(async move {
                        tokio::task::yield_now().await;
                        drop(wake);
                    });
                }
                Err(_) => self.wake_now(),
            }
        }
    }

    fn wake_now(&self) {
        let status = self.wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
        if status != Status::Ok {
            self.inbox.scheduled.store(false, Ordering::SeqCst);
        }
    }

    fn ticket(&self) -> u32 {
        self.inbox.fresh_ticket()
    }
}

/// Wakes the JS thread when dropped: after the deferring task has run, or
/// with it if the runtime drops it unrun (shutting down), so a wake-up is
/// never lost.
struct WakeOnDrop(Pusher);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.0.wake_now();
    }
}

/// The [`Dispatch`] the HTTP server uses when handlers live in JavaScript.
pub struct JsDispatch {
    pub pusher: Pusher,
}

impl JsDispatch {
    fn push(&self, job: Job) {
        self.pusher.push(job);
    }

    fn ticket(&self) -> u32 {
        self.pusher.ticket()
    }
}

impl Dispatch for JsDispatch {
    fn submit(&self, mut call: Call) -> u32 {
        let ticket = self.ticket();
        let body = call.body_stream.take();
        let window = body.as_ref().map(|_| Arc::new(PullWindow::default()));
        // The call goes first, so its body chunks always follow it.
        self.push(Job::Call(ticket, call, window.clone()));
        if let (Some(body), Some(window)) = (body, window) {
            let pusher = self.pusher.clone();
            tokio::spawn(pull_request_body(body, window, move |pulled| {
                pusher.push(Job::Body(ticket, pulled));
            }));
        }
        ticket
    }

    fn abort(&self, ticket: u32) {
        self.push(Job::Abort(ticket));
    }

    fn resolve_origin(&self, origin: Option<String>, reply: oneshot::Sender<Option<String>>) {
        let ticket = self.ticket();
        self.push(Job::Origin(ticket, origin, reply));
    }

    fn serialize(&self, json: String, reply: oneshot::Sender<Option<String>>) {
        let ticket = self.ticket();
        self.push(Job::Serialize(ticket, json, reply));
    }

    fn auth_failed(&self, record: String) {
        self.push(Job::AuthFailed(record));
    }

    fn validate_auth(&self, meta: Arc<RequestMeta>, reply: oneshot::Sender<bool>) {
        let ticket = self.ticket();
        self.push(Job::Auth(ticket, meta, reply));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(kind, ticket, body)` of every record in a batch.
    fn records(mut buf: &[u8]) -> Vec<(u8, u32, Vec<u8>)> {
        let mut out = Vec::new();
        while buf.len() >= RECORD_HEADER {
            let word = |i: usize| u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
            let (kind, ticket, len) = (buf[0], word(4), word(12) as usize);
            out.push((
                kind,
                ticket,
                buf[RECORD_HEADER..RECORD_HEADER + len].to_vec(),
            ));
            buf = &buf[RECORD_HEADER + len..];
        }
        out
    }

    fn chunk(ticket: u32, text: &str) -> Job {
        Job::Body(ticket, Pulled::Chunk(Bytes::from(text.to_owned())))
    }

    #[test]
    fn a_bodys_chunks_go_out_as_one_record_and_before_its_end() {
        let inbox = Inbox::new(false);
        for job in [
            chunk(1, "ab"),
            chunk(2, "x"),
            chunk(1, "cd"),
            Job::Body(1, Pulled::End),
            chunk(2, "y"),
            Job::Resume(3),
            chunk(2, "z"),
        ] {
            assert!(inbox.sender.send(job).is_ok());
        }
        let mut out = Vec::new();
        assert!(inbox.drain(&mut out), "the batch holds chunks");
        assert_eq!(
            records(&out),
            vec![
                (KIND_BODY_CHUNK, 1, b"abcd".to_vec()),
                (KIND_BODY_END, 1, Vec::new()),
                (KIND_RESUME, 3, Vec::new()),
                (KIND_BODY_CHUNK, 2, b"xyz".to_vec()),
            ]
        );
    }

    fn call(ticket: u32, body_kind: BodyKind, body: &[u8]) -> Job {
        let meta = Arc::new(RequestMeta {
            method: http::Method::POST,
            url: "/".into(),
            path: "/".into(),
            request_id: String::new(),
            headers: http::HeaderMap::new(),
        });
        let (reply, _) = oneshot::channel();
        let call = Call {
            kind: Kind::Task,
            handler: 9,
            body_kind,
            body: Bytes::copy_from_slice(body),
            body_stream: None,
            meta,
            reply,
        };
        Job::Call(ticket, call, None)
    }

    #[test]
    fn small_json_bodies_are_joined_into_one_array_at_the_end_of_the_batch() {
        let large = format!("{{\"pad\":\"{}\"}}", "x".repeat(JOIN_BELOW));
        let jobs = || {
            [
                call(1, BodyKind::Json, br#"{"input":{"a":1}}"#),
                call(2, BodyKind::Json, b"{not json"),
                call(3, BodyKind::Json, b""),
                call(4, BodyKind::Json, large.as_bytes()),
                call(5, BodyKind::Raw, b""),
                call(6, BodyKind::Json, " [1, \"\u{e9}\"] ".as_bytes()),
                Job::Resume(7),
            ]
        };
        let inbox = Inbox::new(true);
        for job in jobs() {
            assert!(inbox.sender.send(job).is_ok());
        }
        let mut out = Vec::new();
        assert!(!inbox.drain(&mut out));
        let flags: Vec<u8> = {
            let mut v = Vec::new();
            let mut at = 0;
            while at + RECORD_HEADER <= out.len() {
                v.push(out[at + 1]);
                let len =
                    u32::from_le_bytes([out[at + 12], out[at + 13], out[at + 14], out[at + 15]]);
                at += RECORD_HEADER + len as usize;
            }
            v
        };
        assert_eq!(
            flags,
            [FLAG_JOINED, 0, 0, 0, BodyKind::Raw as u8, FLAG_JOINED, 0, 0],
            "only the small, valid JSON bodies are joined; the values record is not ASCII"
        );
        assert_eq!(
            records(&out),
            vec![
                (KIND_TASK, 1, Vec::new()),
                (KIND_TASK, 2, b"{not json".to_vec()),
                (KIND_TASK, 3, Vec::new()),
                (KIND_TASK, 4, large.clone().into_bytes()),
                (KIND_TASK, 5, Vec::new()),
                (KIND_TASK, 6, Vec::new()),
                (KIND_RESUME, 7, Vec::new()),
                (
                    KIND_VALUES,
                    0,
                    "[{\"input\":{\"a\":1}}, [1, \"\u{e9}\"] ]"
                        .as_bytes()
                        .to_vec()
                ),
            ]
        );

        // With a serializer of the user's, every body stays in its record.
        let inbox = Inbox::new(false);
        for job in jobs() {
            assert!(inbox.sender.send(job).is_ok());
        }
        let mut out = Vec::new();
        inbox.drain(&mut out);
        let kept = records(&out);
        assert_eq!(kept.len(), 7, "no values record");
        assert_eq!(kept[0], (KIND_TASK, 1, br#"{"input":{"a":1}}"#.to_vec()));
    }

    #[test]
    fn tickets_skip_zero_when_the_counter_wraps() {
        let inbox = Inbox::new(false);
        assert_eq!(inbox.fresh_ticket(), 1, "the first ticket");
        inbox.next_ticket.store(u32::MAX, Ordering::Relaxed);
        let seen: Vec<u32> = (0..3).map(|_| inbox.fresh_ticket()).collect();
        assert_eq!(seen, [u32::MAX, 1, 2]);
    }

    #[test]
    fn a_poisoned_lock_does_not_stop_the_batches() {
        let inbox = Inbox::new(false);
        let poisoner = inbox.clone();
        let panicked = std::thread::spawn(move || {
            let _held = poisoner.pending.lock();
            panic!("a panic while the pending map is locked");
        })
        .join();
        assert!(panicked.is_err() && inbox.pending.is_poisoned());
        assert!(inbox.sender.send(Job::Resume(7)).is_ok());
        let mut out = Vec::new();
        inbox.drain(&mut out);
        assert_eq!(records(&out), vec![(KIND_RESUME, 7, Vec::new())]);
    }

    #[test]
    fn a_batch_without_chunks_says_so() {
        let inbox = Inbox::new(false);
        assert!(inbox.sender.send(Job::Resume(7)).is_ok());
        let mut out = Vec::new();
        assert!(!inbox.drain(&mut out));
        assert_eq!(records(&out), vec![(KIND_RESUME, 7, Vec::new())]);
    }
}
