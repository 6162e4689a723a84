//! Compressed answers (`compression`), around the handler: the connection
//! chooses the coding from the request's `Accept-Encoding` before it hands
//! the request on, and applies it to the answer (`Compression::encode`).
//!
//! - Whole answers (the JSON envelopes) of at least `threshold` bytes are
//!   compressed whole, with the compressed `content-length`; unless the
//!   result came out no smaller, when the answer goes as it was.
//! - Streamed answers are compressed as they stream when the handler gave no
//!   `content-length` and a content type that is not compressed already
//!   (`core::encoding::compressible_type`); each chunk is flushed through the
//!   encoder, so every chunk the handler writes reaches the client as it is
//!   written. The threshold does not apply: their size is not known ahead.
//! - Never compressed: answers that carry a `content-encoding`, 1xx, 204 and
//!   304 answers, answers to HEAD. A request without `Accept-Encoding` gets
//!   the answer exactly as without compression.
//!
//! The work runs on the HTTP worker threads, never on the JS thread. A whole
//! answer or a chunk larger than [`INLINE_LIMIT`] is compressed on tokio's
//! blocking pool, so that one large answer does not hold up the other
//! connections of its worker; smaller ones, in the time an extra thread
//! hand-off would cost, are compressed in place.

#![forbid(unsafe_code)]

use std::future::Future;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use brotli::enc::BrotliEncoderParams;
use bytes::Bytes;
use flate2::write::GzEncoder;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use tokio::task::JoinHandle;

use crate::core::config::CompressionConfig;
use crate::core::encoding::{compressible_type, negotiate, Accepted, Coding};

use super::answer::Body;
use super::stream::ChunkStream;

/// Bodies and chunks up to this size are compressed on the connection's
/// own thread: 0.2-0.3 ms of JSON at the default levels on the 2-core VM
/// (`docs/performance.md`), against 10-30 us for a hand-off to the pool.
pub const INLINE_LIMIT: usize = 16 * 1024;

/// The brotli window of a streamed answer, whose size is not known: 256 KiB,
/// which bounds the memory a stream holds on both ends.
const STREAM_LGWIN: i32 = 18;

/// The compression policy, built once from the configuration.
pub struct Compression {
    threshold: usize,
    levels: Levels,
}

#[derive(Clone, Copy)]
struct Levels {
    gzip: u32,
    brotli: u32,
}

impl Compression {
    pub fn new(cfg: &CompressionConfig) -> Self {
        Compression {
            threshold: cfg.threshold,
            levels: Levels {
                gzip: cfg.gzip_level.clamp(1, 9),
                brotli: cfg.brotli_level.min(11),
            },
        }
    }

    /// What the request accepts, read before the request is handled. An
    /// answer to HEAD is left alone, as if `Accept-Encoding` were absent.
    pub fn accepted(&self, method: &Method, headers: &HeaderMap) -> Accepted {
        if method == Method::HEAD {
            return Accepted::Absent;
        }
        negotiate(
            headers
                .get_all(header::ACCEPT_ENCODING)
                .iter()
                .map(HeaderValue::as_bytes),
        )
    }

    /// The answer in the accepted coding, when it is one to compress;
    /// `Vary: Accept-Encoding` on every answer that could have been. Not an
    /// `async fn`: its future would be part of every request's, compressed
    /// or not; only a body for the blocking pool gets a (boxed) future.
    pub fn encode(&self, accepted: Accepted, answer: Response<Body>) -> Encoded {
        if accepted == Accepted::Absent || !self.compressible(&answer) {
            return Encoded::Ready(answer);
        }
        let (mut parts, body) = answer.into_parts();
        parts
            .headers
            .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        let Accepted::Coding(coding) = accepted else {
            return Encoded::Ready(Response::from_parts(parts, body));
        };
        let levels = self.levels;
        match body {
            Body::Full(bytes) if bytes.len() > INLINE_LIMIT => {
                Encoded::Later(Box::pin(async move {
                    let whole = bytes.clone();
                    let packed =
                        tokio::task::spawn_blocking(move || compress_whole(coding, levels, &whole))
                            .await
                            .ok()
                            .and_then(Result::ok);
                    with_whole(parts, coding, bytes, packed)
                }))
            }
            Body::Full(bytes) => {
                let packed = compress_whole(coding, levels, &bytes).ok();
                Encoded::Ready(with_whole(parts, coding, bytes, packed))
            }
            Body::Stream(stream) => {
                parts.headers.insert(
                    header::CONTENT_ENCODING,
                    HeaderValue::from_static(coding.token()),
                );
                let stream = stream.encoded(self.stream_encoder(coding));
                Encoded::Ready(Response::from_parts(parts, Body::Stream(stream)))
            }
        }
    }

    /// Whether the answer is one the rules above compress.
    fn compressible(&self, answer: &Response<Body>) -> bool {
        let status = answer.status();
        let h = answer.headers();
        // Most answers are small: the length decides first.
        if matches!(answer.body(), Body::Full(bytes) if bytes.len() < self.threshold) {
            return false;
        }
        if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || h.contains_key(header::CONTENT_ENCODING)
            || !compressible_type(h.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes))
        {
            return false;
        }
        match answer.body() {
            Body::Full(bytes) => bytes.len() >= self.threshold,
            Body::Stream(_) => !h.contains_key(header::CONTENT_LENGTH),
        }
    }

    fn stream_encoder(&self, coding: Coding) -> StreamEncoder {
        match coding {
            Coding::Gzip => StreamEncoder::Gzip(Box::new(GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(self.levels.gzip),
            ))),
            Coding::Br => StreamEncoder::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                self.levels.brotli,
                STREAM_LGWIN as u32,
            ))),
        }
    }
}

/// An answer out of the compression layer.
pub enum Encoded {
    Ready(Response<Body>),
    /// A whole body larger than [`INLINE_LIMIT`], compressed on the blocking
    /// pool.
    Later(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

/// A whole answer with its compressed body, when that came out smaller;
/// as it was otherwise (or when the encoder failed).
fn with_whole(
    mut parts: http::response::Parts,
    coding: Coding,
    bytes: Bytes,
    packed: Option<Bytes>,
) -> Response<Body> {
    match packed {
        Some(packed) if packed.len() < bytes.len() => {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(packed.len()));
            parts.headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(coding.token()),
            );
            Response::from_parts(parts, Body::Full(packed))
        }
        _ => Response::from_parts(parts, Body::Full(bytes)),
    }
}

/// brotli's window for a body of `len` bytes: no larger than the body
/// (down to brotli's least, 1 KiB), so a small answer needs no large window
/// to decode.
fn brotli_window(len: usize) -> i32 {
    let bits = usize::BITS - len.max(1).saturating_sub(1).leading_zeros();
    (bits as i32).clamp(10, 22)
}

fn compress_whole(coding: Coding, levels: Levels, data: &[u8]) -> io::Result<Bytes> {
    let mut out = Vec::with_capacity(data.len() / 4 + 64);
    match coding {
        Coding::Gzip => {
            let mut e = GzEncoder::new(out, flate2::Compression::new(levels.gzip));
            e.write_all(data)?;
            out = e.finish()?;
        }
        Coding::Br => {
            let params = BrotliEncoderParams {
                quality: levels.brotli as i32,
                lgwin: brotli_window(data.len()),
                size_hint: data.len(),
                ..BrotliEncoderParams::default()
            };
            brotli::BrotliCompress(&mut &data[..], &mut out, &params)?;
        }
    }
    Ok(Bytes::from(out))
}

/// A streamed answer's encoder: each chunk in, flushed, out.
pub(crate) enum StreamEncoder {
    Gzip(Box<GzEncoder<Vec<u8>>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl StreamEncoder {
    /// One chunk compressed and flushed (gzip: a sync flush; brotli: a
    /// flush), so the client can decode all of it now.
    fn chunk(&mut self, data: &[u8]) -> io::Result<Bytes> {
        let out = match self {
            StreamEncoder::Gzip(e) => {
                e.write_all(data)?;
                e.flush()?;
                std::mem::take(e.get_mut())
            }
            StreamEncoder::Br(e) => {
                e.write_all(data)?;
                e.flush()?;
                std::mem::take(e.get_mut())
            }
        };
        Ok(Bytes::from(out))
    }

    /// The end of the compressed stream.
    fn finish(self) -> io::Result<Bytes> {
        let out = match self {
            StreamEncoder::Gzip(e) => e.finish()?,
            StreamEncoder::Br(e) => e.into_inner(),
        };
        Ok(Bytes::from(out))
    }
}

/// Where a compressed stream's encoder is.
pub(crate) enum Encoding {
    Ready(StreamEncoder),
    /// Compressing a chunk larger than [`INLINE_LIMIT`] on the blocking pool.
    Busy(JoinHandle<(StreamEncoder, io::Result<Bytes>)>),
    /// The stream's end has been written (or the encoder failed).
    Done,
}

impl ChunkStream {
    /// This stream, compressed on the way out.
    pub(crate) fn encoded(mut self, encoder: StreamEncoder) -> Self {
        self.encoding = Some(Encoding::Ready(encoder));
        self
    }

    /// The next compressed piece of a compressed stream; `None` after its
    /// end (or when the encoder failed, which cuts the answer short).
    pub(super) fn poll_encoded(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            let Some(slot) = self.encoding.as_mut() else {
                return Poll::Ready(None);
            };
            let (next, out) = match std::mem::replace(slot, Encoding::Done) {
                Encoding::Done => return Poll::Ready(None),
                Encoding::Busy(mut job) => match Pin::new(&mut job).poll(cx) {
                    Poll::Pending => {
                        *slot = Encoding::Busy(job);
                        return Poll::Pending;
                    }
                    Poll::Ready(Ok((encoder, Ok(out)))) => (Encoding::Ready(encoder), out),
                    Poll::Ready(_) => return Poll::Ready(None),
                },
                Encoding::Ready(mut encoder) => match self.poll_chunk(cx) {
                    Poll::Pending => {
                        self.set_encoding(Encoding::Ready(encoder));
                        return Poll::Pending;
                    }
                    Poll::Ready(Some(data)) if data.len() <= INLINE_LIMIT => {
                        match encoder.chunk(&data) {
                            Ok(out) => (Encoding::Ready(encoder), out),
                            Err(_) => return Poll::Ready(None),
                        }
                    }
                    Poll::Ready(Some(data)) => {
                        let job = tokio::task::spawn_blocking(move || {
                            let out = encoder.chunk(&data);
                            (encoder, out)
                        });
                        self.set_encoding(Encoding::Busy(job));
                        continue;
                    }
                    Poll::Ready(None) => match encoder.finish() {
                        Ok(out) => (Encoding::Done, out),
                        Err(_) => return Poll::Ready(None),
                    },
                },
            };
            self.set_encoding(next);
            if !out.is_empty() {
                return Poll::Ready(Some(out));
            }
        }
    }

    fn set_encoding(&mut self, state: Encoding) {
        if let Some(slot) = self.encoding.as_mut() {
            *slot = state;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::stream::chunk_stream;
    use http_body_util::BodyExt;
    use std::io::Read;

    impl Compression {
        /// `encode`, awaited.
        async fn encoded(&self, accepted: Accepted, answer: Response<Body>) -> Response<Body> {
            match self.encode(accepted, answer) {
                Encoded::Ready(answer) => answer,
                Encoded::Later(answer) => answer.await,
            }
        }
    }

    fn policy(threshold: usize) -> Compression {
        Compression::new(&CompressionConfig {
            threshold,
            ..CompressionConfig::default()
        })
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    fn unbrotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        brotli::Decompressor::new(data, 4096)
            .read_to_end(&mut out)
            .expect("valid brotli");
        out
    }

    fn json_answer(body: &[u8]) -> Response<Body> {
        let mut res = Response::new(Body::Full(Bytes::copy_from_slice(body)));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        res.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        res
    }

    fn big_json(n: usize) -> Vec<u8> {
        let items: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"id":{i},"name":"item-{i}"}}"#))
            .collect();
        format!(r#"{{"ok":true,"result":[{}]}}"#, items.join(",")).into_bytes()
    }

    fn full(res: Response<Body>) -> (http::response::Parts, Bytes) {
        let (parts, body) = res.into_parts();
        match body {
            Body::Full(b) => (parts, b),
            Body::Stream(_) => panic!("expected a whole body"),
        }
    }

    #[tokio::test]
    async fn whole_answers_decode_to_the_same_bytes_in_both_codings() {
        for size in [100, 5_000, 200_000] {
            let body = big_json(size);
            for (coding, decode) in [
                (Coding::Gzip, gunzip as fn(&[u8]) -> Vec<u8>),
                (Coding::Br, unbrotli),
            ] {
                let res = policy(1024)
                    .encoded(Accepted::Coding(coding), json_answer(&body))
                    .await;
                let (parts, packed) = full(res);
                assert_eq!(parts.headers[header::CONTENT_ENCODING], coding.token());
                assert_eq!(parts.headers[header::VARY], "Accept-Encoding");
                assert_eq!(
                    parts.headers[header::CONTENT_LENGTH],
                    packed.len().to_string().as_str()
                );
                assert!(packed.len() < body.len() / 3, "{size} {coding:?}");
                assert_eq!(decode(&packed), body, "{size} {coding:?}");
            }
        }
    }

    #[tokio::test]
    async fn small_answers_and_absent_accept_encoding_are_untouched() {
        let body = big_json(100);
        let cases = [
            (policy(body.len() + 1), Accepted::Coding(Coding::Br)),
            (policy(0), Accepted::Absent),
        ];
        for (policy, accepted) in cases {
            let (parts, bytes) = full(policy.encoded(accepted, json_answer(&body)).await);
            assert_eq!(&bytes[..], &body[..]);
            assert!(parts.headers.get(header::CONTENT_ENCODING).is_none());
            assert!(parts.headers.get(header::VARY).is_none());
        }
    }

    #[tokio::test]
    async fn identity_keeps_the_body_and_says_it_varies() {
        let body = big_json(100);
        let (parts, bytes) = full(
            policy(0)
                .encoded(Accepted::Identity, json_answer(&body))
                .await,
        );
        assert_eq!(&bytes[..], &body[..]);
        assert!(parts.headers.get(header::CONTENT_ENCODING).is_none());
        assert_eq!(parts.headers[header::VARY], "Accept-Encoding");
    }

    #[tokio::test]
    async fn bodiless_statuses_and_encoded_answers_are_never_compressed() {
        let body = big_json(100);
        for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
            let mut res = json_answer(&body);
            *res.status_mut() = status;
            let (parts, _) = full(policy(0).encoded(Accepted::Coding(Coding::Gzip), res).await);
            assert!(parts.headers.get(header::CONTENT_ENCODING).is_none());
        }
        let mut res = json_answer(&body);
        res.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("zstd"));
        let (parts, bytes) = full(policy(0).encoded(Accepted::Coding(Coding::Gzip), res).await);
        assert_eq!(parts.headers[header::CONTENT_ENCODING], "zstd");
        assert_eq!(&bytes[..], &body[..]);
        let head = policy(0).accepted(&Method::HEAD, &{
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
            h
        });
        assert_eq!(head, Accepted::Absent);
    }

    #[tokio::test]
    async fn an_incompressible_body_goes_as_it_was() {
        // Bytes that do not compress: a xorshift sequence.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let (parts, bytes) = full(
            policy(0)
                .encoded(Accepted::Coding(Coding::Gzip), json_answer(&noise))
                .await,
        );
        assert_eq!(&bytes[..], &noise[..]);
        assert!(parts.headers.get(header::CONTENT_ENCODING).is_none());
    }

    #[tokio::test]
    async fn a_stream_is_compressed_chunk_by_chunk_each_decodable_at_once() {
        for coding in [Coding::Gzip, Coding::Br] {
            let (writer, stream) = chunk_stream(Box::new(|| {}), Box::new(|| {}));
            let mut res = Response::new(Body::Stream(stream));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            );
            let res = policy(1 << 20).encoded(Accepted::Coding(coding), res).await;
            assert_eq!(res.headers()[header::CONTENT_ENCODING], coding.token());
            let Body::Stream(mut stream) = res.into_body() else {
                panic!("still a stream");
            };
            let mut wire = Vec::new();
            let mut sent = Vec::new();
            for i in 0..3 {
                let line = format!("{{\"line\":{i}}}\n").repeat(50);
                sent.extend_from_slice(line.as_bytes());
                writer.write(Bytes::from(line));
                let frame = stream.frame().await.expect("a frame").expect("data");
                wire.extend_from_slice(&frame.into_data().expect("data"));
                // What came so far decodes to everything written so far.
                let so_far = match coding {
                    Coding::Gzip => {
                        let mut out = Vec::new();
                        let _ = flate2::read::GzDecoder::new(&wire[..]).read_to_end(&mut out);
                        out
                    }
                    Coding::Br => {
                        let mut out = Vec::new();
                        let _ = brotli::Decompressor::new(&wire[..], 4096).read_to_end(&mut out);
                        out
                    }
                };
                assert_eq!(so_far, sent, "{coding:?} after chunk {i}");
            }
            // A chunk past the inline limit goes through the blocking pool.
            let big = big_json(20_000);
            assert!(big.len() > INLINE_LIMIT);
            sent.extend_from_slice(&big);
            writer.write(Bytes::from(big));
            writer.end();
            while let Some(frame) = stream.frame().await {
                wire.extend_from_slice(&frame.expect("data").into_data().expect("data"));
            }
            let decoded = match coding {
                Coding::Gzip => gunzip(&wire),
                Coding::Br => unbrotli(&wire),
            };
            assert_eq!(decoded, sent, "{coding:?}");
        }
    }

    #[tokio::test]
    async fn streams_with_a_length_or_a_compressed_type_are_left_alone() {
        for (name, value) in [
            (header::CONTENT_LENGTH, "10"),
            (header::CONTENT_TYPE, "image/png"),
        ] {
            let (_writer, stream) = chunk_stream(Box::new(|| {}), Box::new(|| {}));
            let mut res = Response::new(Body::Stream(stream));
            res.headers_mut()
                .insert(name.clone(), HeaderValue::from_static(value));
            let res = policy(0).encoded(Accepted::Coding(Coding::Br), res).await;
            assert!(
                res.headers().get(header::CONTENT_ENCODING).is_none(),
                "{name}"
            );
            assert!(res.headers().get(header::VARY).is_none(), "{name}");
        }
    }

    #[test]
    fn brotli_windows_fit_the_body() {
        assert_eq!(brotli_window(0), 10);
        assert_eq!(brotli_window(1024), 10);
        assert_eq!(brotli_window(1025), 11);
        assert_eq!(brotli_window(100_000), 17);
        assert_eq!(brotli_window(usize::MAX), 22);
    }
}
