//! Request headers as Node's `IncomingMessage.headers` presents them, since
//! the reference reads every header through that view: values decoded as
//! latin1, repeated headers joined with `, ` (`cookie` with `; `), a fixed
//! set of singleton headers keeping their first value, `set-cookie` a list.

#![forbid(unsafe_code)]

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};
use serde_json::{Map, Value};

const FIRST_WINS: &[&str] = &[
    "age",
    "authorization",
    "content-length",
    "content-type",
    "etag",
    "expires",
    "from",
    "host",
    "if-modified-since",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "proxy-authorization",
    "referer",
    "retry-after",
    "server",
    "user-agent",
];

pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// One header's value as Node shows it, or `None` when absent. A single
/// ASCII value (the usual case) is borrowed, not copied.
pub fn node_header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<Cow<'a, str>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?.as_bytes();
    let first_wins = FIRST_WINS.contains(&name.as_str());
    let mut rest = values.peekable();
    if first_wins || rest.peek().is_none() {
        return Some(match std::str::from_utf8(first) {
            Ok(text) if text.is_ascii() => Cow::Borrowed(text),
            _ => Cow::Owned(latin1(first)),
        });
    }
    let mut out = latin1(first);
    let sep = if name == "cookie" { "; " } else { ", " };
    for v in rest {
        out.push_str(sep);
        out.push_str(&latin1(v.as_bytes()));
    }
    Some(Cow::Owned(out))
}

/// All headers as a JSON object (the handler's `ctx.headers`), with
/// `overrides` replacing single values (the normalised request id).
pub fn node_headers_json(headers: &HeaderMap, overrides: &[(&str, &str)]) -> String {
    let mut map = Map::new();
    for name in headers.keys() {
        let key = name.as_str();
        if map.contains_key(key) {
            continue;
        }
        let value = if key == "set-cookie" {
            Value::Array(
                headers
                    .get_all(name)
                    .iter()
                    .map(|v| Value::String(latin1(v.as_bytes())))
                    .collect(),
            )
        } else {
            Value::String(node_header(headers, name).unwrap_or_default().into_owned())
        };
        map.insert(key.to_string(), value);
    }
    for (k, v) in overrides {
        map.insert((*k).to_string(), Value::String((*v).to_string()));
    }
    Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn repeated_custom_headers_are_joined_like_node() {
        let mut h = HeaderMap::new();
        h.append("x-runner-token", HeaderValue::from_static("a"));
        h.append("x-runner-token", HeaderValue::from_static("b"));
        assert_eq!(
            node_header(&h, &HeaderName::from_static("x-runner-token")).as_deref(),
            Some("a, b")
        );
    }

    #[test]
    fn repeated_content_type_keeps_the_first_like_node() {
        let mut h = HeaderMap::new();
        h.append("content-type", HeaderValue::from_static("application/json"));
        h.append("content-type", HeaderValue::from_static("text/plain"));
        assert_eq!(
            node_header(&h, &http::header::CONTENT_TYPE).as_deref(),
            Some("application/json")
        );
    }

    #[test]
    fn values_decode_as_latin1() {
        let mut h = HeaderMap::new();
        h.append(
            "x-a",
            HeaderValue::from_bytes(&[0xC3, 0xA9]).expect("value"),
        );
        assert_eq!(
            node_header(&h, &HeaderName::from_static("x-a")).as_deref(),
            Some("Ã©")
        );
    }

    #[test]
    fn headers_json_applies_overrides() {
        let mut h = HeaderMap::new();
        h.append("x-runner-request-id", HeaderValue::from_static("bad id"));
        h.append("set-cookie", HeaderValue::from_static("a=1"));
        let json = node_headers_json(&h, &[("x-runner-request-id", "r1")]);
        assert_eq!(json, r#"{"set-cookie":["a=1"],"x-runner-request-id":"r1"}"#);
    }
}
