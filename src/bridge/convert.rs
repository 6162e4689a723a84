//! The values that cross between JS and the bridge, converted at the edge:
//! the options and the allow-list in, a bind error and a request's metadata
//! out.

// Deny, not forbid: the `#[napi]` expansions allow unsafe for their own FFI glue.
#![deny(unsafe_code)]

use napi::{Error, Result, Status};
use napi_derive::napi;
use serde_json::{Number, Value};

use crate::core::config::ServerConfig;
use crate::core::exposure::AllowList;
use crate::core::headers::node_headers_json;
use crate::core::request_id::REQUEST_ID_HEADER;
use crate::http::RequestMeta;

/// The options `lib/options.js` validated, read as their JSON text was; a
/// `TypeError` (napi throws `InvalidArg` errors as such) when they do not
/// read as a configuration.
pub fn server_config(mut options: Value) -> Result<ServerConfig> {
    numbers_as_in_json_text(&mut options);
    ServerConfig::from_value(options).map_err(|msg| Error::new(Status::InvalidArg, msg))
}

/// Runner's allow-list, as `setAllowList` takes it (validated by
/// `lib/options.js`).
#[napi(object)]
pub struct AllowListInput {
    pub enabled: bool,
    pub allow_open: bool,
    pub tasks: Vec<String>,
    pub events: Vec<String>,
}

impl From<AllowListInput> for AllowList {
    fn from(list: AllowListInput) -> AllowList {
        AllowList {
            enabled: list.enabled,
            allow_open: list.allow_open,
            tasks: list.tasks,
            events: list.events,
        }
    }
}

/// Numbers as JSON text carries them: napi hands a JS number above
/// `u32::MAX` (or below `i32::MIN`) over as a float, which integer fields
/// refuse; in the options' JSON text (`JSON.stringify`) a whole number below
/// 1e21 was digits, which `serde_json` reads as an integer when it fits.
fn numbers_as_in_json_text(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(read) = n
                .as_f64()
                .filter(|_| n.is_f64())
                .and_then(as_json_text_reads)
            {
                *n = read;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(numbers_as_in_json_text),
        Value::Object(fields) => fields.values_mut().for_each(numbers_as_in_json_text),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// A whole float as `serde_json` reads the digits `JSON.stringify` writes
/// for it: the shortest that read back as it, as Rust's `Display` writes.
fn as_json_text_reads(f: f64) -> Option<Number> {
    if f.fract() != 0.0 || f.abs() >= 1e21 {
        return None;
    }
    serde_json::from_str(&format!("{f}")).ok()
}

/// The error `listen` throws when binding fails: its `code` is the OS
/// reason, as Node names it.
pub fn bind_error(e: &std::io::Error, host: &str, port: u16) -> Error<&'static str> {
    let code = match e.kind() {
        std::io::ErrorKind::AddrInUse => "EADDRINUSE",
        std::io::ErrorKind::AddrNotAvailable => "EADDRNOTAVAIL",
        std::io::ErrorKind::PermissionDenied => "EACCES",
        _ if e.to_string().contains("lookup") || e.to_string().contains("invalid") => "ENOTFOUND",
        _ => "ELISTEN",
    };
    Error::new(code, format!("{code}: cannot listen on {host}:{port}: {e}"))
}

/// `{method, url, path, requestId, headers}` of a call, as `ctx` reads it.
pub fn info_json(meta: &RequestMeta) -> String {
    let headers = node_headers_json(
        &meta.headers,
        &[(REQUEST_ID_HEADER, meta.request_id.as_str())],
    );
    let mut out = String::with_capacity(headers.len() + 128);
    out.push_str(r#"{"method":"#);
    out.push_str(&serde_json::Value::String(meta.method.to_string()).to_string());
    out.push_str(r#","url":"#);
    out.push_str(&serde_json::Value::String(meta.url.clone()).to_string());
    out.push_str(r#","path":"#);
    out.push_str(&serde_json::Value::String(meta.path.clone()).to_string());
    out.push_str(r#","requestId":"#);
    out.push_str(&serde_json::Value::String(meta.request_id.clone()).to_string());
    out.push_str(r#","headers":"#);
    out.push_str(&headers);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What napi makes of a JS number (`Number::from_napi_value`).
    fn from_js(n: f64) -> Value {
        let whole = n.trunc() == n;
        let number = if whole && (0.0..=f64::from(u32::MAX)).contains(&n) {
            Number::from(n as u32)
        } else if whole && n < 0.0 && n >= f64::from(i32::MIN) {
            Number::from(n as i32)
        } else {
            Number::from_f64(n).expect("finite")
        };
        Value::Number(number)
    }

    #[test]
    fn numbers_read_as_their_json_stringify_text_does() {
        // Each number and what `JSON.stringify` writes for it (from Node).
        for (n, text) in [
            (0.0, "0"),
            (-0.0, "0"),
            (65535.0, "65535"),
            (4_294_967_296.0, "4294967296"),
            (5e9, "5000000000"),
            (9_007_199_254_740_993.0, "9007199254740992"),
            (1e19, "10000000000000000000"),
            (12_345_678_901_234_567_890.0, "12345678901234567000"),
            (2e19, "20000000000000000000"),
            (-5e9, "-5000000000"),
            (-1e19, "-10000000000000000000"),
            (-12_345_678_901_234_567_890.0, "-12345678901234567000"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (1e300, "1e+300"),
        ] {
            let mut value = from_js(n);
            numbers_as_in_json_text(&mut value);
            let read: Value = serde_json::from_str(text).expect("json");
            assert_eq!(value, read, "{n}");
        }
        let mut nested = serde_json::json!({ "a": [5e9], "b": { "c": 7.5 } });
        numbers_as_in_json_text(&mut nested);
        assert_eq!(
            nested,
            serde_json::json!({ "a": [5_000_000_000u64], "b": { "c": 7.5 } })
        );
    }
}
