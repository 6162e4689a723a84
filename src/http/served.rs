//! One request as the metrics and the access log see it: begun when its
//! head is parsed, counted (and its access record queued) when the
//! connection is done with it, however that ends.

#![forbid(unsafe_code)]

use http::{response, HeaderName, HeaderValue, Method, Uri};
use tokio::time::Instant;

use super::access::AccessRecord;
use super::h1::Refusal;
use super::metrics::{KindSlot, RequestKind};
use super::state::ServerState;
use crate::core::request_id::REQUEST_ID_HEADER;

const REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// Status of a request whose client went away before its answer was
/// written (as nginx logs it).
pub const CLIENT_GONE: u16 = 499;

pub struct Served<'a> {
    state: &'a ServerState,
    begun: Instant,
    /// Nanoseconds from `begun` to the answer written; 0: not (yet) written.
    answered_after: u64,
    /// What the handler routed the request as.
    pub kind: KindSlot,
    status: u16,
    /// Bytes of the request on the wire: its head, then its body.
    pub received: u64,
    /// Bytes of the answer on the wire.
    pub sent: u64,
    /// Only with an access log: what its record needs of the request (boxed:
    /// every connection's future would otherwise hold room for it).
    logged: Option<Box<Logged>>,
}

/// What an access record takes from the request and its answer.
struct Logged {
    method: Method,
    target: Uri,
    request_id: Option<HeaderValue>,
}

impl<'a> Served<'a> {
    /// A request whose head (`head_len` bytes) was just parsed.
    pub fn begin(state: &'a ServerState, method: &Method, target: &Uri, head_len: usize) -> Self {
        Served {
            state,
            begun: Instant::now(),
            answered_after: 0,
            kind: KindSlot::default(),
            status: CLIENT_GONE,
            received: head_len as u64,
            sent: 0,
            // Shared buffers: cloning them copies nothing.
            logged: state.access.as_ref().map(|_| {
                Box::new(Logged {
                    method: method.clone(),
                    target: target.clone(),
                    request_id: None,
                })
            }),
        }
    }

    /// The answer's head is about to be written.
    pub fn answer(&mut self, parts: &response::Parts) {
        self.status = parts.status.as_u16();
        if let Some(logged) = self.logged.as_mut() {
            logged.request_id = parts.headers.get(REQUEST_ID).cloned();
        }
    }

    /// The request was refused with this fixed answer (`HTTP/1.1 NNN ...`),
    /// now written.
    pub fn refused(&mut self, answer: &[u8]) {
        self.status = status_of(answer);
        self.sent += answer.len() as u64;
        self.written();
    }

    /// The answer has been written whole.
    pub fn written(&mut self) {
        self.answered_after = nanos_since(self.begun).max(1);
    }
}

impl Drop for Served<'_> {
    fn drop(&mut self) {
        let nanos = match self.answered_after {
            0 => nanos_since(self.begun),
            after => after,
        };
        let metrics = &self.state.metrics;
        metrics.request(
            self.kind.get(),
            self.status,
            Some(nanos),
            self.received,
            self.sent,
        );
        if let (Some(log), Some(logged)) = (&self.state.access, self.logged.take()) {
            let Logged {
                method,
                target,
                request_id,
            } = *logged;
            let record = AccessRecord {
                method: Some(method),
                target: Some(target),
                status: self.status,
                nanos,
                received: self.received,
                sent: self.sent,
                request_id,
            };
            log.push(metrics.slot(), record, metrics);
        }
    }
}

fn nanos_since(begun: Instant) -> u64 {
    u64::try_from(begun.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A request refused before its head was whole: no kind, no duration.
pub fn refused_head(state: &ServerState, refusal: Refusal, received: usize) {
    let answer = refusal.answer();
    let status = status_of(answer);
    let (received, sent) = (received as u64, answer.len() as u64);
    let metrics = &state.metrics;
    metrics.request(RequestKind::Other, status, None, received, sent);
    if let Some(log) = &state.access {
        let record = AccessRecord {
            method: None,
            target: None,
            status,
            nanos: 0,
            received,
            sent,
            request_id: None,
        };
        log.push(metrics.slot(), record, metrics);
    }
}

/// The status of a fixed answer (`HTTP/1.1 NNN ...`).
fn status_of(answer: &[u8]) -> u16 {
    answer
        .get(9..12)
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_answers_status_is_read_from_its_status_line() {
        assert_eq!(status_of(Refusal::Bad.answer()), 400);
        assert_eq!(status_of(Refusal::Timeout.answer()), 408);
        assert_eq!(status_of(Refusal::ExtensionsTooLarge.answer()), 413);
        assert_eq!(status_of(Refusal::TooLarge.answer()), 431);
        assert_eq!(status_of(b"junk"), 0);
    }
}
