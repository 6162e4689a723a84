//! Request heads: no panic, the same decision whether the bytes come in one
//! read or two (the first input byte picks the split point), and what is
//! left after a head is the input's own tail.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use runner_native::http::h1::parse_head;

/// What a parse decided, comparable across splits.
fn outcome(input: &[u8], cut: usize) -> String {
    let mut buf = BytesMut::new();
    let mut fed = 0;
    for end in [cut, input.len()] {
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        if buf.is_empty() {
            continue;
        }
        match parse_head(&mut buf) {
            Ok(Some(head)) => {
                buf.extend_from_slice(&input[fed..]);
                assert!(input.ends_with(&buf) && buf.len() < input.len());
                return format!("{:?} {:?} {:?}", head.request, head.framing, &buf[..]);
            }
            Ok(None) => {}
            Err(e) => return format!("{e:?}"),
        }
    }
    "incomplete".into()
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let cut = usize::from(first) % (input.len() + 1);
    assert_eq!(outcome(input, input.len()), outcome(input, cut));
});
