//! Load shedding: `maxInFlight` (calls queued for or running in
//! JavaScript; past it a call is answered 503 from Rust) and
//! `maxConnections` (past it a new connection is closed as soon as it is
//! accepted). Each is one counter shared by every worker, touched only when
//! its limit is set.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Response};

use crate::core::envelope::ProtocolError;

use super::answer::{self, AnswerHeaders, Body};

/// The body of a 503 past `maxInFlight`: written from Rust, never through
/// the user's serializer, so that answering it wakes no JavaScript.
pub const OVERLOADED_BODY: &str =
    r#"{"ok":false,"error":{"message":"Server busy","code":"OVERLOADED"}}"#;

/// The calls admitted to JavaScript, against `maxInFlight`.
pub struct InFlight {
    /// 0: no limit, and nothing counted.
    limit: usize,
    count: AtomicUsize,
    retry_after: HeaderValue,
}

/// A call's place among the admitted; given back when dropped.
pub struct Admitted<'a>(Option<&'a AtomicUsize>);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if let Some(count) = self.0 {
            count.fetch_sub(1, Relaxed);
        }
    }
}

impl InFlight {
    pub fn new(limit: Option<usize>, retry_after_secs: u64) -> Self {
        InFlight {
            limit: limit.unwrap_or(0),
            count: AtomicUsize::new(0),
            retry_after: HeaderValue::from(retry_after_secs),
        }
    }

    /// Whether the limit is reached now: checked before anything that could
    /// wake JavaScript (a dynamic CORS origin, auth validators) or read a
    /// body. A hint only; [`InFlight::admit`] decides.
    pub fn is_full(&self) -> bool {
        self.limit != 0 && self.count.load(Relaxed) >= self.limit
    }

    /// Takes a place for a call about to go to JavaScript, held until its
    /// reply comes (or its client goes away); `None`: the limit is reached.
    pub fn admit(&self) -> Option<Admitted<'_>> {
        if self.limit == 0 {
            return Some(Admitted(None));
        }
        if self.count.fetch_add(1, Relaxed) >= self.limit {
            self.count.fetch_sub(1, Relaxed);
            return None;
        }
        Some(Admitted(Some(&self.count)))
    }

    /// How many calls hold a place (0 without a limit).
    pub fn count(&self) -> usize {
        self.count.load(Relaxed)
    }

    /// The 503 past the limit: the protocol's error envelope (code
    /// `OVERLOADED`), `Retry-After`, the request id and CORS headers. Out of
    /// line, so that the request path it is branched off stays as small.
    #[cold]
    #[inline(never)]
    pub fn overloaded(&self, extra: &AnswerHeaders<'_>) -> Response<Body> {
        let err = ProtocolError::Overloaded;
        let mut res = answer::json(
            err.status(),
            Bytes::from_static(OVERLOADED_BODY.as_bytes()),
            extra,
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, self.retry_after.clone());
        res
    }
}

/// The open connections, against `maxConnections`.
pub struct ConnLimit {
    /// 0: no limit, and nothing counted.
    limit: usize,
    open: Arc<AtomicUsize>,
}

/// What the accept loop does with a new connection.
pub enum Admission {
    /// No limit: served as is.
    Unlimited,
    /// Served, holding this place until it closes.
    Slot(ConnSlot),
    /// Past the limit: closed at once.
    Refused,
}

/// An open connection's place; given back when dropped.
pub struct ConnSlot(Arc<AtomicUsize>);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl ConnLimit {
    pub fn new(limit: Option<usize>) -> Self {
        ConnLimit {
            limit: limit.unwrap_or(0),
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn admit(&self) -> Admission {
        if self.limit == 0 {
            return Admission::Unlimited;
        }
        if self.open.fetch_add(1, Relaxed) >= self.limit {
            self.open.fetch_sub(1, Relaxed);
            return Admission::Refused;
        }
        Admission::Slot(ConnSlot(Arc::clone(&self.open)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overloaded_body_is_the_protocol_envelope() {
        assert_eq!(OVERLOADED_BODY, ProtocolError::Overloaded.body());
        assert_eq!(ProtocolError::Overloaded.status(), 503);
    }

    #[test]
    fn in_flight_admits_up_to_the_limit_and_again_once_a_place_is_free() {
        let flight = InFlight::new(Some(2), 1);
        let a = flight.admit();
        let b = flight.admit();
        assert!(a.is_some() && b.is_some());
        assert!(flight.is_full());
        assert!(flight.admit().is_none());
        assert_eq!(flight.count(), 2, "a refusal leaves the count as it was");
        drop(a);
        assert!(!flight.is_full());
        assert!(flight.admit().is_some());
        drop(b);
        assert_eq!(flight.count(), 0);
    }

    #[test]
    fn without_a_limit_nothing_is_counted_or_refused() {
        let flight = InFlight::new(None, 1);
        let held: Vec<_> = (0..1000).filter_map(|_| flight.admit()).collect();
        assert_eq!(held.len(), 1000);
        assert_eq!(flight.count(), 0);
        assert!(!flight.is_full());
        assert!(matches!(ConnLimit::new(None).admit(), Admission::Unlimited));
    }

    #[test]
    fn connections_past_the_limit_are_refused_until_one_closes() {
        let conns = ConnLimit::new(Some(1));
        let first = conns.admit();
        assert!(matches!(first, Admission::Slot(_)));
        assert!(matches!(conns.admit(), Admission::Refused));
        drop(first);
        assert!(matches!(conns.admit(), Admission::Slot(_)));
    }

    #[test]
    fn the_503_carries_retry_after_and_the_envelope() {
        let flight = InFlight::new(Some(1), 7);
        let id = HeaderValue::from_static("req-1");
        let res = flight.overloaded(&AnswerHeaders {
            request_id: Some(&id),
            cors: &[],
        });
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()[header::RETRY_AFTER], "7");
        assert_eq!(res.headers()["x-runner-request-id"], "req-1");
        assert_eq!(
            res.headers()[header::CONTENT_LENGTH],
            OVERLOADED_BODY.len().to_string().as_str()
        );
    }
}
