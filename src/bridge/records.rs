//! The records a batch gathers as it is drained and writes at once: the
//! small JSON bodies joined into one values record, and each streamed body's
//! chunks as one record, whose bytes are copied once, straight into the
//! buffer JS reads (`Batch`).

#![forbid(unsafe_code)]

use bytes::Bytes;

use crate::wire::{
    write_header, write_record, FLAG_VALUES_ASCII, KIND_BODY_CHUNK, KIND_VALUES, RECORD_HEADER,
};

/// A drained batch: its records, but for the bytes of body chunks, which
/// stay in the pieces they arrived in (`chunks`: where each piece goes in
/// `records`) until `copy_to` writes the whole batch where JS reads it.
#[derive(Default)]
pub struct Batch {
    pub records: Vec<u8>,
    chunks: Vec<(usize, Bytes)>,
    chunk_bytes: usize,
}

impl Batch {
    /// Bytes of the whole batch.
    pub fn len(&self) -> usize {
        self.records.len() + self.chunk_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties it, keeping up to `keep` bytes of room for the next batch.
    pub fn clear(&mut self, keep: usize) {
        self.records.clear();
        self.records.shrink_to(keep);
        self.chunks.clear();
        self.chunk_bytes = 0;
    }

    /// Writes the batch into `dest`, which must be `len()` bytes.
    pub fn copy_to(&self, dest: &mut [u8]) {
        let mut from = 0; // in `records`
        let mut at = 0; // in `dest`
        for (pos, piece) in &self.chunks {
            let head = &self.records[from..*pos];
            dest[at..at + head.len()].copy_from_slice(head);
            at += head.len();
            dest[at..at + piece.len()].copy_from_slice(piece);
            at += piece.len();
            from = *pos;
        }
        dest[at..].copy_from_slice(&self.records[from..]);
    }

    /// The whole batch as it is, when it holds no chunk bytes apart.
    pub fn contiguous(&self) -> Option<&[u8]> {
        self.chunks.is_empty().then_some(self.records.as_slice())
    }

    /// The whole batch in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        self.copy_to(&mut v);
        v
    }

    /// A record of body chunks: its header now, its bytes when copied out.
    fn place_chunks(&mut self, ticket: u32, parts: Vec<Bytes>) {
        let len: usize = parts.iter().map(Bytes::len).sum();
        write_header(&mut self.records, KIND_BODY_CHUNK, 0, ticket, 0, len);
        let pos = self.records.len();
        self.chunk_bytes += len;
        self.chunks
            .extend(parts.into_iter().map(|part| (pos, part)));
    }
}

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
/// buffer rather than several that `read()` would join with a copy.
#[derive(Default)]
pub struct HeldChunks {
    bodies: Vec<(u32, Vec<Bytes>)>,
    any: bool,
    /// What `held` reports, kept as pieces come and go (a body sent in
    /// tiny chunks makes many pieces).
    held: usize,
}

impl HeldChunks {
    pub fn hold(&mut self, ticket: u32, bytes: Bytes) {
        self.any = true;
        self.held += bytes.len();
        match self.bodies.iter_mut().find(|(t, _)| *t == ticket) {
            Some((_, parts)) => parts.push(bytes),
            None => {
                self.held += RECORD_HEADER;
                self.bodies.push((ticket, vec![bytes]));
            }
        }
    }

    /// Whether the batch has held any chunk at all.
    pub fn any(&self) -> bool {
        self.any
    }

    /// Bytes the held chunks will take in the batch.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Places the chunks held for `ticket` (all of them for `None`) in the
    /// batch; true when the batch has held any chunk at all.
    pub fn flush(&mut self, batch: &mut Batch, ticket: Option<u32>) -> bool {
        let wanted = |t: u32| ticket.is_none_or(|w| w == t);
        let mut i = 0;
        while i < self.bodies.len() {
            if wanted(self.bodies[i].0) {
                let (t, parts) = self.bodies.remove(i);
                self.held -= RECORD_HEADER + parts.iter().map(Bytes::len).sum::<usize>();
                batch.place_chunks(t, parts);
            } else {
                i += 1;
            }
        }
        self.any
    }
}

/// Origins reach JS as latin1 (as Node decodes header values).
pub fn latin1_bytes(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}
