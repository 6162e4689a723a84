// Deny, not forbid: the `#[napi]` expansions allow unsafe for their own FFI glue.
#![deny(unsafe_code)]

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use napi::bindgen_prelude::{AsyncTask, BufferSlice, Function};
use napi::{Env, Error, Result, Status, Task};
use napi_derive::napi;
use tokio::sync::mpsc;

use crate::core::config::ServerConfig;
use crate::core::envelope::ProtocolError;
use crate::core::exposure::{AllowList, Kind, Registry};
use crate::core::headers::node_headers_json;
use crate::core::json;
use crate::core::request_id::REQUEST_ID_HEADER;
use crate::http::access::{self, AccessLog, QUEUE_CAPACITY};
use crate::http::metrics::Metrics;
use crate::http::{bind, metrics_shards, Reply, RequestMeta, RunningServer, ServerState};

use super::batch::{Answered, Inbox, Job, JsDispatch, Pending, Polled, Pusher, WakeFn};
use super::lock;
use super::observe::JsAccessSink;
use crate::http::stream::chunk_stream;
use crate::http::ReplyBody;
use crate::wire;

/// Room the batch scratch buffer keeps between batches.
const SCRATCH_KEEP: usize = 1 << 20;

/// The native half of `TunnelServer`. Use it through `index.js`, which
/// validates options, owns the handlers and speaks the batch format.
#[napi]
pub struct NativeServer {
    config: ServerConfig,
    registry: Arc<ArcSwap<Registry>>,
    inbox: Arc<Inbox>,
    wake: Arc<WakeFn>,
    /// Behind a lock so that no method needs `&mut self`: JS may call in
    /// (answers, polls) while `close` runs.
    running: Mutex<Option<RunningServer>>,
    /// The length of a batch left in `scratch` for `take_spill` (it did not
    /// go into the caller's buffer).
    spill: Mutex<Option<usize>>,
    /// Where batches are written before they are copied out; kept between
    /// polls so it is not grown again for every batch.
    scratch: Mutex<Vec<u8>>,
    /// What the server counts, kept across listens (`observe.rs`).
    pub(super) metrics: Arc<Metrics>,
    /// Where access records go, once `onAccess` is set (`observe.rs`).
    pub(super) access_sink: Mutex<Option<Arc<JsAccessSink>>>,
}

/// Runs on the server's runtime: wakes the waiting requests locally (one
/// cross-thread wake-up per batch of answers instead of one per answer).
async fn deliver_answers(mut rx: mpsc::UnboundedReceiver<Vec<Answered>>) {
    while let Some(batch) = rx.recv().await {
        for (i, (reply, answer, held)) in batch.into_iter().enumerate() {
            if i > 0 && i % 64 == 0 {
                // Let the woken requests run before waking more (a worker of
                // the multi-threaded runtime queues 256 tasks locally).
                tokio::task::yield_now().await;
            }
            let _ = reply.send(answer);
            drop(held);
        }
    }
}

/// The address a listening server is bound to.
#[napi(object)]
pub struct BoundAddress {
    pub host: String,
    pub port: u32,
    /// The metrics' own port, when `metrics.port` is set.
    pub metrics_port: Option<u32>,
}

fn type_error(msg: String) -> Error {
    Error::new(Status::InvalidArg, msg)
}

#[napi]
impl NativeServer {
    /// `config_json`: the validated options; `on_jobs()`: called on the JS
    /// thread when jobs are queued and JS is not already fetching them
    /// (with [`NativeServer::poll_into`]).
    #[napi(constructor)]
    pub fn new(config_json: String, on_jobs: Function<'_, (), ()>) -> Result<Self> {
        let mut config = ServerConfig::from_json(&config_json).map_err(type_error)?;
        if config.worker_threads == 0 {
            // The JS thread needs a core of its own to run the handlers.
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            config.worker_threads = cores.saturating_sub(1).max(1);
        }
        let metrics = Arc::new(Metrics::new(metrics_shards(&config)));
        let inbox = Inbox::with_metrics(config.plain_json_calls, metrics.clone());
        // Weak: the function alone never keeps the event loop alive; the JS
        // wrapper holds a handle while listening.
        let wake: WakeFn = on_jobs
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|_ctx| Ok(()))?;
        Ok(NativeServer {
            config,
            registry: Arc::new(ArcSwap::from_pointee(Registry::default())),
            inbox,
            wake: Arc::new(wake),
            running: Mutex::new(None),
            spill: Mutex::new(None),
            scratch: Mutex::new(Vec::new()),
            metrics,
            access_sink: Mutex::new(None),
        })
    }

    /// Fetches the queued jobs into `into`: returns the bytes written, -1
    /// when there are none (the next job calls `on_jobs`), or -2 when they
    /// are waiting in a buffer of their own (`take_spill`): too big for
    /// `into`, or holding body chunks that JS keeps views of.
    #[napi]
    pub fn poll_into(&self, mut into: BufferSlice) -> i32 {
        let mut scratch = lock(&self.scratch);
        scratch.clear();
        let Polled::Records { chunks } = self.inbox.poll(&mut scratch) else {
            return -1;
        };
        let n = scratch.len();
        if !chunks && n <= into.len() && i32::try_from(n).is_ok() {
            into[..n].copy_from_slice(&scratch);
            return n as i32;
        }
        *lock(&self.spill) = Some(n);
        -2
    }

    /// The batch `poll_into` could not write into the caller's buffer, in a
    /// buffer of its own. A copy that V8 allocates: V8 then counts it when
    /// deciding to collect, so the views JS keeps of body chunks do not pile
    /// up as memory it does not see.
    #[napi]
    pub fn take_spill<'env>(&self, env: &'env Env) -> Result<Option<BufferSlice<'env>>> {
        let Some(n) = lock(&self.spill).take() else {
            return Ok(None);
        };
        let mut scratch = lock(&self.scratch);
        let copy = BufferSlice::copy_from(env, scratch.get(..n).unwrap_or_default())?;
        // Keep the scratch buffer's room for the next batch, up to a limit.
        scratch.clear();
        scratch.shrink_to(SCRATCH_KEEP);
        Ok(Some(copy))
    }

    #[napi]
    pub fn register_task(&self, id: String, handler: u32) {
        self.registry.rcu(|r| r.with_task(&id, handler));
    }

    #[napi]
    pub fn register_event(&self, id: String, handler: u32) {
        self.registry.rcu(|r| r.with_event(&id, handler));
    }

    #[napi]
    pub fn unregister_task(&self, id: String) {
        self.registry.rcu(|r| r.without(Kind::Task, &id));
    }

    #[napi]
    pub fn unregister_event(&self, id: String) {
        self.registry.rcu(|r| r.without(Kind::Event, &id));
    }

    /// Runner's allow-list as JSON `{enabled, allowOpen, tasks, events}`, or
    /// `null` to serve every registered id.
    #[napi]
    pub fn set_allow_list(&self, json: Option<String>) -> Result<()> {
        let list = match json {
            Some(text) => {
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| type_error(format!("allow list: {e}")))?;
                let strings = |key: &str| -> Vec<String> {
                    v.get(key)
                        .and_then(|a| a.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                Some(AllowList {
                    enabled: v.get("enabled").and_then(|b| b.as_bool()).unwrap_or(false),
                    allow_open: v
                        .get("allowOpen")
                        .and_then(|b| b.as_bool())
                        .unwrap_or(false),
                    tasks: strings("tasks"),
                    events: strings("events"),
                })
            }
            None => None,
        };
        self.registry.rcu(|r| r.with_allow_list(list.clone()));
        Ok(())
    }

    #[napi]
    pub fn task_ids(&self) -> Vec<String> {
        self.registry.load().task_ids().to_vec()
    }

    #[napi]
    pub fn event_ids(&self) -> Vec<String> {
        self.registry.load().event_ids().to_vec()
    }

    /// Binds and starts serving; throws an error whose `code` is the OS
    /// reason (e.g. `EADDRINUSE`) when binding fails.
    #[napi]
    pub fn listen(&self) -> Result<BoundAddress, &'static str> {
        let mut running = lock(&self.running);
        if running.is_some() {
            return Err(Error::new(
                "ERR_SERVER_ALREADY_LISTEN",
                "ERR_SERVER_ALREADY_LISTEN: server is already listening",
            ));
        }
        let dispatch = Arc::new(JsDispatch {
            pusher: self.pusher(),
        });
        let mut state = ServerState::new(&self.config, self.registry.clone(), dispatch)
            .with_metrics(self.metrics.clone());
        let sink = lock(&self.access_sink).clone();
        let mut access_drain = None;
        if sink.is_some() {
            let (log, drain) = AccessLog::new(metrics_shards(&self.config), QUEUE_CAPACITY);
            state = state.with_access(log);
            access_drain = Some(drain);
        }
        let server = bind(&self.config, state).map_err(|e| {
            let code = match e.kind() {
                std::io::ErrorKind::AddrInUse => "EADDRINUSE",
                std::io::ErrorKind::AddrNotAvailable => "EADDRNOTAVAIL",
                std::io::ErrorKind::PermissionDenied => "EACCES",
                _ if e.to_string().contains("lookup") || e.to_string().contains("invalid") => {
                    "ENOTFOUND"
                }
                _ => "ELISTEN",
            };
            Error::new(
                code,
                format!(
                    "{code}: cannot listen on {}:{}: {e}",
                    self.config.host(),
                    self.config.port
                ),
            )
        })?;
        let addr = BoundAddress {
            host: server.local_addr.ip().to_string(),
            port: u32::from(server.local_addr.port()),
            metrics_port: server.metrics_addr.map(|a| u32::from(a.port())),
        };
        if let Some(handle) = server.handle() {
            let (tx, rx) = mpsc::unbounded_channel();
            handle.spawn(deliver_answers(rx));
            *lock(&self.inbox.answers) = Some(tx);
            if let (Some(drain), Some(sink)) = (access_drain, sink) {
                handle.spawn(access::deliver(drain, sink));
            }
        }
        *running = Some(server);
        Ok(addr)
    }

    /// Stops accepting, lets in-flight requests finish (up to
    /// `grace_ms`), then frees the port and the runtime.
    #[napi]
    pub fn close(&self, grace_ms: u32) -> AsyncTask<CloseTask> {
        *lock(&self.inbox.answers) = None;
        AsyncTask::new(CloseTask {
            server: lock(&self.running).take(),
            grace_ms,
        })
    }

    /// Answers many calls at once: records of `ticket u32, status u32,
    /// length u32` (little-endian) each followed by `length` body bytes.
    #[napi]
    pub fn complete_many(&self, records: BufferSlice) {
        // One copy for every answer in the buffer; each answer is a view.
        let data = Bytes::copy_from_slice(&records);
        let mut answered = Vec::new();
        {
            let mut pending = lock(&self.inbox.pending);
            let mut answer = |ticket: u32, status: u16, body: Bytes| {
                if let Some(Pending::Call {
                    reply,
                    meta,
                    body: held,
                }) = pending.remove(&ticket)
                {
                    answered.push((
                        reply,
                        Reply {
                            status,
                            body: ReplyBody::Json(body),
                        },
                        Some((meta, held)),
                    ));
                }
            };
            for record in wire::answer_records(&data) {
                let (ticket, status) = (record.ticket, record.status);
                let body = data.slice(record.body);
                if ticket == wire::JOINED_RESULTS {
                    for (ticket, status, body) in joined_results(&body, status as usize) {
                        answer(ticket, status, body);
                    }
                } else {
                    answer(ticket, u16::try_from(status).unwrap_or(500), body);
                }
            }
        }
        self.deliver(answered);
    }

    /// Asks for the next chunk of a streamed request body.
    #[napi]
    pub fn read_more(&self, ticket: u32) {
        if let Some(window) = lock(&self.inbox.bodies_in).get(&ticket) {
            window.want_more();
        }
    }

    /// Stops reading a streamed request body (the handler is done with it).
    #[napi]
    pub fn release_body(&self, ticket: u32) {
        self.inbox.close_body(ticket);
    }

    /// Answers a call with a stream: `headers_json` is `[[name, value], ...]`,
    /// already filtered; `bare` leaves out the CORS and security headers
    /// (answers written through `ctx.res`). Returns false when the client is
    /// gone.
    #[napi]
    pub fn start_stream(&self, ticket: u32, status: u32, headers_json: String, bare: bool) -> bool {
        let Some(Pending::Call { reply, .. }) = self.take(ticket) else {
            return false;
        };
        let headers: Vec<(String, String)> =
            serde_json::from_str(&headers_json).unwrap_or_default();
        let resume = self.pusher();
        let gone = self.pusher();
        let (writer, body) = chunk_stream(
            Box::new(move || resume.push(Job::Resume(ticket))),
            Box::new(move || gone.push(Job::Gone(ticket))),
        );
        let status = u16::try_from(status).unwrap_or(200);
        if reply
            .send(Reply {
                status,
                body: ReplyBody::Stream {
                    headers,
                    body,
                    bare,
                },
            })
            .is_err()
        {
            return false;
        }
        lock(&self.inbox.answers_out).insert(ticket, writer);
        true
    }

    /// Writes a chunk of a streamed answer. Returns true to go on, false to
    /// pause until a resume record (or, once the client is gone, forever).
    #[napi]
    pub fn write_chunk(&self, ticket: u32, chunk: BufferSlice) -> bool {
        let data: &[u8] = &chunk;
        let mut answers = lock(&self.inbox.answers_out);
        let Some(writer) = answers.get(&ticket) else {
            return false;
        };
        match writer.write(Bytes::copy_from_slice(data)) {
            Some(go_on) => go_on,
            None => {
                answers.remove(&ticket);
                false
            }
        }
    }

    /// Ends a streamed answer.
    #[napi]
    pub fn end_stream(&self, ticket: u32) {
        let writer = lock(&self.inbox.answers_out).remove(&ticket);
        if let Some(writer) = writer {
            writer.end();
        }
    }

    /// Answers a dynamic CORS origin or a serialization question.
    #[napi]
    pub fn complete_text(&self, ticket: u32, text: Option<String>) {
        if let Some(Pending::Text(reply)) = self.take(ticket) {
            let _ = reply.send(text);
        }
    }

    /// Answers an auth validation question.
    #[napi]
    pub fn complete_auth(&self, ticket: u32, allowed: bool) {
        if let Some(Pending::Auth { reply, .. }) = self.take(ticket) {
            let _ = reply.send(allowed);
        }
    }

    /// Whether the client of a call is still waiting for its answer.
    #[napi]
    pub fn is_pending(&self, ticket: u32) -> bool {
        match lock(&self.inbox.pending).get(&ticket) {
            Some(Pending::Call { reply, .. }) => !reply.is_closed(),
            Some(_) => true,
            None => false,
        }
    }

    /// `{method, url, path, requestId, headers}` of a pending call as JSON,
    /// read lazily when a handler looks at its context.
    #[napi]
    pub fn request_info(&self, ticket: u32) -> Option<String> {
        let pending = lock(&self.inbox.pending);
        let meta = match pending.get(&ticket)? {
            Pending::Call { meta, .. } | Pending::Auth { meta, .. } => meta.clone(),
            Pending::Text(_) => return None,
        };
        drop(pending);
        Some(info_json(&meta))
    }
}

/// Runs when the JS environment goes away (a worker exiting or terminated
/// without `close()`): the server stops and its threads are joined here, so
/// none outlives the env and the port is free once the worker has exited.
impl Drop for NativeServer {
    fn drop(&mut self) {
        // Poisoned or not, the server must stop (see `lock`).
        let running = self
            .running
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(mut server) = running.take() {
            // No grace: the handlers' env is gone, no answer can come any more.
            server.shutdown_graceful(std::time::Duration::ZERO);
        }
    }
}

impl NativeServer {
    fn pusher(&self) -> Pusher {
        Pusher {
            inbox: self.inbox.clone(),
            wake: self.wake.clone(),
        }
    }

    fn deliver(&self, answered: Vec<Answered>) {
        if answered.is_empty() {
            return;
        }
        if let Some(rest) = self.inbox.deliver(answered) {
            for (reply, answer, _) in rest {
                let _ = reply.send(answer);
            }
        }
    }

    fn take(&self, ticket: u32) -> Option<Pending> {
        lock(&self.inbox.pending).remove(&ticket)
    }
}

/// The bodies of a joined-results record: `{"ok":true,"result":<element>}`
/// for each call, written into one buffer. If the record does not hold
/// `count` tickets and as many elements, each call gets the internal error.
fn joined_results(record: &[u8], count: usize) -> Vec<(u32, u16, Bytes)> {
    const HEAD: &[u8] = br#"{"ok":true,"result":"#;
    let Some((ids, text)) = count
        .checked_mul(4)
        .and_then(|n| (n <= record.len()).then(|| record.split_at(n)))
    else {
        return Vec::new();
    };
    let tickets = ids
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    let Some(ranges) = json::split_array(text, count) else {
        let internal = ProtocolError::InternalError;
        let body = Bytes::from(internal.body());
        return tickets
            .map(|t| (t, internal.status(), body.clone()))
            .collect();
    };
    let mut out = BytesMut::with_capacity(text.len() + count * (HEAD.len() + 1));
    let mut ends = Vec::with_capacity(count);
    for range in ranges {
        out.extend_from_slice(HEAD);
        out.extend_from_slice(&text[range]);
        out.extend_from_slice(b"}");
        ends.push(out.len());
    }
    let all = out.freeze();
    let mut start = 0;
    tickets
        .zip(ends)
        .map(|(ticket, end)| {
            let body = all.slice(start..end);
            start = end;
            (ticket, 200, body)
        })
        .collect()
}

fn info_json(meta: &RequestMeta) -> String {
    let headers = node_headers_json(
        &meta.headers,
        &[(REQUEST_ID_HEADER, meta.request_id.as_str())],
    );
    let mut out = String::with_capacity(headers.len() + 128);
    out.push_str(r#"{"method":"#);
    out.push_str(&serde_json::Value::String(meta.method.to_string()).to_string());
    out.push_str(r#","url":"#);
    out.push_str(&serde_json::Value::String(meta.url.clone()).to_string());
    out.push_str(r#","path":"#);
    out.push_str(&serde_json::Value::String(meta.path.clone()).to_string());
    out.push_str(r#","requestId":"#);
    out.push_str(&serde_json::Value::String(meta.request_id.clone()).to_string());
    out.push_str(r#","headers":"#);
    out.push_str(&headers);
    out.push('}');
    out
}

/// Graceful shutdown off the JS thread, so handlers can still complete.
pub struct CloseTask {
    server: Option<RunningServer>,
    grace_ms: u32,
}

impl Task for CloseTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<()> {
        if let Some(mut server) = self.server.take() {
            server.shutdown_graceful(std::time::Duration::from_millis(u64::from(self.grace_ms)));
        }
        Ok(())
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tickets: &[u32], text: &str) -> Vec<u8> {
        let mut out: Vec<u8> = tickets.iter().flat_map(|t| t.to_le_bytes()).collect();
        out.extend_from_slice(text.as_bytes());
        out
    }

    #[test]
    fn joined_results_become_one_envelope_per_call() {
        let rec = record(&[7, 3, 9], r#"[{"sum":3},"a,\"]",null]"#);
        let got: Vec<(u32, u16, String)> = joined_results(&rec, 3)
            .into_iter()
            .map(|(t, s, b)| (t, s, String::from_utf8_lossy(&b).into_owned()))
            .collect();
        assert_eq!(
            got,
            [
                (7, 200, r#"{"ok":true,"result":{"sum":3}}"#.to_owned()),
                (3, 200, r#"{"ok":true,"result":"a,\"]"}"#.to_owned()),
                (9, 200, r#"{"ok":true,"result":null}"#.to_owned()),
            ]
        );
    }

    #[test]
    fn a_joined_record_that_does_not_add_up_fails_each_call() {
        let rec = record(&[1, 2], "[1,2,3]");
        let got = joined_results(&rec, 2);
        assert_eq!(got.len(), 2);
        for (t, (ticket, status, body)) in [1, 2].into_iter().zip(got) {
            assert_eq!((ticket, status), (t, 500));
            assert_eq!(&body[..], ProtocolError::InternalError.body().as_bytes());
        }
        // Fewer ticket bytes than calls: nothing to answer with.
        assert!(joined_results(&[1, 0, 0], 1).is_empty());
    }
}
