//! The records a batch gathers as it is drained and writes at once: the
//! small JSON bodies joined into one values record, and each streamed body's
//! chunks as one record.

#![forbid(unsafe_code)]

use bytes::Bytes;

use crate::wire::{
    write_header, write_record, FLAG_VALUES_ASCII, KIND_BODY_CHUNK, KIND_VALUES, RECORD_HEADER,
};

/// The bodies joined for one batch: `[body,body,...]`, last in the batch.
#[derive(Default)]
pub struct Values {
    text: Vec<u8>,
    count: u32,
}

impl Values {
    pub fn push(&mut self, body: &[u8]) {
        self.text.push(if self.count == 0 { b'[' } else { b',' });
        self.text.extend_from_slice(body);
        self.count += 1;
    }

    /// Flags ASCII text, which JS may then decode as Latin-1.
    pub fn write(mut self, out: &mut Vec<u8>) {
        if self.count == 0 {
            return;
        }
        self.text.push(b']');
        let flags = if self.text.is_ascii() {
            FLAG_VALUES_ASCII
        } else {
            0
        };
        write_record(out, KIND_VALUES, flags, 0, self.count, &self.text);
    }
}

/// Request body chunks held back while a batch is drained, so that each
/// body's chunks go out as one record: its stream then hands its reader one
/// buffer rather than several that `read()` would join with a copy, and the
/// batch buffer is reserved once for all of them instead of growing (and
/// copying itself) chunk by chunk.
#[derive(Default)]
pub struct HeldChunks {
    bodies: Vec<(u32, Vec<Bytes>)>,
    any: bool,
}

impl HeldChunks {
    pub fn hold(&mut self, ticket: u32, bytes: Bytes) {
        self.any = true;
        match self.bodies.iter_mut().find(|(t, _)| *t == ticket) {
            Some((_, parts)) => parts.push(bytes),
            None => self.bodies.push((ticket, vec![bytes])),
        }
    }

    /// Whether the batch has held any chunk at all.
    pub fn any(&self) -> bool {
        self.any
    }

    /// Bytes the held chunks will take in the batch.
    pub fn held(&self) -> usize {
        self.bodies
            .iter()
            .map(|(_, parts)| RECORD_HEADER + parts.iter().map(Bytes::len).sum::<usize>())
            .sum()
    }

    /// Writes the chunks held for `ticket` (all of them for `None`); true
    /// when the batch has held any chunk at all.
    pub fn flush(&mut self, out: &mut Vec<u8>, ticket: Option<u32>) -> bool {
        let wanted = |t: u32| ticket.is_none_or(|w| w == t);
        let size: usize = self
            .bodies
            .iter()
            .filter(|(t, _)| wanted(*t))
            .map(|(_, parts)| RECORD_HEADER + parts.iter().map(Bytes::len).sum::<usize>())
            .sum();
        if size > 0 {
            out.reserve(size);
            self.bodies.retain(|(t, parts)| {
                if !wanted(*t) {
                    return true;
                }
                let len: usize = parts.iter().map(Bytes::len).sum();
                write_header(out, KIND_BODY_CHUNK, 0, *t, 0, len);
                for part in parts {
                    out.extend_from_slice(part);
                }
                false
            });
        }
        self.any
    }
}

/// Origins reach JS as latin1 (as Node decodes header values).
pub fn latin1_bytes(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}
