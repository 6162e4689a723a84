use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

use crate::http::h1::*;

/// A keep-alive answer on a connection with a 5 s idle limit.
const KEEP: Reuse = Reuse::KeepAlive { idle_secs: Some(5) };

fn head_text(
    status: u16,
    headers: &[(&str, &str)],
    body: BodyOut,
    method: Method,
    v: Version,
    reuse: Reuse,
) -> (String, HeadOut) {
    let mut map = HeaderMap::new();
    for (k, val) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(val).expect("value"),
        );
    }
    let mut out = Vec::new();
    let how = encode_head(
        &mut out,
        StatusCode::from_u16(status).expect("status"),
        &map,
        body,
        &method,
        v,
        reuse,
    );
    (String::from_utf8(out).expect("ascii"), how)
}

#[test]
fn answer_heads() {
    let (t, how) = head_text(
        200,
        &[("content-type", "application/json")],
        BodyOut::Known(12),
        Method::POST,
        Version::HTTP_11,
        KEEP,
    );
    assert!(
        t.starts_with(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\ndate: "
        ),
        "{t}"
    );
    // As Node's server writes them for a keep-alive answer.
    assert!(
        t.ends_with(" GMT\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\n\r\n"),
        "{t}"
    );
    assert_eq!(
        how,
        HeadOut {
            body: true,
            chunked: false,
            keep_alive: true
        }
    );

    let (t, how) = head_text(
        200,
        &[],
        BodyOut::Streamed,
        Method::POST,
        Version::HTTP_11,
        Reuse::Close,
    );
    assert!(
        t.contains("transfer-encoding: chunked\r\n") && t.contains("connection: close\r\n"),
        "{t}"
    );
    assert_eq!(
        how,
        HeadOut {
            body: true,
            chunked: true,
            keep_alive: false
        }
    );

    let (t, how) = head_text(
        200,
        &[],
        BodyOut::Streamed,
        Method::POST,
        Version::HTTP_10,
        KEEP,
    );
    assert!(
        !t.contains("transfer-encoding") && t.contains("connection: close\r\n"),
        "{t}"
    );
    assert!(!how.chunked && !how.keep_alive);

    let (t, how) = head_text(
        204,
        &[("content-length", "0")],
        BodyOut::Known(0),
        Method::OPTIONS,
        Version::HTTP_11,
        KEEP,
    );
    assert!(
        t.starts_with("HTTP/1.1 204 No Content\r\ndate: ") && !t.contains("content-length"),
        "{t}"
    );
    assert!(!how.body);

    let (t, how) = head_text(
        405,
        &[],
        BodyOut::Known(7),
        Method::HEAD,
        Version::HTTP_10,
        KEEP,
    );
    assert!(
        t.contains("content-length: 7\r\n") && t.contains("connection: keep-alive\r\n"),
        "{t}"
    );
    assert!(!how.body && how.keep_alive);

    let (_, how) = head_text(
        400,
        &[("connection", "close")],
        BodyOut::Known(0),
        Method::GET,
        Version::HTTP_11,
        KEEP,
    );
    assert!(!how.keep_alive);
}

#[test]
fn keep_alive_without_an_idle_limit_announces_no_timeout() {
    let answer = |reuse| {
        head_text(
            200,
            &[],
            BodyOut::Known(0),
            Method::POST,
            Version::HTTP_11,
            reuse,
        )
        .0
    };
    let t = answer(Reuse::KeepAlive { idle_secs: None });
    assert!(t.contains("connection: keep-alive\r\n"), "{t}");
    assert!(!t.contains("keep-alive: timeout"), "{t}");
    let t = answer(Reuse::Close);
    assert!(t.ends_with("connection: close\r\n\r\n"), "{t}");
}

#[test]
fn chunk_framing() {
    let mut out = Vec::new();
    encode_chunk(&mut out, &[b'x'; 26]);
    assert_eq!(&out[..4], b"1a\r\n");
    assert!(out.ends_with(b"x\r\n"));
}
