//! What the server shows of itself: its figures (`stats()`, the Prometheus
//! text) and the access log's way into JavaScript, a weak
//! ThreadsafeFunction called at most once per delivery interval with a
//! JSON array of records.

// Deny, not forbid: the `#[napi]` expansions allow unsafe for their own FFI glue.
#![deny(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Result, Status};
use napi_derive::napi;

use super::lock;
use super::server::NativeServer;
use crate::http::access::AccessSink;

type AccessFn = ThreadsafeFunction<String, (), String, Status, false, true, 0>;

/// Hands batches of access records to JS, one at a time: the next is
/// delivered once JS has taken the one before.
pub struct JsAccessSink {
    call: AccessFn,
    /// JS has taken the last delivery (or none was made).
    taken: Arc<AtomicBool>,
}

impl AccessSink for JsAccessSink {
    fn ready(&self) -> bool {
        self.taken.load(Ordering::Acquire)
    }

    fn deliver(&self, json: String) {
        self.taken.store(false, Ordering::Release);
        let status = self
            .call
            .call(json, ThreadsafeFunctionCallMode::NonBlocking);
        if status != Status::Ok {
            // Not queued (the environment is closing): nothing to wait for.
            self.taken.store(true, Ordering::Release);
        }
    }
}

#[napi]
impl NativeServer {
    /// The server's figures as JSON (`lib/stats.js` gives them their shape);
    /// a sharer's are its listener's, every sharer's calls counted.
    #[napi]
    pub fn stats_json(&self) -> String {
        self.inbox.metrics.load().stats_json()
    }

    /// The server's figures in Prometheus' text format (a sharer's: its
    /// listener's).
    #[napi]
    pub fn metrics_text(&self) -> String {
        self.inbox.metrics.load().render()
    }

    /// `on_access(json)`: called with a JSON array of finished requests, at
    /// most every 50 ms, from the next `listen` on.
    #[napi]
    pub fn set_access_sink(&self, on_access: Function<'_, String, ()>) -> Result<()> {
        let taken = Arc::new(AtomicBool::new(true));
        let on_js = taken.clone();
        // Weak: it alone never keeps the event loop alive.
        let call: AccessFn = on_access
            .build_threadsafe_function::<String>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(move |ctx| {
                on_js.store(true, Ordering::Release);
                Ok(ctx.value)
            })?;
        *lock(&self.access_sink) = Some(Arc::new(JsAccessSink { call, taken }));
        Ok(())
    }
}
