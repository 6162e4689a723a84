//! Request body framing: a known length, or the chunked coding (RFC 9112 7.1).

use bytes::{Bytes, BytesMut};

use super::grammar::{is_field_value_char, is_qdtext, is_tchar};
use super::head::Framing;
use super::{Refusal, MAX_CHUNK_EXTENSIONS, MAX_CHUNK_SIZE_DIGITS, MAX_TRAILERS};

/// What a body decoder yields from the buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Data(Bytes),
    /// The buffer holds no more of the body: read more.
    NeedMore,
    /// The body is complete.
    Done,
}

/// Undoes a request body's framing, from the front of the read buffer.
#[derive(Debug)]
pub enum Decoder {
    Length(u64),
    Chunked(Chunked),
}

/// The chunked coding (RFC 9112 7.1) as a state machine over single bytes,
/// so that no input split can change what it decides.
#[derive(Debug, Default)]
pub struct Chunked {
    state: ChunkState,
    size: u64,
    digits: u32,
    /// Chunk-extension bytes of this chunk line so far.
    extensions: usize,
    /// Trailer name and value bytes so far.
    trailers: usize,
    /// The start of the current trailer's name, lower-cased, to refuse
    /// framing fields there.
    name: [u8; FRAMING_NAME_LEN],
    name_len: usize,
}

/// Long enough to tell `transfer-encoding` from any longer name.
const FRAMING_NAME_LEN: usize = 18;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// `chunk-size = 1*HEXDIG`.
    #[default]
    Size,
    /// Whitespace after the size: only `;` or CRLF may follow.
    SizeWs,
    /// After `;`: optional whitespace, then an extension name.
    ExtStart,
    ExtName,
    /// Whitespace after a name: `=`, `;` or CRLF may follow.
    ExtNameWs,
    /// After `=`: optional whitespace, then a token or a quoted string.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    ExtQuotedPair,
    /// After a value: whitespace, then `;` or CRLF.
    ExtEnd,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// The start of a trailer line, or of the final CRLF.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
}

impl Decoder {
    pub fn new(framing: Framing) -> Decoder {
        match framing {
            Framing::Length(n) => Decoder::Length(n),
            Framing::Chunked => Decoder::Chunked(Chunked::default()),
        }
    }

    pub fn is_done(&self) -> bool {
        match self {
            Decoder::Length(n) => *n == 0,
            Decoder::Chunked(c) => c.state == ChunkState::Done,
        }
    }

    /// Bytes worth reading at once for this body.
    pub fn wanted(&self) -> usize {
        match self {
            Decoder::Length(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            Decoder::Chunked(c) if c.state == ChunkState::Data => {
                usize::try_from(c.size).unwrap_or(usize::MAX)
            }
            Decoder::Chunked(_) => 64,
        }
    }

    /// Takes the next piece of body out of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Refusal> {
        match self {
            Decoder::Length(0) => Ok(Decoded::Done),
            Decoder::Length(n) => {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let take = usize::try_from(*n).unwrap_or(usize::MAX).min(buf.len());
                *n -= take as u64;
                Ok(Decoded::Data(buf.split_to(take).freeze()))
            }
            Decoder::Chunked(c) => c.decode(buf),
        }
    }
}

impl Chunked {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Refusal> {
        let mut used = 0usize;
        let result = loop {
            match self.state {
                ChunkState::Done => break Ok(Decoded::Done),
                ChunkState::Data => {
                    let have = buf.len() - used;
                    if have == 0 {
                        break Ok(Decoded::NeedMore);
                    }
                    let take = usize::try_from(self.size).unwrap_or(usize::MAX).min(have);
                    self.size -= take as u64;
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    let _ = buf.split_to(used);
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                _ => {}
            }
            let Some(&b) = buf.get(used) else {
                break Ok(Decoded::NeedMore);
            };
            used += 1;
            self.state = self.step(b)?;
        };
        let _ = buf.split_to(used);
        result
    }

    /// One byte of framing. Every line ends in CRLF; anything the grammar
    /// does not allow is refused.
    fn step(&mut self, b: u8) -> Result<ChunkState, Refusal> {
        use ChunkState::*;
        if matches!(
            self.state,
            ExtStart
                | ExtName
                | ExtNameWs
                | ExtValueStart
                | ExtToken
                | ExtQuoted
                | ExtQuotedPair
                | ExtEnd
        ) {
            self.extensions += 1;
            if self.extensions > MAX_CHUNK_EXTENSIONS {
                return Err(Refusal::ExtensionsTooLarge);
            }
        }
        if matches!(self.state, TrailerStart | TrailerName | TrailerValue)
            && (is_tchar(b) || (self.state == TrailerValue && is_field_value_char(b)))
        {
            self.trailers += 1;
            if self.trailers > MAX_TRAILERS {
                return Err(Refusal::TooLarge);
            }
        }
        let ows = b == b' ' || b == b'\t';
        Ok(match (self.state, b) {
            (Size, b) if b.is_ascii_hexdigit() => {
                self.digits += 1;
                let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|n| n.checked_add(digit))
                    .filter(|_| self.digits <= MAX_CHUNK_SIZE_DIGITS)
                    .ok_or(Refusal::Bad)?;
                Size
            }
            (Size, _) if self.digits == 0 => return Err(Refusal::Bad),
            // Whitespace after the size is allowed before `;` (the BWS of RFC
            // 9112's chunk-ext) and, outside the RFC's grammar, before CRLF:
            // some senders pad sizes, and hyper and Go accept both (llhttp
            // neither). The size it ends is unambiguous either way.
            (Size | SizeWs, _) if ows => SizeWs,
            (Size | SizeWs | ExtName | ExtNameWs | ExtToken | ExtEnd, b';') => ExtStart,
            (Size | SizeWs | ExtName | ExtNameWs | ExtToken | ExtEnd, b'\r') => SizeLf,
            (ExtStart, _) if ows => ExtStart,
            (ExtStart | ExtName, b) if is_tchar(b) => ExtName,
            (ExtName | ExtNameWs, _) if ows => ExtNameWs,
            (ExtName | ExtNameWs, b'=') => ExtValueStart,
            (ExtValueStart, _) if ows => ExtValueStart,
            (ExtValueStart, b'"') => ExtQuoted,
            (ExtValueStart | ExtToken, b) if is_tchar(b) => ExtToken,
            (ExtToken | ExtEnd, _) if ows => ExtEnd,
            (ExtQuoted, b'"') => ExtEnd,
            (ExtQuoted, b'\\') => ExtQuotedPair,
            (ExtQuoted, b) if is_qdtext(b) => ExtQuoted,
            (ExtQuotedPair, b) if is_field_value_char(b) => ExtQuoted,
            (SizeLf, b'\n') => {
                self.digits = 0;
                self.extensions = 0;
                if self.size == 0 {
                    TrailerStart
                } else {
                    Data
                }
            }
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size,
            // Trailer fields: `field-name ":" OWS field-value OWS` CRLF (RFC
            // 9112 7.1.2); no obs-fold, no bare LF (llhttp refuses both).
            (TrailerStart, b'\r') => EndLf,
            (TrailerStart | TrailerName, b) if is_tchar(b) => {
                if self.state == TrailerStart {
                    self.name_len = 0;
                }
                if let Some(slot) = self.name.get_mut(self.name_len) {
                    *slot = b.to_ascii_lowercase();
                }
                self.name_len += 1;
                TrailerName
            }
            (TrailerName, b':') => {
                // Framing fields cannot come after the body they frame (RFC
                // 9110 6.5.1); llhttp refuses them there too.
                let name = &self.name[..self.name_len.min(FRAMING_NAME_LEN)];
                if name == b"content-length" || name == b"transfer-encoding" {
                    return Err(Refusal::Bad);
                }
                TrailerValue
            }
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, b) if is_field_value_char(b) => TrailerValue,
            (TrailerLf, b'\n') => TrailerStart,
            (EndLf, b'\n') => Done,
            _ => return Err(Refusal::Bad),
        })
    }
}
