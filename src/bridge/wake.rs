//! Waking the JS thread: workers queue jobs on the inbox and the first job
//! after JS went idle wakes it, once per round of ready tasks; and the
//! [`Dispatch`] the HTTP server calls, which queues its calls as jobs.

#![forbid(unsafe_code)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use tokio::sync::oneshot;

use crate::http::stream::{pull_request_body, PullWindow};
use crate::http::{Call, Dispatch, RequestMeta};

use super::batch::{Inbox, Job};

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
            self.inbox.clock.owe();
            self.inbox.batch_clock.wake_requested();
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
    fn submit(&self, mut call: Call) -> u64 {
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
        u64::from(ticket)
    }

    fn abort(&self, ticket: u64) {
        // Only tickets it gave out come back, and those fit.
        if let Ok(ticket) = u32::try_from(ticket) {
            self.push(Job::Abort(ticket));
        }
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

    fn untaken_for(&self) -> Duration {
        let inbox = &self.pusher.inbox;
        if !inbox.scheduled.load(Ordering::SeqCst) {
            // JS owes nothing: wake it, so that a JS thread that no longer
            // runs owes this look from now on.
            self.push(Job::Ping);
            return Duration::ZERO;
        }
        inbox.clock.owed_for()
    }
}
