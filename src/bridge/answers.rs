//! The completion side: the answer records JS hands back (`completeMany`)
//! become the calls' replies, woken on the server's runtime.

#![forbid(unsafe_code)]

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::core::envelope::{self, ProtocolError};
use crate::core::json;
use crate::http::{Reply, ReplyBody};
use crate::wire;

use super::batch::{Answered, Pending, TicketMap};

/// Runs on the server's runtime: wakes the waiting requests locally (one
/// cross-thread wake-up per batch of answers instead of one per answer).
pub async fn deliver_answers(mut rx: mpsc::UnboundedReceiver<Vec<Answered>>) {
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

/// The calls an answer buffer answers, taken out of `pending`: records of
/// `ticket u32, status u32, length u32` (little-endian) each followed by
/// `length` body bytes; a record of joined results answers several.
pub fn answered_calls(pending: &mut TicketMap<Pending>, data: &Bytes) -> Vec<Answered> {
    let mut answered = Vec::new();
    let mut answer = |ticket: u32, status: u16, body: Bytes| {
        if let Some(Pending::Call {
            reply,
            meta,
            body: held,
            ..
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
    for record in wire::answer_records(data) {
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
    answered
}

/// The bodies of a joined-results record: `{"ok":true,"result":<element>}`
/// for each call, written into one buffer. If the record does not hold
/// `count` tickets and as many elements, each call gets the internal error.
fn joined_results(record: &[u8], count: usize) -> Vec<(u32, u16, Bytes)> {
    const HEAD: &[u8] = envelope::OK_RESULT_PREFIX.as_bytes();
    const TAIL: &[u8] = envelope::OK_RESULT_SUFFIX.as_bytes();
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
    let mut out = BytesMut::with_capacity(text.len() + count * (HEAD.len() + TAIL.len()));
    let mut ends = Vec::with_capacity(count);
    for range in ranges {
        out.extend_from_slice(HEAD);
        out.extend_from_slice(&text[range]);
        out.extend_from_slice(TAIL);
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
