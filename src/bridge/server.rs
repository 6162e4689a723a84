//! `NativeServer`, the class `index.js` wraps: each method converts its
//! arguments and forwards them to the inbox, the registry, the HTTP server
//! or the completion side (`answers`).

// Deny, not forbid: the `#[napi]` expansions allow unsafe for their own FFI glue.
#![deny(unsafe_code)]

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use bytes::Bytes;
use napi::bindgen_prelude::{AsyncTask, BufferSlice, Function};
use napi::{Env, Error, Result, Task};
use napi_derive::napi;
use tokio::sync::mpsc;

use crate::core::config::ServerConfig;
use crate::core::exposure::{AllowList, Kind, Registry};
use crate::http::access::{self, AccessDrain, AccessLog, AccessSink, QUEUE_CAPACITY};
use crate::http::metrics::Metrics;
use crate::http::metrics_shards;
use crate::http::stream::chunk_stream;
use crate::http::tls::server_config as tls_server_config;
use crate::http::{bind, Reply, ReplyBody, RunningServer, ServerState};
use crate::wire::POLLED_CHUNKS;

use super::answers::{self, deliver_answers};
use super::batch::{Answered, Inbox, Job, Pending, Polled};
use super::convert::{bind_error, info_json, server_config, AllowListInput};
use super::lock;
use super::observe::JsAccessSink;
use super::records::Batch;
use super::shared::{self, JoinError, Listener, Member, SharedAccess};
use super::wake::{JsDispatch, Pusher, WakeFn};

/// Room the batch scratch buffer keeps between batches.
const SCRATCH_KEEP: usize = 1 << 20;

/// The native half of `TunnelServer`. Use it through `index.js`, which
/// validates options, owns the handlers and speaks the batch format.
#[napi]
pub struct NativeServer {
    config: ServerConfig,
    registry: Arc<ArcSwap<Registry>>,
    pub(super) inbox: Arc<Inbox>,
    wake: Arc<WakeFn>,
    /// Behind a lock so that no method needs `&mut self`: JS may call in
    /// (answers, polls) while `close` runs.
    running: Mutex<Option<RunningServer>>,
    /// The length of a batch left in `scratch` for `take_spill` (it did not
    /// go into the caller's buffer).
    spill: Mutex<Option<usize>>,
    /// Where batches are written before they are copied out; kept between
    /// polls so it is not grown again for every batch.
    scratch: Mutex<Batch>,
    /// The shared listener this server is a member of, while it listens
    /// with `share`.
    joined: Mutex<Option<(Arc<Listener>, Arc<Member>)>>,
    /// A sharer closing: the calls it still finishes, failed at once if
    /// the isolate goes away first.
    leaving: Mutex<Option<(Arc<Listener>, Arc<Member>)>>,
    /// What the server counts when it listens alone, kept across listens
    /// (a sharer shows its listener's figures: `Inbox::metrics`).
    pub(super) metrics: Arc<Metrics>,
    /// Where access records go, once `onAccess` is set (`observe.rs`).
    pub(super) access_sink: Mutex<Option<Arc<JsAccessSink>>>,
}

/// The address a listening server is bound to.
#[napi(object)]
pub struct BoundAddress {
    pub host: String,
    pub port: u32,
    /// The metrics' own port, when `metrics.port` is set.
    pub metrics_port: Option<u32>,
}

#[napi]
impl NativeServer {
    /// `config`: the options as `lib/options.js` validated them; `on_jobs()`:
    /// called on the JS thread when jobs are queued and JS is not already
    /// fetching them (with [`NativeServer::poll_into`]).
    #[napi(constructor)]
    pub fn new(config: serde_json::Value, on_jobs: Function<'_, (), ()>) -> Result<Self> {
        let config = server_config(config)?.leaving_a_core_to_js();
        let metrics = Arc::new(Metrics::new(metrics_shards(&config)));
        let inbox = Inbox::with_metrics(metrics.clone());
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
            scratch: Mutex::new(Batch::default()),
            joined: Mutex::new(None),
            leaving: Mutex::new(None),
            metrics,
            access_sink: Mutex::new(None),
        })
    }

    /// Fetches the queued jobs into `into`: returns the bytes written (plus
    /// `POLLED_CHUNKS` when they hold body chunks, which JS keeps views of:
    /// it must not reuse `into` then), -1 when there are none (the next job
    /// calls `on_jobs`), or -2 when they are waiting in a buffer of their
    /// own (`take_spill`), too big for `into`.
    #[napi]
    pub fn poll_into(&self, mut into: BufferSlice) -> i64 {
        let mut scratch = lock(&self.scratch);
        scratch.clear(SCRATCH_KEEP);
        let Polled::Records { chunks } = self.inbox.poll(&mut scratch) else {
            return -1;
        };
        let n = scratch.len();
        if n <= into.len() && n < POLLED_CHUNKS as usize {
            scratch.copy_to(&mut into[..n]);
            // Let go of the chunks' pieces (and the read buffers they hold) now.
            scratch.clear(SCRATCH_KEEP);
            let flag = if chunks { i64::from(POLLED_CHUNKS) } else { 0 };
            return n as i64 + flag;
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
        let copy = match scratch.contiguous() {
            Some(records) => BufferSlice::copy_from(env, records.get(..n).unwrap_or_default())?,
            None => BufferSlice::copy_from(env, scratch.to_vec().get(..n).unwrap_or_default())?,
        };
        // Keep the scratch buffer's room for the next batch, up to a limit.
        scratch.clear(SCRATCH_KEEP);
        Ok(Some(copy))
    }

    #[napi]
    pub fn register_task(&self, id: String, handler: u32) {
        self.registry.rcu(|r| r.with_task(&id, handler));
        self.registry_changed();
    }

    #[napi]
    pub fn register_event(&self, id: String, handler: u32) {
        self.registry.rcu(|r| r.with_event(&id, handler));
        self.registry_changed();
    }

    #[napi]
    pub fn unregister_task(&self, id: String) {
        self.registry.rcu(|r| r.without(Kind::Task, &id));
        self.registry_changed();
    }

    #[napi]
    pub fn unregister_event(&self, id: String) {
        self.registry.rcu(|r| r.without(Kind::Event, &id));
        self.registry_changed();
    }

    /// Runner's allow-list, or `null` to serve every registered id.
    #[napi]
    pub fn set_allow_list(&self, list: Option<AllowListInput>) {
        let list: Option<AllowList> = list.map(AllowList::from);
        self.registry.rcu(|r| r.with_allow_list(list.clone()));
        self.registry_changed();
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
    /// reason (e.g. `EADDRINUSE`) when binding fails, or `ERR_TLS_CONFIG`
    /// when the `tls` option cannot be served.
    #[napi]
    pub fn listen(&self) -> Result<BoundAddress, &'static str> {
        if self.config.share {
            return self.listen_shared();
        }
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
        self.inbox.metrics.store(self.metrics.clone());
        let mut state = ServerState::new(&self.config, self.registry.clone(), dispatch)
            .with_metrics(self.metrics.clone());
        if let Some(tls) = &self.config.tls {
            // Checked here, before binding: a bad certificate, key or
            // passphrase fails `listen()` and the port stays free.
            let tls = tls_server_config(tls)
                .map_err(|e| Error::new("ERR_TLS_CONFIG", format!("ERR_TLS_CONFIG: {e}")))?;
            state = state.with_tls(tls);
        }
        let sink = lock(&self.access_sink).clone();
        let (state, access_drain) = with_access_log(state, &self.config, sink.is_some());
        let server = bind(&self.config, state)
            .map_err(|e| bind_error(&e, self.config.host(), self.config.port))?;
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
        let mut leaving = None;
        let server = match lock(&self.joined).take() {
            // A sharer stops receiving calls at once; the listener stops
            // with its last sharer.
            Some((listener, member)) => {
                let last = listener.remove(&member);
                *lock(&self.leaving) = Some((listener.clone(), member.clone()));
                leaving = Some((listener, member));
                last
            }
            None => lock(&self.running).take(),
        };
        if let Some(server) = &server {
            // At once, not when the task gets a thread of the pool.
            server.stop_accepting();
        }
        AsyncTask::new(CloseTask {
            server,
            leaving,
            grace_ms,
        })
    }

    /// Answers many calls at once: records of `ticket u32, status u32,
    /// length u32` (little-endian) each followed by `length` body bytes.
    #[napi]
    pub fn complete_many(&self, records: BufferSlice) {
        // One copy for every answer in the buffer; each answer is a view.
        let data = Bytes::copy_from_slice(&records);
        let answered = answers::answered_calls(&mut lock(&self.inbox.pending), &data);
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
        let joined = self
            .joined
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((listener, member)) = joined {
            // The others go on serving; what this isolate held is answered 500.
            let last = listener.remove(&member);
            member.fail_leftovers();
            listener.forget(&member);
            if let Some(mut server) = last {
                server.shutdown_graceful(std::time::Duration::ZERO);
            }
        }
        // Terminated while closing: the calls it was finishing cannot be.
        let leaving = self
            .leaving
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((listener, member)) = leaving.filter(|(_, m)| m.alive()) {
            member.fail_leftovers();
            listener.forget(&member);
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

    /// The shared listener learns of a change to this member's handlers.
    fn registry_changed(&self) {
        if let Some((listener, _)) = lock(&self.joined).as_ref() {
            listener.rebuild();
        }
    }

    /// `listen` with `share`: joins the listener on the same host and port,
    /// or binds one that others may join.
    fn listen_shared(&self) -> Result<BoundAddress, &'static str> {
        let mut joined = lock(&self.joined);
        if joined.is_some() {
            return Err(Error::new(
                "ERR_SERVER_ALREADY_LISTEN",
                "ERR_SERVER_ALREADY_LISTEN: server is already listening",
            ));
        }
        let tls = match &self.config.tls {
            Some(tls) => Some(
                tls_server_config(tls)
                    .map_err(|e| Error::new("ERR_TLS_CONFIG", format!("ERR_TLS_CONFIG: {e}")))?,
            ),
            None => None,
        };
        let sink = lock(&self.access_sink).clone();
        let member = Member::new(
            self.registry.clone(),
            JsDispatch {
                pusher: self.pusher(),
            },
            sink.clone().map(|s| s as Arc<dyn AccessSink>),
        );
        let host = self.config.host();
        let config = &self.config;
        let listener = shared::join(config, member.clone(), |dispatch, registry, metrics| {
            let mut state =
                ServerState::new(config, registry, dispatch.clone()).with_metrics(metrics);
            if let Some(tls) = tls {
                state = state.with_tls(tls);
            }
            // The listener's access log goes to the sharers' `onAccess`, one at a time.
            let (state, access_drain) = with_access_log(state, config, sink.is_some());
            let server = bind(config, state)?;
            if let (Some(handle), Some(drain)) = (server.handle(), access_drain) {
                handle.spawn(access::deliver(drain, SharedAccess::new(dispatch)));
            }
            Ok(server)
        })
        .map_err(|e| match e {
            JoinError::Bind(e) => bind_error(&e, host, config.port),
            JoinError::Mismatch(field) => Error::new(
                "ERR_SHARE_MISMATCH",
                format!(
                    "ERR_SHARE_MISMATCH: option \"{field}\" differs from the server sharing {host}:{}",
                    config.port
                ),
            ),
        })?;
        if let Some(handle) = listener.handle() {
            let (tx, rx) = mpsc::unbounded_channel();
            handle.spawn(deliver_answers(rx));
            *lock(&self.inbox.answers) = Some(tx);
        }
        let addr = BoundAddress {
            host: listener.local_addr.ip().to_string(),
            port: u32::from(listener.local_addr.port()),
            metrics_port: listener.metrics_addr.map(|a| u32::from(a.port())),
        };
        *joined = Some((listener, member));
        Ok(addr)
    }
}

/// `state` with an access log when `onAccess` is given, and the drain that
/// delivers its records.
fn with_access_log(
    state: ServerState,
    config: &ServerConfig,
    wanted: bool,
) -> (ServerState, Option<AccessDrain>) {
    if !wanted {
        return (state, None);
    }
    let (log, drain) = AccessLog::new(metrics_shards(config), QUEUE_CAPACITY);
    (state.with_access(log), Some(drain))
}

/// Graceful shutdown off the JS thread, so handlers can still complete.
pub struct CloseTask {
    server: Option<RunningServer>,
    /// A sharer leaving its listener: its calls finish (up to the grace),
    /// then what is left is answered 500.
    leaving: Option<(Arc<Listener>, Arc<Member>)>,
    grace_ms: u32,
}

impl Task for CloseTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<()> {
        let grace = std::time::Duration::from_millis(u64::from(self.grace_ms));
        // One grace for both: the listener's connections and this sharer's calls.
        let until = std::time::Instant::now() + grace;
        if let Some(mut server) = self.server.take() {
            server.shutdown_graceful(grace);
        }
        if let Some((listener, member)) = self.leaving.take() {
            shared::settle(&member, until);
            member.fail_leftovers();
            listener.forget(&member);
        }
        Ok(())
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }
}
