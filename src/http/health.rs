//! The health and readiness probes on the wire (`core::health` decides what
//! they answer): answered on the server's thread, without waking JS.

#![forbid(unsafe_code)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response};

use crate::core::envelope::ProtocolError;
use crate::core::health::{Probe, Probes};

use super::answer::{self, AnswerHeaders, Body};
use super::state::ServerState;

/// The probe a request's pathname asks for, if any.
pub(super) fn probe_at<'a>(state: &'a ServerState, pathname: &str) -> Option<(&'a Probes, Probe)> {
    let probes = state.probes.as_ref()?;
    probes.at(pathname).map(|probe| (probes, probe))
}

/// A probe's answer: GET and HEAD get the verdict, with `cache-control:
/// no-store` (a cached probe says nothing); other methods get 405.
pub(super) async fn answer(
    state: &ServerState,
    probes: &Probes,
    method: &Method,
    probe: Probe,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let err = ProtocolError::MethodNotAllowed;
        let mut res = json(err.status(), err.body());
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let draining = state.draining.load(Ordering::Relaxed);
    let untaken = match probe {
        Probe::Ready if !draining => untaken_for(state, probes.ready_timeout).await,
        _ => Duration::ZERO,
    };
    let (status, body) = probes.verdict(probe, draining, untaken);
    json(status, body)
}

/// How long queued calls have waited for JS. A reading past the limit is
/// taken again a scheduler turn later, and the shorter one counts: a wake-up
/// being recorded on another worker at that instant can show the previous
/// wake-up's time until its own is stored.
async fn untaken_for(state: &ServerState, limit: Duration) -> Duration {
    let first = state.dispatch.untaken_for();
    if first <= limit {
        return first;
    }
    tokio::task::yield_now().await;
    first.min(state.dispatch.untaken_for())
}

fn json(status: u16, body: String) -> Response<Body> {
    let none = AnswerHeaders {
        request_id: None,
        cors: &[],
    };
    let mut res = answer::json(status, Bytes::from(body), &none);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
