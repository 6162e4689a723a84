#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};
use tokio::sync::oneshot;

use crate::core::body::BodyKind;
use crate::core::exposure::Kind;

use super::answer::Reply;
use super::body::RequestBody;

/// What the handler may look at besides the body; read lazily from JS.
#[derive(Debug)]
pub struct RequestMeta {
    pub method: Method,
    /// The request target as sent (path and query).
    pub url: String,
    /// The WHATWG-normalised pathname.
    pub path: String,
    pub request_id: String,
    pub headers: HeaderMap,
}

/// One handler invocation.
pub struct Call {
    pub kind: Kind,
    pub handler: u32,
    pub body_kind: BodyKind,
    pub body: Bytes,
    /// JS may read `body` with `JSON.parse` (`JsonCalls::reads_as_json`,
    /// decided here on the HTTP worker, not on the JS thread).
    pub json_text: bool,
    /// The unread request body, for handlers that stream it themselves.
    pub body_stream: Option<RequestBody>,
    pub meta: Arc<RequestMeta>,
    pub reply: oneshot::Sender<Reply>,
    /// Held as long as the call is queued or running, by a dispatcher that
    /// counts them (a shared listener choosing the least busy isolate).
    pub load: Option<LoadGuard>,
}

/// One call counted in a load counter, until dropped.
pub struct LoadGuard(Arc<AtomicUsize>);

impl LoadGuard {
    pub fn new(counter: &Arc<AtomicUsize>) -> LoadGuard {
        counter.fetch_add(1, Ordering::Relaxed);
        LoadGuard(counter.clone())
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where calls go. Implementations must not block the caller: they queue and
/// answer through the oneshot senders.
pub trait Dispatch: Send + Sync + 'static {
    /// Queue a call; returns a ticket used to signal abort.
    fn submit(&self, call: Call) -> u64;
    /// The client went away before the call answered.
    fn abort(&self, ticket: u64);
    /// Resolve a function or RegExp CORS origin for a request origin.
    fn resolve_origin(&self, origin: Option<String>, reply: oneshot::Sender<Option<String>>);
    /// Re-serialize a JSON answer the server wrote with the user's serializer.
    fn serialize(&self, json: String, reply: oneshot::Sender<Option<String>>);
    /// Run auth validators; answers whether the request may pass.
    fn validate_auth(&self, meta: Arc<RequestMeta>, reply: oneshot::Sender<bool>);
    /// A request was refused by auth: `{requestId, method, path, status,
    /// code}` as JSON, for the audit log.
    fn auth_failed(&self, record: String);
    /// For the readiness probe: how long queued calls have waited for the
    /// handlers to take them (zero when they keep up). May queue a no-op, so
    /// that handlers that have stopped show on the next ask even without
    /// traffic. Handlers on the server's own threads never fall behind.
    fn untaken_for(&self) -> Duration {
        Duration::ZERO
    }
}
