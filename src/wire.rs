//! The formats the bridge and `lib/wire.js` exchange, defined once: the
//! batch records the JS thread reads and the answer records it writes back.
//! No napi here, so `cargo test` checks the layouts; the bridge exports the
//! numbers to JS (`#[napi]` constants), which reads them from there.
//!
//! A batch record: `kind u8, flags u8, reserved u16, ticket u32, handler u32,
//! length u32` (little-endian), then `length` bytes. An answer record:
//! `ticket u32, status u32, length u32`, then `length` bytes of answer body.

#![forbid(unsafe_code)]

use std::ops::Range;

/// A task call; its flags are the body kind, with [`FLAG_JOINED`].
pub const KIND_TASK: u8 = 0;
/// An event call, flagged as a task call is.
pub const KIND_EVENT: u8 = 1;
/// The client went away before the answer.
pub const KIND_ABORT: u8 = 2;
/// A CORS origin for JS to decide; flag 1: an origin was sent (latin1).
pub const KIND_ORIGIN: u8 = 3;
/// The `validate` hook is asked about a request.
pub const KIND_AUTH: u8 = 4;
/// An envelope for a user serializer to write again (JSON text).
pub const KIND_SERIALIZE: u8 = 5;
/// What arrived of a streamed request body in this batch.
pub const KIND_BODY_CHUNK: u8 = 6;
/// A streamed request body ended.
pub const KIND_BODY_END: u8 = 7;
/// A streamed request body broke off.
pub const KIND_BODY_ERROR: u8 = 8;
/// A paused streamed answer may be written again.
pub const KIND_RESUME: u8 = 9;
/// A streamed answer lost its client.
pub const KIND_GONE: u8 = 10;
/// A refused request, for the audit log (ticket 0; a JSON record).
pub const KIND_AUTH_FAILED: u8 = 11;
/// The JSON bodies of a batch's small calls, joined into one array text
/// (ticket 0, last in the batch; the handler field is their count; flag 1:
/// the text is ASCII).
pub const KIND_VALUES: u8 = 12;
/// Flag of a call whose body is the next element of the batch's values
/// record rather than the record's own bytes.
pub const FLAG_JOINED: u8 = 0x80;
/// Flag of a call whose body JS may read with `JSON.parse` (one JSON value
/// its serializer reads as `JSON.parse` does); joined calls are such calls.
pub const FLAG_JSON_TEXT: u8 = 0x40;
/// Most bytes one read of a request body brings (the HTTP side reads 64 KiB
/// at a time, as Node's sockets do, and a little more to see a short read).
pub const MAX_BODY_READ: usize = 64 * 1024 + 256;
/// Bytes of the buffer JS fetches batches into. A batch holding request
/// body chunks stops taking jobs once one more body read might not fit, so
/// that it fits: JS then keeps that buffer for the chunks' views and takes a
/// fresh one of this size. Under glibc's 128 KiB mmap threshold, the
/// allocator serves it from memory it reuses, where a larger batch would
/// cost a fresh mapping (page faults) every time.
pub const BATCH_BUFFER: usize = 120 * 1024;
/// A batch holding body chunks takes no more jobs past this many bytes: the
/// job that crosses it (at most one body read and its record header) still
/// fits `BATCH_BUFFER`.
pub const BATCH_CHUNKS_UP_TO: usize = BATCH_BUFFER - MAX_BODY_READ - 1024;
/// Added to the length `pollInto` returns when the batch holds body chunks.
pub const POLLED_CHUNKS: u32 = 1 << 30;
/// JSON bodies shorter than this that JS may read with `JSON.parse` are
/// joined into the batch's values record.
pub const JOINED_BELOW: usize = 4096;
/// Flag of a values record whose text is ASCII (JS may decode it as Latin-1).
pub const FLAG_VALUES_ASCII: u8 = 1;
/// Flag of an origin record when the request sent an origin.
pub const FLAG_ORIGIN_SENT: u8 = 1;

// Where each field of a batch record's header is, from the record's start.
/// `kind u8`.
pub const RECORD_KIND: usize = 0;
/// `flags u8` (then `reserved u16`, 0).
pub const RECORD_FLAGS: usize = 1;
/// `ticket u32`.
pub const RECORD_TICKET: usize = 4;
/// `handler u32`: a call's handler slot, a values record's count.
pub const RECORD_HANDLER: usize = 8;
/// `length u32` of the bytes after the header.
pub const RECORD_LENGTH: usize = 12;
/// Bytes of a batch record's header.
pub const RECORD_HEADER: usize = 16;

// Where each field of an answer record's header is, likewise.
/// `ticket u32`.
pub const ANSWER_TICKET: usize = 0;
/// `status u32`: the HTTP status, or a joined record's count of calls.
pub const ANSWER_STATUS: usize = 4;
/// `length u32` of the body after the header.
pub const ANSWER_LENGTH: usize = 8;
/// Bytes of an answer record's header.
pub const ANSWER_HEADER: usize = 12;
/// The ticket of an answer record that holds several successful calls'
/// results (tickets are never 0): its status field is the number of calls,
/// its body their tickets (u32 each) then their results as one JSON array.
pub const JOINED_RESULTS: u32 = 0;

/// Appends a batch record.
pub fn write_record(
    out: &mut Vec<u8>,
    kind: u8,
    flags: u8,
    ticket: u32,
    handler: u32,
    body: &[u8],
) {
    out.reserve(RECORD_HEADER + body.len());
    write_header(out, kind, flags, ticket, handler, body.len());
    out.extend_from_slice(body);
}

/// Appends a batch record's header; `len` bytes of body are to follow.
pub fn write_header(out: &mut Vec<u8>, kind: u8, flags: u8, ticket: u32, handler: u32, len: usize) {
    let mut header = [0u8; RECORD_HEADER];
    header[RECORD_KIND] = kind;
    header[RECORD_FLAGS] = flags;
    header[RECORD_TICKET..RECORD_TICKET + 4].copy_from_slice(&ticket.to_le_bytes());
    header[RECORD_HANDLER..RECORD_HANDLER + 4].copy_from_slice(&handler.to_le_bytes());
    header[RECORD_LENGTH..RECORD_LENGTH + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&header);
}

/// One answer record: its ticket, status field and the range of its body.
#[derive(Debug, PartialEq, Eq)]
pub struct AnswerRecord {
    pub ticket: u32,
    pub status: u32,
    pub body: Range<usize>,
}

/// The answer records of a buffer, in order; a record cut short ends them.
pub fn answer_records(data: &[u8]) -> impl Iterator<Item = AnswerRecord> + '_ {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        let header = data.get(off..off + ANSWER_HEADER)?;
        let word =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (ticket, status) = (word(ANSWER_TICKET), word(ANSWER_STATUS));
        let len = word(ANSWER_LENGTH) as usize;
        let start = off + ANSWER_HEADER;
        if data.len() - start < len {
            return None;
        }
        off = start + len;
        Some(AnswerRecord {
            ticket,
            status,
            body: start..start + len,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_records_have_the_documented_layout() {
        let mut out = Vec::new();
        write_record(&mut out, KIND_TASK, FLAG_JOINED | 2, 7, 3, b"abc");
        assert_eq!(
            out,
            [0, 0x82, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, b'a', b'b', b'c']
        );
        assert_eq!(out.len(), RECORD_HEADER + 3);
        let word = |at: usize| u32::from_le_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]);
        assert_eq!((out[RECORD_KIND], out[RECORD_FLAGS]), (KIND_TASK, 0x82));
        assert_eq!((word(RECORD_TICKET), word(RECORD_HANDLER)), (7, 3));
        assert_eq!(word(RECORD_LENGTH), 3);
    }

    #[test]
    fn answer_records_are_read_in_order_and_a_cut_one_ends_them() {
        let mut data = Vec::new();
        for (ticket, status, body) in [(5u32, 200u32, &b"{}"[..]), (9, 500, b"")] {
            data.extend_from_slice(&ticket.to_le_bytes());
            data.extend_from_slice(&status.to_le_bytes());
            data.extend_from_slice(&(body.len() as u32).to_le_bytes());
            data.extend_from_slice(body);
        }
        data.extend_from_slice(&[1, 0, 0, 0, 200, 0, 0, 0, 10, 0, 0, 0, b'x']);
        let got: Vec<_> = answer_records(&data).collect();
        assert_eq!(
            got,
            [
                AnswerRecord {
                    ticket: 5,
                    status: 200,
                    body: 12..14
                },
                AnswerRecord {
                    ticket: 9,
                    status: 500,
                    body: 26..26
                },
            ]
        );
    }
}
