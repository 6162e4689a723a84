//! What the server counts, for Prometheus (`text.rs`), `server.stats()`
//! (`stats.rs`) and the scrape endpoint (`endpoint.rs`).
//!
//! Every figure an HTTP worker moves lives in that worker's own shard
//! (cache-line aligned, relaxed atomics, claimed by a thread the first time
//! it counts), so counting takes no lock, allocates nothing and shares no
//! cache line with another worker; the shards are summed only when read.
//! Gauges are two counters (opened and closed, started and finished),
//! since what one thread opens another may close. The JS thread's figures
//! (calls it took, how long batches waited for it) have one writer and a
//! cache line of their own.

#![forbid(unsafe_code)]

mod endpoint;
mod stats;
mod text;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::time::Instant;

pub use endpoint::MetricsEndpoint;

/// Upper bounds of the duration histograms' buckets, in seconds, as the
/// exposition writes them (`le`); a last bucket (`+Inf`) takes the rest.
pub const BOUNDS: [&str; 17] = [
    "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
];

/// [`BOUNDS`] in nanoseconds.
const BOUNDS_NANOS: [u64; 17] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Buckets of a histogram: one per bound and `+Inf`.
const BUCKETS: usize = BOUNDS.len() + 1;

/// Statuses counted apart (0-999: whatever `http::StatusCode` holds).
const STATUSES: usize = 1000;

/// What a request was, as the metrics label it (`kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RequestKind {
    Task = 0,
    Event = 1,
    Discovery = 2,
    /// Anything else: 404s, preflights, scrapes, refused heads.
    Other = 3,
}

impl RequestKind {
    pub const ALL: [RequestKind; 4] = [
        RequestKind::Task,
        RequestKind::Event,
        RequestKind::Discovery,
        RequestKind::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RequestKind::Task => "task",
            RequestKind::Event => "event",
            RequestKind::Discovery => "discovery",
            RequestKind::Other => "other",
        }
    }
}

/// Where the handler notes what kind of request it routed; the connection
/// reads it when it counts the request. Atomic only so the request's future
/// stays `Send`: one thread writes it and reads it back.
#[derive(Debug)]
pub struct KindSlot(AtomicU8);

impl Default for KindSlot {
    fn default() -> Self {
        KindSlot(AtomicU8::new(RequestKind::Other as u8))
    }
}

impl KindSlot {
    pub fn set(&self, kind: RequestKind) {
        self.0.store(kind as u8, Relaxed);
    }

    pub fn get(&self) -> RequestKind {
        match self.0.load(Relaxed) {
            0 => RequestKind::Task,
            1 => RequestKind::Event,
            2 => RequestKind::Discovery,
            _ => RequestKind::Other,
        }
    }
}

/// Counts of durations per bucket (not cumulative) and their sum.
struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, nanos: u64) {
        // `le`: a duration equal to a bound counts in that bound's bucket.
        let i = BOUNDS_NANOS.partition_point(|&b| b < nanos);
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    fn add_into(&self, into: &mut HistogramSum) {
        for (sum, b) in into.buckets.iter_mut().zip(&self.buckets) {
            *sum += b.load(Relaxed);
        }
        into.sum_nanos += self.sum_nanos.load(Relaxed);
    }
}

/// A histogram summed over shards; `buckets` not cumulative.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistogramSum {
    pub buckets: [u64; BUCKETS],
    pub sum_nanos: u64,
}

impl HistogramSum {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The counts at or below each bound, then the total (`+Inf`).
    pub fn cumulative(&self) -> [u64; BUCKETS] {
        let mut out = self.buckets;
        for i in 1..BUCKETS {
            out[i] += out[i - 1];
        }
        out
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos as f64 / 1e9
    }
}

/// One HTTP worker's figures. Aligned so no two shards share a cache line
/// (128: adjacent-line prefetching pairs lines on x86).
#[repr(align(128))]
struct Shard {
    requests: [[AtomicU64; STATUSES]; 4],
    durations: [Histogram; 4],
    received_bytes: AtomicU64,
    sent_bytes: AtomicU64,
    calls_started: AtomicU64,
    calls_finished: AtomicU64,
    connections_opened: AtomicU64,
    connections_closed: AtomicU64,
    access_dropped: AtomicU64,
}

impl Shard {
    fn new() -> Box<Shard> {
        Box::new(Shard {
            requests: [const { [const { AtomicU64::new(0) }; STATUSES] }; 4],
            durations: [const { Histogram::new() }; 4],
            received_bytes: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            calls_started: AtomicU64::new(0),
            calls_finished: AtomicU64::new(0),
            connections_opened: AtomicU64::new(0),
            connections_closed: AtomicU64::new(0),
            access_dropped: AtomicU64::new(0),
        })
    }
}

/// The JS threads' figures (one JS thread, or the isolates sharing a
/// listener).
#[repr(align(128))]
struct JsSide {
    taken: AtomicU64,
    /// Calls queued for JS that it never took (its isolate went away, or
    /// no sharer was left for them).
    dropped: AtomicU64,
    batch_wait: Histogram,
}

/// When a worker last asked the idle JS thread to wake (nanoseconds since
/// `BATCH_EPOCH`, 0: no wake-up pending); apart, as workers write it.
#[repr(align(128))]
#[derive(Default)]
struct WakeMark(AtomicU64);

/// How long each batch of one JS thread waited: from the wake-up asked for
/// it, or, when JS fetched it itself (it was busy, so jobs queued
/// meanwhile), from when JS took the batch before. One per inbox: the
/// workers write the wake-up mark, its JS thread the rest.
#[derive(Default)]
pub struct BatchClock {
    wake: WakeMark,
    /// When JS last took a batch (nanoseconds since `BATCH_EPOCH`, 0: never).
    last_take: AtomicU64,
}

fn batch_nanos() -> u64 {
    static BATCH_EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    // Never 0, which marks "none".
    (BATCH_EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64).max(1)
}

impl BatchClock {
    /// A worker asks the idle JS thread to wake (once per wake-up, not per
    /// call): the batch it will take begins waiting now.
    pub fn wake_requested(&self) {
        self.wake.0.store(batch_nanos(), Relaxed);
    }

    /// JS takes a batch now: how long it waited (`None` for the first,
    /// with nothing to count from).
    pub fn taken(&self) -> Option<u64> {
        let now = batch_nanos();
        let woken = self.wake.0.swap(0, Relaxed);
        let since = if woken != 0 {
            woken
        } else {
            self.last_take.load(Relaxed)
        };
        self.last_take.store(now, Relaxed);
        (since != 0).then(|| now.saturating_sub(since))
    }
}

/// Tells each `Metrics` apart in the threads' shard slots.
static NEXT_METRICS: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The shard this thread counts in: (which `Metrics`, which shard).
    static SLOT: Cell<(u64, usize)> = const { Cell::new((0, 0)) };
}

/// A server's figures, for as long as the server object lives (across
/// `listen` and `close`).
pub struct Metrics {
    id: u64,
    shards: Box<[Box<Shard>]>,
    /// The next shard a thread that starts counting claims.
    next_shard: AtomicU64,
    js: JsSide,
}

impl Metrics {
    /// `shards`: one per thread that counts (the HTTP workers) is enough;
    /// more threads than shards share some, correctly but contended.
    pub fn new(shards: usize) -> Self {
        Metrics {
            id: NEXT_METRICS.fetch_add(1, Relaxed),
            shards: (0..shards.max(1)).map(|_| Shard::new()).collect(),
            next_shard: AtomicU64::new(0),
            js: JsSide {
                taken: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                batch_wait: Histogram::new(),
            },
        }
    }

    /// The index of this thread's shard (claimed on its first use).
    pub fn slot(&self) -> usize {
        SLOT.with(|slot| {
            let (id, index) = slot.get();
            if id == self.id {
                return index;
            }
            let index = (self.next_shard.fetch_add(1, Relaxed) as usize) % self.shards.len();
            slot.set((self.id, index));
            index
        })
    }

    fn shard(&self) -> &Shard {
        &self.shards[self.slot() % self.shards.len()]
    }

    /// A request finished: what it was, its status (499: the client went
    /// away first), how long from its head to its answer (`None`: no head
    /// was parsed), and its bytes on the wire.
    pub fn request(
        &self,
        kind: RequestKind,
        status: u16,
        nanos: Option<u64>,
        received: u64,
        sent: u64,
    ) {
        let shard = self.shard();
        let status = usize::from(status).min(STATUSES - 1);
        shard.requests[kind as usize][status].fetch_add(1, Relaxed);
        if let Some(nanos) = nanos {
            shard.durations[kind as usize].observe(nanos);
        }
        shard.received_bytes.fetch_add(received, Relaxed);
        shard.sent_bytes.fetch_add(sent, Relaxed);
    }

    /// A connection opened; counted closed when the guard drops.
    pub fn connection(&self) -> ConnectionOpen<'_> {
        self.shard().connections_opened.fetch_add(1, Relaxed);
        ConnectionOpen(self)
    }

    /// A call was handed to its handler; counted finished when the guard
    /// drops (its reply came, or its client went away).
    pub fn call(&self) -> CallInFlight<'_> {
        self.shard().calls_started.fetch_add(1, Relaxed);
        CallInFlight(self)
    }

    /// An access record was dropped: the buffer was full.
    pub fn access_dropped(&self) {
        self.shard().access_dropped.fetch_add(1, Relaxed);
    }

    /// A JS thread took a batch holding `calls` calls, after waiting
    /// `waited` nanoseconds (see [`BatchClock`]).
    pub fn js_batch_taken(&self, calls: u64, waited: Option<u64>) {
        self.js.taken.fetch_add(calls, Relaxed);
        if let Some(nanos) = waited {
            self.js.batch_wait.observe(nanos);
        }
    }

    /// `calls` calls queued for JS will never be taken: they leave the
    /// queue depth.
    pub fn js_calls_dropped(&self, calls: u64) {
        self.js.dropped.fetch_add(calls, Relaxed);
    }

    /// Every shard summed, with the JS thread's figures.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        let mut started = 0u64;
        let mut finished = 0u64;
        let mut opened = 0u64;
        let mut closed = 0u64;
        for shard in self.shards.iter() {
            for (kind, statuses) in shard.requests.iter().enumerate() {
                for (status, n) in statuses.iter().enumerate() {
                    let n = n.load(Relaxed);
                    if n > 0 {
                        s.requests[kind].push((status as u16, n));
                    }
                }
            }
            for (kind, h) in shard.durations.iter().enumerate() {
                h.add_into(&mut s.durations[kind]);
            }
            s.received_bytes += shard.received_bytes.load(Relaxed);
            s.sent_bytes += shard.sent_bytes.load(Relaxed);
            started += shard.calls_started.load(Relaxed);
            finished += shard.calls_finished.load(Relaxed);
            opened += shard.connections_opened.load(Relaxed);
            closed += shard.connections_closed.load(Relaxed);
            s.access_dropped += shard.access_dropped.load(Relaxed);
        }
        for statuses in s.requests.iter_mut() {
            statuses.sort_unstable();
            statuses.dedup_by(|later, first| {
                let same = later.0 == first.0;
                if same {
                    first.1 += later.1;
                }
                same
            });
        }
        let taken = self.js.taken.load(Relaxed);
        let dropped = self.js.dropped.load(Relaxed);
        // Read apart, the sums may be a count out of step: never below 0.
        s.calls_in_flight = started.saturating_sub(finished);
        s.js_queue_depth = started.saturating_sub(taken + dropped);
        s.open_connections = opened.saturating_sub(closed);
        s.connections = opened;
        s.js_calls = taken;
        self.js.batch_wait.add_into(&mut s.js_batch_wait);
        s
    }
}

/// Counts its connection closed when dropped.
pub struct ConnectionOpen<'a>(&'a Metrics);

impl Drop for ConnectionOpen<'_> {
    fn drop(&mut self) {
        self.0.shard().connections_closed.fetch_add(1, Relaxed);
    }
}

/// Counts its call finished when dropped.
pub struct CallInFlight<'a>(&'a Metrics);

impl Drop for CallInFlight<'_> {
    fn drop(&mut self) {
        self.0.shard().calls_finished.fetch_add(1, Relaxed);
    }
}

/// The figures at one moment, summed over the shards.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Per kind (as [`RequestKind`] numbers them): (status, count), by status.
    pub requests: [Vec<(u16, u64)>; 4],
    /// Per kind: head parsed to answer written.
    pub durations: [HistogramSum; 4],
    /// Calls handed to a handler whose reply has not come yet.
    pub calls_in_flight: u64,
    /// Calls handed to the JS thread that it has not taken yet. With a
    /// dispatcher other than the JS bridge nothing is ever taken.
    pub js_queue_depth: u64,
    /// Calls the JS thread has taken.
    pub js_calls: u64,
    /// Per batch the JS thread took: how long it waited.
    pub js_batch_wait: HistogramSum,
    pub open_connections: u64,
    /// Connections accepted.
    pub connections: u64,
    pub received_bytes: u64,
    pub sent_bytes: u64,
    /// Access records dropped because the buffer was full.
    pub access_dropped: u64,
}

#[cfg(test)]
mod tests;
