//! Property tests over generated inputs: no panic, the same decisions
//! however the bytes are split, and nothing consumed beyond the input.
//! `H1_PROPERTY_SEED` replays a run; the seed is printed.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;

use crate::http::h1::*;
use crate::http::h1::{MAX_HEAD, MAX_HEADERS};

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn seed() -> u64 {
    let seed = std::env::var("H1_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("H1_PROPERTY_SEED={seed}");
    seed | 1
}

const SEPARATORS: &[&[u8]] = &[
    b" ",
    b"\t",
    b"\r",
    b"\n",
    b"\r\n",
    b",",
    b";",
    b":",
    b"=",
    b"\"",
    b"\\",
    b"\0",
    b"\x0b",
    b"\x0c",
    b"\x7f",
    b"\xc2\xa0",
    b"\xe3\x80\x80",
    b"\xff",
    b"0",
    b"f",
    b"chunked",
    b"content-length: 1\r\n",
    b"transfer-encoding: chunked\r\n",
];

/// Flips, inserts, deletes and duplicates bytes of `base`.
fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    if rng.below(10) == 0 {
        return (0..rng.below(300)).map(|_| rng.next() as u8).collect();
    }
    for _ in 0..rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let at = at.min(v.len() - 1);
                v[at] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                v.remove(at.min(v.len() - 1));
            }
            2 => {
                // Duplicate a line.
                let start = v[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = v[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(v.len(), |i| at + i + 1);
                let line = v[start..end].to_vec();
                v.splice(end..end, line);
            }
            _ => {
                let sep = *rng.pick(SEPARATORS);
                v.splice(at..at, sep.iter().copied());
            }
        }
    }
    v
}

/// Random split points of `len` bytes.
fn splits(rng: &mut Rng, len: usize) -> Vec<usize> {
    let mut at: Vec<usize> = (0..rng.below(6)).map(|_| rng.below(len + 1)).collect();
    if len < 2048 && rng.below(4) == 0 {
        at = (0..=len).collect();
    }
    at.push(len);
    at.sort_unstable();
    at
}

#[derive(Debug, PartialEq)]
enum HeadOutcome {
    Head(String, Vec<u8>),
    Refused(Refusal),
    Incomplete,
}

fn describe(head: &Head) -> String {
    format!(
        "{} {} {:?} {:?} {:?} {} {}",
        head.request.method(),
        head.request.uri(),
        head.request.version(),
        head.request.headers(),
        head.framing,
        head.keep_alive,
        head.expect_continue
    )
}

/// Feeds `input` in the pieces `cuts` gives, parsing after each as
/// the connection does.
fn parse_split(input: &[u8], cuts: &[usize]) -> HeadOutcome {
    let mut buf = BytesMut::new();
    let mut fed = 0;
    for &cut in cuts {
        buf.extend_from_slice(&input[fed..cut]);
        fed = cut;
        if buf.is_empty() {
            continue;
        }
        match parse_head(&mut buf) {
            Ok(Some(head)) => {
                buf.extend_from_slice(&input[fed..]);
                return HeadOutcome::Head(describe(&head), buf.to_vec());
            }
            Ok(None) => {}
            Err(e) => return HeadOutcome::Refused(e),
        }
    }
    HeadOutcome::Incomplete
}

const HEADS: &[&[u8]] = &[
b"POST /__runner/task/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
b"POST /__runner/task/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
b"GET /__runner/discovery HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
b"POST /x?y=1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\nX-A: 1\r\nx-a: 2\r\n\r\na",
b"\r\nPOST http://x/__runner/event/e HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
];

/// A head near the size limit: one long field or many short lines.
fn long_head(rng: &mut Rng) -> Vec<u8> {
    let mut v = b"POST / HTTP/1.1\r\nHost: x\r\n".to_vec();
    if rng.below(2) == 0 {
        v.extend_from_slice(b"X-Long: ");
        v.resize(v.len() + MAX_HEAD - 64 + rng.below(128), b'v');
        v.extend_from_slice(b"\r\n");
    } else {
        let line: &[u8] = if rng.below(2) == 0 {
            b"a:\r\n"
        } else {
            b"a:\n"
        };
        for _ in 0..(MAX_HEADERS - 16 + rng.below(32)) {
            v.extend_from_slice(line);
        }
    }
    v.extend_from_slice(b"\r\n");
    v
}

#[test]
fn heads_decide_the_same_however_split() {
    let mut rng = Rng(seed());
    for i in 0..20_000 {
        let base = if i % 40 == 0 {
            long_head(&mut rng)
        } else {
            rng.pick(HEADS).to_vec()
        };
        let input = mutate(&mut rng, &base);
        let whole = parse_split(&input, &[input.len()]);
        let cuts = splits(&mut rng, input.len());
        let split = parse_split(&input, &cuts);
        assert_eq!(
            whole,
            split,
            "input {:?} cuts {cuts:?}",
            String::from_utf8_lossy(&input)
        );
        if let HeadOutcome::Head(_, rest) = &whole {
            // What is left is the input's own tail.
            assert!(input.ends_with(rest) && rest.len() < input.len());
        }
    }
}

#[derive(Debug, PartialEq)]
enum BodyOutcome {
    Done(Vec<u8>, Vec<u8>),
    Refused(Vec<u8>, Refusal),
    Incomplete(Vec<u8>),
}

fn decode_split(input: &[u8], cuts: &[usize]) -> BodyOutcome {
    let mut decoder = Decoder::new(Framing::Chunked);
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    let mut fed = 0;
    for &cut in cuts {
        buf.extend_from_slice(&input[fed..cut]);
        fed = cut;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Decoded::Data(d)) => {
                    assert!(!d.is_empty());
                    data.extend_from_slice(&d);
                }
                Ok(Decoded::NeedMore) => break,
                Ok(Decoded::Done) => {
                    buf.extend_from_slice(&input[fed..]);
                    return BodyOutcome::Done(data, buf.to_vec());
                }
                Err(e) => return BodyOutcome::Refused(data, e),
            }
        }
        assert!(
            buf.is_empty(),
            "a decoder that needs more has taken all it was given"
        );
    }
    BodyOutcome::Incomplete(data)
}

fn chunked_body(rng: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..rng.below(4) {
        let len = rng.below(20) + 1;
        v.extend_from_slice(format!("{len:x}").as_bytes());
        if rng.below(3) == 0 {
            const EXTENSIONS: &[&[u8]] = &[b";a", b";a=b", b" ;q=\"x y\"", b";a;b=c"];
            let ext = *rng.pick(EXTENSIONS);
            v.extend_from_slice(ext);
        }
        v.extend_from_slice(b"\r\n");
        v.extend((0..len).map(|_| b'a' + rng.below(26) as u8));
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"0\r\n");
    if rng.below(3) == 0 {
        v.extend_from_slice(b"x-t: 1\r\n");
    }
    v.extend_from_slice(b"\r\nNEXT");
    v
}

#[test]
fn chunked_bodies_decode_the_same_however_split() {
    let mut rng = Rng(seed());
    for _ in 0..20_000 {
        let base = chunked_body(&mut rng);
        let input = if rng.below(5) == 0 {
            base
        } else {
            mutate(&mut rng, &base)
        };
        let whole = decode_split(&input, &[input.len()]);
        let cuts = splits(&mut rng, input.len());
        let split = decode_split(&input, &cuts);
        assert_eq!(
            whole,
            split,
            "input {:?} cuts {cuts:?}",
            String::from_utf8_lossy(&input)
        );
        if let BodyOutcome::Done(data, rest) = &whole {
            assert!(input.ends_with(rest));
            assert!(data.len() + rest.len() <= input.len());
        }
    }
}
