//! HTTP/1.x on the wire: request heads in, body framing both ways, answer
//! heads out. Pure functions over byte buffers; the connection driver in
//! `conn/` does the I/O.

#![forbid(unsafe_code)]

mod chunked;
mod encode;
mod grammar;
mod head;
#[cfg(test)]
mod tests;

pub use chunked::{Chunked, Decoded, Decoder};
pub use encode::{
    encode_chunk, encode_head, BodyOut, HeadOut, Reuse, CONTINUE, LAST_CHUNK, REQUEST_TIMEOUT,
};
pub use head::{parse_head, Framing, Head};

/// Largest request head accepted (Node's default `maxHeaderSize`).
pub const MAX_HEAD: usize = 16 * 1024;
/// Header lines parsed on the stack; a head with more takes the slow path.
const STACK_HEADERS: usize = 128;
/// Header lines one head can hold at all (each takes at least `a:` CRLF).
const MAX_HEADERS: usize = MAX_HEAD / 4;
/// Most chunk-extension bytes on one chunk line (Node's limit; past it, 413).
const MAX_CHUNK_EXTENSIONS: usize = 16 * 1024;
/// Most hex digits in a chunk size, leading zeros included.
const MAX_CHUNK_SIZE_DIGITS: u32 = 64;
/// Most trailer name and value bytes (Node counts these against its header
/// limit; past it, 431).
const MAX_TRAILERS: usize = MAX_HEAD;

/// Why the parser refused a request; the connection answers and closes.
/// Each is answered with the status Node's server gives for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: not a well-formed HTTP/1.1 request (head or body framing).
    Bad,
    /// 408: the head did not arrive in time.
    Timeout,
    /// 413: the chunk extensions of a body exceed [`MAX_CHUNK_EXTENSIONS`].
    ExtensionsTooLarge,
    /// 431: the head is longer than [`MAX_HEAD`], or the trailers than
    /// [`MAX_TRAILERS`].
    TooLarge,
}

impl Refusal {
    /// The whole answer written before closing: what Node's server sends.
    pub fn answer(self) -> &'static [u8] {
        match self {
            Refusal::Bad => b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n",
            Refusal::Timeout => REQUEST_TIMEOUT,
            Refusal::ExtensionsTooLarge => {
                b"HTTP/1.1 413 Payload Too Large\r\nconnection: close\r\n\r\n"
            }
            Refusal::TooLarge => {
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\r\n"
            }
        }
    }
}
