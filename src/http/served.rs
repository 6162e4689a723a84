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
    answered: Option<Instant>,
    /// What the handler routed the request as.
    pub kind: KindSlot,
    status: u16,
    /// Bytes of the request on the wire: its head, then its body.
    pub received: u64,
    /// Bytes of the answer on the wire.
    pub sent: u64,
    /// Only with an access log: what its record needs of the request.
    method: Option<Method>,
    target: Option<Uri>,
    request_id: Option<HeaderValue>,
}

impl<'a> Served<'a> {
    /// A request whose head (`head_len` bytes) was just parsed.
    pub fn begin(state: &'a ServerState, method: &Method, target: &Uri, head_len: usize) -> Self {
        // Shared buffers: cloning them copies nothing.
        let logged = state.access.is_some();
        Served {
            state,
            begun: Instant::now(),
            answered: None,
            kind: KindSlot::default(),
            status: CLIENT_GONE,
            received: head_len as u64,
            sent: 0,
            method: logged.then(|| method.clone()),
            target: logged.then(|| target.clone()),
            request_id: None,
        }
    }

    /// The answer's head is about to be written.
    pub fn answer(&mut self, parts: &response::Parts) {
        self.status = parts.status.as_u16();
        if self.state.access.is_some() {
            self.request_id = parts.headers.get(REQUEST_ID).cloned();
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
        self.answered = Some(Instant::now());
    }
}

impl Drop for Served<'_> {
    fn drop(&mut self) {
        let done = self.answered.unwrap_or_else(Instant::now);
        let nanos = done.saturating_duration_since(self.begun).as_nanos() as u64;
        let metrics = &self.state.metrics;
        metrics.request(
            self.kind.get(),
            self.status,
            Some(nanos),
            self.received,
            self.sent,
        );
        if let Some(log) = &self.state.access {
            let record = AccessRecord {
                method: self.method.take(),
                target: self.target.take(),
                status: self.status,
                nanos,
                received: self.received,
                sent: self.sent,
                request_id: self.request_id.take(),
            };
            log.push(metrics.slot(), record, metrics);
        }
    }
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
