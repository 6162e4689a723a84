//! Chunked bodies: no panic, the same data and decision however the bytes
//! are split (the first input byte picks the piece size), and what is left
//! after the body is the input's own tail.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use runner_native::http::h1::{Decoded, Decoder, Framing};

fn decode(input: &[u8], step: usize) -> (Vec<u8>, String) {
    let mut decoder = Decoder::new(Framing::Chunked);
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    let mut fed = 0;
    while fed < input.len() {
        let end = (fed + step).min(input.len());
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Decoded::Data(d)) => data.extend_from_slice(&d),
                Ok(Decoded::NeedMore) => break,
                Ok(Decoded::Done) => {
                    buf.extend_from_slice(&input[fed..]);
                    assert!(input.ends_with(&buf));
                    return (data, format!("done {:?}", &buf[..]));
                }
                Err(e) => return (data, format!("{e:?}")),
            }
        }
        // A decoder that asks for more has taken everything it was given.
        assert!(buf.is_empty());
    }
    (data, "incomplete".into())
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let whole = decode(input, input.len().max(1));
    let split = decode(input, usize::from(first) + 1);
    assert!(whole.0.len() <= input.len());
    assert_eq!(whole, split);
});
