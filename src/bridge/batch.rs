//! Calls cross into JavaScript in batches: tokio workers push jobs on a
//! lock-free queue and wake the JS thread once (`wake`); the JS thread
//! drains every job queued so far into one buffer (the `Inbox` here) and
//! makes one call per batch.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::core::exposure::Kind;
use crate::http::metrics::{BatchClock, Metrics};
use crate::http::stream::{PullWindow, Pulled, StreamWriter};
use crate::http::{Call, LoadGuard, Reply, RequestMeta};
use crate::wire::*;

use super::lock;
use super::ready::QueueClock;
use super::records::{latin1_bytes, Batch, HeldChunks, Values};

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
    /// Nothing to do: wakes JS so that the readiness probe sees whether it
    /// still runs.
    Ping,
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
        /// Counts the call for a shared listener until it is answered.
        _load: Option<LoadGuard>,
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
    pub(super) sender: std_mpsc::Sender<Job>,
    receiver: Mutex<std_mpsc::Receiver<Job>>,
    pub pending: Mutex<TicketMap<Pending>>,
    /// Streamed request bodies: the demand side of each body pull.
    pub bodies_in: Mutex<TicketMap<Arc<PullWindow>>>,
    /// Streamed answers being written.
    pub answers_out: Mutex<TicketMap<StreamWriter>>,
    /// To the answer-delivery task on the server's runtime while listening.
    pub answers: Mutex<Option<mpsc::UnboundedSender<Vec<Answered>>>>,
    /// A wake-up is due or JS is fetching batches itself (see `poll`).
    pub(super) scheduled: AtomicBool,
    /// Since when JS has owed a look at the queue, for the readiness probe.
    pub(super) clock: QueueClock,
    next_ticket: AtomicU32,
    /// Counts the batches JS takes and how long they waited: the server's
    /// own figures, or those of the listener it shares.
    pub metrics: ArcSwap<Metrics>,
    /// How long this JS thread's batches wait.
    pub batch_clock: BatchClock,
}

impl Inbox {
    #[cfg(test)]
    pub fn new() -> Arc<Inbox> {
        Inbox::with_metrics(Arc::new(Metrics::new(1)))
    }

    /// An inbox counting into the server's `metrics`.
    pub fn with_metrics(metrics: Arc<Metrics>) -> Arc<Inbox> {
        let (sender, receiver) = std_mpsc::channel();
        Arc::new(Inbox {
            sender,
            receiver: Mutex::new(receiver),
            pending: Mutex::new(TicketMap::default()),
            bodies_in: Mutex::new(TicketMap::default()),
            answers_out: Mutex::new(TicketMap::default()),
            answers: Mutex::new(None),
            scheduled: AtomicBool::new(false),
            clock: QueueClock::new(),
            next_ticket: AtomicU32::new(1),
            metrics: ArcSwap::new(metrics),
            batch_clock: BatchClock::default(),
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

    /// Lets go of everything the inbox holds or has queued, for an isolate
    /// that is gone: the calls' reply channels close (their requests are
    /// answered 500), streamed bodies stop being read, streamed answers end.
    pub fn fail_all(&self) {
        let queued: Vec<Job> = lock(&self.receiver).try_iter().collect();
        let mut calls = 0;
        for job in &queued {
            if let Job::Call(_, _, window) = job {
                calls += 1;
                // A body pull waiting for its reader to ask again would wait forever.
                if let Some(window) = window {
                    window.close();
                }
            }
        }
        self.metrics.load().js_calls_dropped(calls);
        drop(queued);
        lock(&self.pending).clear();
        for (_, window) in lock(&self.bodies_in).drain() {
            window.close();
        }
        lock(&self.answers_out).clear();
    }

    /// A fresh ticket; never 0, which marks a record of joined results.
    pub(super) fn fresh_ticket(&self) -> u32 {
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
    pub fn poll(&self, out: &mut Batch) -> Polled {
        let chunks = self.drain(out);
        if !out.is_empty() {
            // JS polls again once it has dispatched these.
            self.clock.owe();
            return Polled::Records { chunks };
        }
        // Before the flag: a wake-up scheduled after it stamps the clock.
        self.clock.settle();
        // Clear first: a job pushed after this point schedules a wake-up.
        self.scheduled.store(false, Ordering::SeqCst);
        let chunks = self.drain(out);
        if out.is_empty() {
            return Polled::Idle;
        }
        // Jobs slipped in before the flag was clear: keep fetching.
        self.scheduled.store(true, Ordering::SeqCst);
        self.clock.owe();
        Polled::Records { chunks }
    }

    /// Runs on the JS thread: appends everything queued so far to `out`;
    /// true when that includes request body chunks. The wake-up flag stays
    /// set until [`Inbox::poll`] finds nothing.
    fn drain(&self, batch: &mut Batch) -> bool {
        let start = batch.len();
        let mut calls = 0u64;
        let mut chunks = HeldChunks::default();
        let mut values = Values::default();
        let receiver = lock(&self.receiver);
        let mut pending = lock(&self.pending);
        // A batch holding chunks stops where the job that crosses the mark
        // (at most one body read) still fits JS's buffer; the jobs left wait
        // for the next poll, which follows this one.
        while !(chunks.any() && batch.len() - start + chunks.held() >= BATCH_CHUNKS_UP_TO) {
            let Ok(job) = receiver.try_recv() else {
                break;
            };
            // Whatever else concerns a ticket goes out after its chunks.
            if let Some(ticket) = job.ticket() {
                chunks.flush(batch, Some(ticket));
            }
            let out = &mut batch.records;
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
                    if call.json_text && call.body.len() < JOINED_BELOW {
                        values.push(&call.body);
                        write_header(out, kind, flags | FLAG_JOINED, ticket, call.handler, 0);
                    } else {
                        let flags = if call.json_text {
                            flags | FLAG_JSON_TEXT
                        } else {
                            flags
                        };
                        write_record(out, kind, flags, ticket, call.handler, &call.body);
                    }
                    pending.insert(
                        ticket,
                        Pending::Call {
                            reply: call.reply,
                            meta: call.meta,
                            body: call.body,
                            _load: call.load,
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
                    let flag = if origin.is_some() {
                        FLAG_ORIGIN_SENT
                    } else {
                        0
                    };
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
                Job::Ping => {}
            }
        }
        drop(pending);
        drop(receiver);
        let any_chunks = chunks.flush(batch, None);
        values.write(&mut batch.records);
        if batch.len() > start {
            self.metrics
                .load()
                .js_batch_taken(calls, self.batch_clock.taken());
        }
        any_chunks
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

#[cfg(test)]
mod tests;
