//! The access log: one record per finished request, kept off the request
//! path. Each HTTP worker puts its records in a bounded queue of its own
//! (no lock, no copy of the request: its method, target and request id are
//! shared buffers); a task on the server's runtime takes them every
//! [`DELIVER_EVERY`] and hands them to the sink (JavaScript) as one JSON
//! array. A record that finds its queue full, because the sink has fallen
//! behind, is dropped and counted.

#![forbid(unsafe_code)]

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Uri};

use super::metrics::Metrics;
use crate::core::router::pathname_of;

/// How often records are handed to the sink, at most.
pub const DELIVER_EVERY: Duration = Duration::from_millis(50);

/// Records one HTTP worker holds before dropping more (about 200 bytes
/// each): at [`DELIVER_EVERY`], room for 160,000 requests a second.
pub const QUEUE_CAPACITY: usize = 8192;

/// One finished request.
#[derive(Debug)]
pub struct AccessRecord {
    /// `None`: refused before a head was parsed.
    pub method: Option<Method>,
    /// The request target as sent; the record gives its pathname.
    pub target: Option<Uri>,
    pub status: u16,
    /// Head parsed to answer written, in nanoseconds.
    pub nanos: u64,
    pub received: u64,
    pub sent: u64,
    pub request_id: Option<HeaderValue>,
}

/// Where batches of records go.
pub trait AccessSink: Send + Sync + 'static {
    /// Whether the batch delivered before has been taken; while not,
    /// records wait (and, once the queues are full, are dropped).
    fn ready(&self) -> bool;
    /// A JSON array of records (see [`write_json`]).
    fn deliver(&self, json: String);
}

/// The workers' end: one queue per metrics shard.
pub struct AccessLog {
    queues: Box<[SyncSender<AccessRecord>]>,
}

/// The delivering task's end.
pub struct AccessDrain {
    queues: Vec<Receiver<AccessRecord>>,
}

impl AccessLog {
    /// `queues`: as many as the metrics have shards, so each worker has its
    /// own; `capacity`: records per queue.
    pub fn new(queues: usize, capacity: usize) -> (Arc<AccessLog>, AccessDrain) {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..queues.max(1)).map(|_| sync_channel(capacity)).unzip();
        (
            Arc::new(AccessLog {
                queues: senders.into_boxed_slice(),
            }),
            AccessDrain { queues: receivers },
        )
    }

    /// Queues a record on the queue of `slot` (the worker's metrics shard);
    /// a full queue drops it, counted in `metrics`.
    pub fn push(&self, slot: usize, record: AccessRecord, metrics: &Metrics) {
        let queue = &self.queues[slot % self.queues.len()];
        if let Err(TrySendError::Full(_)) = queue.try_send(record) {
            metrics.access_dropped();
        }
    }
}

impl AccessDrain {
    /// Takes every record queued so far into a JSON array; `None` when
    /// there were none.
    pub fn take_json(&mut self) -> Option<String> {
        let mut out = String::new();
        let mut count = 0usize;
        for queue in &self.queues {
            for record in queue.try_iter() {
                out.push(if count == 0 { '[' } else { ',' });
                write_json(&mut out, &record);
                count += 1;
            }
        }
        if count == 0 {
            return None;
        }
        out.push(']');
        Some(out)
    }
}

/// `{"method","path","status","durationMs","bytesIn","bytesOut","requestId"}`;
/// `method`, `path` and `requestId` are `null` when there were none (a
/// refused head; outside the base path there is no request id).
pub fn write_json(out: &mut String, r: &AccessRecord) {
    use std::fmt::Write;
    out.push_str("{\"method\":");
    json_string_or_null(out, r.method.as_ref().map(Method::as_str));
    out.push_str(",\"path\":");
    let path = r.target.as_ref().map(|uri| {
        let target = match uri.path_and_query() {
            Some(pq) if uri.scheme().is_none() => pq.as_str().to_string(),
            _ => uri.to_string(),
        };
        pathname_of(&target)
    });
    json_string_or_null(out, path.as_deref());
    let _ = write!(
        out,
        ",\"status\":{},\"durationMs\":{:.3},\"bytesIn\":{},\"bytesOut\":{},\"requestId\":",
        r.status,
        r.nanos as f64 / 1e6,
        r.received,
        r.sent
    );
    json_string_or_null(out, r.request_id.as_ref().and_then(|v| v.to_str().ok()));
    out.push('}');
}

fn json_string_or_null(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => out.push_str(&serde_json::Value::from(s).to_string()),
        None => out.push_str("null"),
    }
}

/// Delivers the records until the runtime drops it, then once more with
/// what is left (so the requests answered while the server stopped are
/// delivered too, whether or not the sink took the batch before).
pub async fn deliver(drain: AccessDrain, sink: Arc<dyn AccessSink>) {
    let mut delivery = Delivery { drain, sink };
    let mut tick = tokio::time::interval(DELIVER_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if delivery.sink.ready() {
            delivery.flush();
        }
    }
}

struct Delivery {
    drain: AccessDrain,
    sink: Arc<dyn AccessSink>,
}

impl Delivery {
    fn flush(&mut self) {
        if let Some(json) = self.drain.take_json() {
            self.sink.deliver(json);
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: u16) -> AccessRecord {
        AccessRecord {
            method: Some(Method::POST),
            target: Some(Uri::from_static("/__runner/task/a%2Fb?x=1")),
            status,
            nanos: 1_234_567,
            received: 10,
            sent: 20,
            request_id: Some(HeaderValue::from_static("id-1")),
        }
    }

    #[test]
    fn records_are_one_json_array_with_the_pathname() {
        let (log, mut drain) = AccessLog::new(2, 4);
        let m = Metrics::new(2);
        log.push(0, record(200), &m);
        log.push(1, record(404), &m);
        let json = drain.take_json().expect("records");
        let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(
            v[0],
            serde_json::json!({
                "method": "POST", "path": "/__runner/task/a%2Fb", "status": 200,
                "durationMs": 1.235, "bytesIn": 10, "bytesOut": 20, "requestId": "id-1",
            })
        );
        assert_eq!(v[1]["status"], 404);
        assert!(drain.take_json().is_none(), "taken once");
    }

    #[test]
    fn a_refused_head_has_no_method_path_or_id() {
        let mut out = String::new();
        write_json(
            &mut out,
            &AccessRecord {
                method: None,
                target: None,
                status: 431,
                nanos: 0,
                received: 16384,
                sent: 70,
                request_id: None,
            },
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(v["method"], serde_json::Value::Null);
        assert_eq!(v["path"], serde_json::Value::Null);
        assert_eq!(v["requestId"], serde_json::Value::Null);
        assert_eq!(v["status"], 431);
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (log, mut drain) = AccessLog::new(1, 2);
        let m = Metrics::new(1);
        for _ in 0..5 {
            log.push(0, record(200), &m);
        }
        assert_eq!(m.snapshot().access_dropped, 3);
        let v: serde_json::Value =
            serde_json::from_str(&drain.take_json().expect("records")).expect("JSON");
        assert_eq!(v.as_array().map(Vec::len), Some(2));
    }
}
