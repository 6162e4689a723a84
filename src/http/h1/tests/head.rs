use bytes::BytesMut;
use http::Method;

use crate::http::h1::*;
use crate::http::h1::{MAX_HEAD, STACK_HEADERS};

fn parse(text: &str) -> Result<Option<Head>, Refusal> {
    parse_head(&mut BytesMut::from(text.as_bytes()))
}

#[test]
fn parses_a_post_with_length() {
    let mut buf = BytesMut::from(
        &b"POST /__runner/task/a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-A: 1\r\nx-a: 2\r\n\r\nabcNEXT"[..],
    );
    let head = parse_head(&mut buf).expect("valid").expect("complete");
    assert_eq!(head.request.method(), Method::POST);
    assert_eq!(head.request.uri().path(), "/__runner/task/a");
    assert_eq!(head.request.uri().query(), Some("x=1"));
    assert_eq!(head.framing, Framing::Length(3));
    assert!(head.keep_alive);
    let values: Vec<_> = head.request.headers().get_all("x-a").iter().collect();
    assert_eq!(values, ["1", "2"]);
    assert_eq!(&buf[..], b"abcNEXT");
}

#[test]
fn waits_for_a_complete_head_and_bounds_it() {
    assert!(matches!(parse("POST / HTTP/1.1\r\nHost: h\r\n"), Ok(None)));
    let long = format!("GET / HTTP/1.1\r\nx: {}\r\n", "a".repeat(MAX_HEAD));
    assert_eq!(parse(&long).err(), Some(Refusal::TooLarge));
    // More lines than the stack holds are still parsed, as Node parses
    // them, up to a head's worth of bytes.
    let many: String = (0..=STACK_HEADERS * 2)
        .map(|i| format!("h{i}: v\r\n"))
        .collect();
    let head = parse(&format!("GET / HTTP/1.1\r\nhost: h\r\n{many}\r\n"))
        .expect("valid")
        .expect("complete");
    assert_eq!(head.request.headers().len(), STACK_HEADERS * 2 + 2);
    // What follows a head with many lines is not part of it (a bare LF there
    // is the body's business).
    let many: String = (0..STACK_HEADERS * 2).map(|_| "a:\r\n").collect();
    let mut buf = BytesMut::from(format!("GET / HTTP/1.1\r\nhost: h\r\n{many}\r\nx\ny").as_bytes());
    assert!(matches!(parse_head(&mut buf), Ok(Some(_))));
    assert_eq!(&buf[..], b"x\ny");
    let lines: String = (0..MAX_HEAD / 4).map(|_| "a:\r\n").collect();
    assert_eq!(
        parse(&format!("GET / HTTP/1.1\r\n{lines}\r\n")).err(),
        Some(Refusal::TooLarge)
    );
}

#[test]
fn refuses_ambiguous_or_broken_framing() {
    let bad = [
        "content-length: 3\r\ntransfer-encoding: chunked",
        "transfer-encoding: gzip",
        "transfer-encoding: chunked, gzip",
        "transfer-encoding: chunked\r\ntransfer-encoding: gzip",
        "transfer-encoding: chunked, chunked",
        "transfer-encoding: chunked\r\ntransfer-encoding: chunked",
        "transfer-encoding: chunked,",
        "transfer-encoding: ,",
        "transfer-encoding: chunked;q=1",
        "transfer-encoding: x;=1, chunked",
        "transfer-encoding: \"chunked\"",
        "transfer-encoding: chunked\x0b",
        "content-length: 3\r\ncontent-length: 4",
        // A repeated length, even an equal one, as llhttp refuses it.
        "content-length: 3\r\ncontent-length: 3",
        "content-length: 3, 3",
        "content-length: -1",
        "content-length: +1",
        "content-length: 1e3",
        "content-length: 0x10",
        "content-length: ",
        "content-length: 1 2",
        "content-length: 18446744073709551616",
        "content-length: \u{a0}3",
        "content-length: 3\u{3000}",
        "content-length: 3\u{85}",
        "host: i",
    ];
    for fields in bad {
        let text = format!("POST / HTTP/1.1\r\nhost: h\r\n{fields}\r\n\r\n");
        assert_eq!(parse(&text).err(), Some(Refusal::Bad), "{text:?}");
    }
    let bad_heads = [
        "POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n",
        "POST / HTTP/2.0\r\nhost: h\r\n\r\n",
        "POST / HTTP/1.2\r\nhost: h\r\n\r\n",
        "NOT A REQUEST\r\n\r\n",
        // HTTP/1.1 needs a host (RFC 9112 3.2), as Node's server requires.
        "POST / HTTP/1.1\r\n\r\n",
        // Methods Node's parser does not know.
        "FOO / HTTP/1.1\r\nhost: h\r\n\r\n",
        "get / HTTP/1.1\r\nhost: h\r\n\r\n",
        // Every line ends in CRLF.
        "POST / HTTP/1.1\nhost: h\r\n\r\n",
        "POST / HTTP/1.1\r\nhost: h\n\r\n",
        "POST / HTTP/1.1\r\nhost: h\r\n\n",
        "POST / HTTP/1.1\r\nhost: h\rx: y\r\n\r\n",
        // Raw non-ASCII in the target.
        "POST /\u{e9} HTTP/1.1\r\nhost: h\r\n\r\n",
        // obs-fold and whitespace before the colon.
        "POST / HTTP/1.1\r\nhost: h\r\nx: 1\r\n 2\r\n\r\n",
        "POST / HTTP/1.1\r\nhost : h\r\n\r\n",
    ];
    for text in bad_heads {
        assert_eq!(parse(text).err(), Some(Refusal::Bad), "{text:?}");
    }
    // HTTP/1.0 may leave the host out.
    assert!(matches!(parse("GET / HTTP/1.0\r\n\r\n"), Ok(Some(_))));
    // A bare LF is refused before the head is complete.
    assert_eq!(parse("POST / HTTP/1.1\nho").err(), Some(Refusal::Bad));
}

#[test]
fn lengths_and_codings_that_are_accepted() {
    let framing = |fields: &str| {
        parse(&format!("POST / HTTP/1.1\r\nhost: h\r\n{fields}\r\n\r\n"))
            .expect("valid")
            .expect("complete")
            .framing
    };
    assert_eq!(framing("content-length: 007"), Framing::Length(7));
    assert_eq!(framing("content-length:\t 7 \t"), Framing::Length(7));
    assert_eq!(
        framing("content-length: 18446744073709551615"),
        Framing::Length(u64::MAX)
    );
    assert_eq!(framing("transfer-encoding: CHUNKED"), Framing::Chunked);
    assert_eq!(
        framing("transfer-encoding: gzip , chunked"),
        Framing::Chunked
    );
    assert_eq!(
        framing("transfer-encoding: gzip\r\ntransfer-encoding: chunked"),
        Framing::Chunked
    );
    assert_eq!(
        framing("transfer-encoding: x;a=1;b=\"q\\\"\", chunked"),
        Framing::Chunked
    );
    // Empty list elements are ignored, as llhttp and hyper ignore them.
    assert_eq!(
        framing("transfer-encoding: , gzip, , chunked"),
        Framing::Chunked
    );
    assert_eq!(framing(""), Framing::Length(0));
    // Leading empty lines are skipped, as both llhttp and hyper do.
    assert!(matches!(
        parse("\r\n\nGET / HTTP/1.1\r\nhost: h\r\n\r\n"),
        Ok(Some(_))
    ));
}

#[test]
fn connection_rules_per_version() {
    let h = |t: &str| parse(t).expect("valid").expect("complete");
    assert!(!h("GET / HTTP/1.1\r\nhost: h\r\nconnection: Close\r\n\r\n").keep_alive);
    assert!(!h("GET / HTTP/1.0\r\n\r\n").keep_alive);
    assert!(h("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n").keep_alive);
    assert!(
        h("POST / HTTP/1.1\r\nhost: h\r\nexpect: 100-Continue\r\ncontent-length: 1\r\n\r\n")
            .expect_continue
    );
    assert_eq!(
        h("POST / HTTP/1.1\r\nhost: h\r\ntransfer-encoding: gzip, chunked\r\n\r\n").framing,
        Framing::Chunked
    );
}

#[test]
fn a_bare_cr_before_the_request_line_is_refused() {
    // Node and hyper refuse it; empty lines there are skipped.
    assert_eq!(
        parse("\rPOST / HTTP/1.1\r\nhost: h\r\n\r\n").err(),
        Some(Refusal::Bad)
    );
    assert!(matches!(parse("\r"), Ok(None)));
    assert!(parse("\r\n\nGET / HTTP/1.1\r\nhost: h\r\n\r\n")
        .expect("valid")
        .is_some());
}
