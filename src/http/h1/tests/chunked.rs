use bytes::{Bytes, BytesMut};

use crate::http::h1::*;
use crate::http::h1::{MAX_CHUNK_EXTENSIONS, MAX_TRAILERS};

/// Feeds `input` `step` bytes at a time; `Err(None)`: it ended early.
fn decode_all(
    decoder: &mut Decoder,
    input: &[u8],
    step: usize,
) -> Result<Vec<u8>, Option<Refusal>> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0;
    loop {
        match decoder.decode(&mut buf).map_err(Some)? {
            Decoded::Data(d) => out.extend_from_slice(&d),
            Decoded::Done => return Ok(out),
            Decoded::NeedMore => {
                if fed >= input.len() {
                    return Err(None);
                }
                let end = (fed + step).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
        }
    }
}

#[test]
fn decodes_chunked_bodies_split_anywhere() {
    let wire =
        b"5;name=v\r\nhello\r\n1\r\n \r\n10\r\n0123456789abcdef\r\n0\r\nx-trailer: 1\r\n\r\n";
    for step in [1, 2, 3, 7, wire.len()] {
        let mut d = Decoder::new(Framing::Chunked);
        assert_eq!(
            decode_all(&mut d, wire, step).expect("valid"),
            b"hello 0123456789abcdef",
            "step {step}"
        );
        assert!(d.is_done());
    }
}

#[test]
fn refuses_broken_chunks() {
    for wire in [
        &b"x\r\n"[..],
        b"5\r\nhelloXX",
        b"5\r\nhello\n",
        b"5\r\nhello\r\r",
        b"\r\n",
        b";a\r\n",
        b"5\nhello\r\n",
        b"5\r\rhello\r\n",
        // Past u64.
        b"10000000000000000\r\n",
        b"ffffffffffffffff0\r\n",
        // Junk after the size, bad or empty extensions.
        b"2 xyz\r\n",
        b"2 2\r\n",
        b"2;\r\n",
        b"2; \r\n",
        b"2;a b\r\n",
        b"2;a=\r\n",
        b"2;a=b c\r\n",
        b"2;a=\"b\r\n",
        b"2;a=\"\x01\"\r\n",
        b"2;a=b\n",
        b"2;=b\r\n",
        b"2;a==b\r\n",
        b"2;a=\"b\"c\r\n",
        b"2\x0b\r\n",
        b"-2\r\n",
        b"0x2\r\n",
        // Trailers: a line without a colon, a bare LF, obs-fold, bad names.
        b"0\r\nfoo\r\n\r\n",
        b"0\r\nx: y\n\r\n",
        b"0\r\nx: y\r\n\n",
        b"0\r\n\n",
        b"0\r\nx: y\r\n z\r\n\r\n",
        b"0\r\nx : y\r\n\r\n",
        b"0\r\n: y\r\n\r\n",
        b"0\r\nx: \x00\r\n\r\n",
        b"0\r\n\r\r",
        // Framing fields as trailers.
        b"0\r\nContent-Length: 5\r\n\r\n",
        b"0\r\ntransfer-encoding: chunked\r\n\r\n",
    ] {
        for step in [1, 3, wire.len()] {
            let mut d = Decoder::new(Framing::Chunked);
            assert_eq!(
                decode_all(&mut d, wire, step),
                Err(Some(Refusal::Bad)),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }
}

#[test]
fn accepts_every_chunk_form_the_grammar_allows() {
    for (wire, body) in [
        (&b"2\r\nab\r\n0\r\n\r\n"[..], &b"ab"[..]),
        (b"000002\r\nab\r\n0000\r\n\r\n", b"ab"),
        (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        (b"2 \t\r\nab\r\n0\r\n\r\n", b"ab"),
        (b"2 ;a\r\nab\r\n0\r\n\r\n", b"ab"),
        (b"2;a;b=c ; d = \"e;\\\"f\" \r\nab\r\n0;z\r\n\r\n", b"ab"),
        (b"2;a=\"\"\r\nab\r\n0\r\n\r\n", b"ab"),
        (b"2\r\nab\r\n0\r\nx: y\r\nz:\r\nq:\t\xe9 \r\n\r\n", b"ab"),
        (
            b"2\r\nab\r\n0\r\ncontent-lengths: 1\r\nhost: h\r\n\r\n",
            b"ab",
        ),
        (b"0\r\n\r\n", b""),
    ] {
        for step in [1, 2, 5, wire.len()] {
            let mut d = Decoder::new(Framing::Chunked);
            assert_eq!(
                decode_all(&mut d, wire, step).as_deref(),
                Ok(body),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }
}

#[test]
fn chunk_extensions_and_trailers_are_bounded() {
    // Node answers 413 to more than 16 KiB of chunk extensions on a line.
    let long = format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(MAX_CHUNK_EXTENSIONS));
    let mut d = Decoder::new(Framing::Chunked);
    assert_eq!(
        decode_all(&mut d, long.as_bytes(), 100),
        Err(Some(Refusal::ExtensionsTooLarge))
    );
    // The limit is per line, as Node's is.
    let ext = format!("1;{}\r\na\r\n", "e".repeat(MAX_CHUNK_EXTENSIONS - 1));
    let mut d = Decoder::new(Framing::Chunked);
    let some = format!("{}0\r\n\r\n", ext.repeat(3));
    assert_eq!(
        decode_all(&mut d, some.as_bytes(), 100).map(|b| b.len()),
        Ok(3)
    );

    // Name and value bytes count, as Node counts them.
    let trailers = format!("0\r\n{}\r\n", "x: y\r\n".repeat(MAX_TRAILERS / 2 + 1));
    let mut d = Decoder::new(Framing::Chunked);
    assert_eq!(
        decode_all(&mut d, trailers.as_bytes(), 64),
        Err(Some(Refusal::TooLarge))
    );
    let digits = format!("{}1\r\na\r\n0\r\n\r\n", "0".repeat(64));
    let mut d = Decoder::new(Framing::Chunked);
    assert_eq!(
        decode_all(&mut d, digits.as_bytes(), 7),
        Err(Some(Refusal::Bad))
    );
}

#[test]
fn decodes_length_bodies_and_leaves_the_rest() {
    let mut d = Decoder::new(Framing::Length(4));
    let mut buf = BytesMut::from(&b"abcdefg"[..]);
    assert_eq!(
        d.decode(&mut buf),
        Ok(Decoded::Data(Bytes::from_static(b"abcd")))
    );
    assert_eq!(d.decode(&mut buf), Ok(Decoded::Done));
    assert_eq!(&buf[..], b"efg");
}
