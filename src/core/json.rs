//! Recognising JSON text without building it: enough to know that a body is
//! exactly one JSON value that `JSON.parse` accepts, so that several such
//! bodies can be joined into one array and parsed with one call, and whether
//! Runner's `Serializer` would read it exactly as `JSON.parse` does; and
//! splitting the array JS writes the results of several calls into
//! (`array`).

#![forbid(unsafe_code)]

mod array;

pub use array::split_array;

/// Deeper nesting is not recognised (the caller then treats the body alone).
const MAX_DEPTH: usize = 64;

/// Whether `bytes` is valid UTF-8 holding exactly one JSON value, with only
/// JSON whitespace (space, tab, line feed, carriage return) around it: the
/// grammar of ECMA-404, which `JSON.parse` implements. `false` can also mean
/// "not sure" (nesting deeper than 64); it never means valid.
pub fn is_one_value(bytes: &[u8]) -> bool {
    scan_one_value(bytes, Keys::Any)
}

/// Whether `bytes` is one JSON value (as [`is_one_value`]) that Runner's
/// `Serializer` (`@bluelibs/runner` 5.5, default options) parses into exactly
/// what `JSON.parse` gives: no object key it reads specially (see
/// [`is_runner_marker_key`]) and no key written with an escape (it could
/// spell one). Its depth limit (1000) is far above [`MAX_DEPTH`].
pub fn is_runner_plain_value(bytes: &[u8]) -> bool {
    scan_one_value(bytes, Keys::NoRunnerMarkers)
}

/// The keys Runner's `Serializer` does not read as plain data: `__type` (a
/// typed value), `__graph` (a reference graph), keys it unescapes (prefixed
/// `$runner.escape::`) and the keys it drops against prototype pollution.
pub fn is_runner_marker_key(key: &[u8]) -> bool {
    matches!(
        key,
        b"__type" | b"__graph" | b"__proto__" | b"constructor" | b"prototype"
    ) || key.starts_with(b"$runner.escape::")
}

/// Which object keys a value may have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keys {
    Any,
    NoRunnerMarkers,
}

fn scan_one_value(bytes: &[u8], keys: Keys) -> bool {
    if std::str::from_utf8(bytes).is_err() {
        return false;
    }
    let mut scan = Scan {
        bytes,
        at: 0,
        keys,
        escaped: false,
    };
    scan.skip_ws();
    if !scan.value() {
        return false;
    }
    scan.skip_ws();
    scan.at == bytes.len()
}

struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
    keys: Keys,
    /// Whether the last string scanned held an escape.
    escaped: bool,
}

/// The containers a value is inside, innermost last: one bit per level
/// (set: an object, clear: an array), so no allocation.
#[derive(Default)]
struct Open {
    depth: usize,
    objects: u64,
}

impl Open {
    fn push(&mut self, object: bool) -> bool {
        if self.depth == MAX_DEPTH {
            return false;
        }
        self.objects = (self.objects & !(1 << self.depth)) | (u64::from(object) << self.depth);
        self.depth += 1;
        true
    }

    /// The innermost container: `Some(true)` for an object.
    fn last(&self) -> Option<bool> {
        let top = self.depth.checked_sub(1)?;
        Some(self.objects >> top & 1 == 1)
    }

    fn pop(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// One value, containers included, without recursion.
    fn value(&mut self) -> bool {
        let mut stack = Open::default();
        loop {
            // A value is expected here.
            self.skip_ws();
            match self.peek() {
                Some(b'[') => {
                    self.at += 1;
                    self.skip_ws();
                    if !self.eat(b']') {
                        if !stack.push(false) {
                            return false;
                        }
                        continue;
                    }
                }
                Some(b'{') => {
                    self.at += 1;
                    self.skip_ws();
                    if !self.eat(b'}') {
                        if stack.depth == MAX_DEPTH || !self.key() || !stack.push(true) {
                            return false;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    if !self.string() {
                        return false;
                    }
                }
                Some(b't') => {
                    if !self.literal(b"true") {
                        return false;
                    }
                }
                Some(b'f') => {
                    if !self.literal(b"false") {
                        return false;
                    }
                }
                Some(b'n') => {
                    if !self.literal(b"null") {
                        return false;
                    }
                }
                Some(b'-' | b'0'..=b'9') => {
                    if !self.number() {
                        return false;
                    }
                }
                _ => return false,
            }
            // A value ended: close containers until one continues.
            loop {
                let Some(object) = stack.last() else {
                    return true;
                };
                self.skip_ws();
                if self.eat(b',') {
                    if object {
                        self.skip_ws();
                        if !self.key() {
                            return false;
                        }
                    }
                    break;
                }
                let close = if object { b'}' } else { b']' };
                if !self.eat(close) {
                    return false;
                }
                stack.pop();
            }
        }
    }

    /// `"name"` then `:`, inside an object.
    fn key(&mut self) -> bool {
        let start = self.at + 1;
        if self.peek() != Some(b'"') || !self.string() {
            return false;
        }
        if self.keys == Keys::NoRunnerMarkers
            && (self.escaped
                || self
                    .bytes
                    .get(start..self.at - 1)
                    .is_none_or(is_runner_marker_key))
        {
            return false;
        }
        self.skip_ws();
        self.eat(b':')
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.bytes.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn string(&mut self) -> bool {
        self.at += 1; // the opening quote
        self.escaped = false;
        loop {
            // Most of a string is bytes that stand for themselves.
            let rest = &self.bytes[self.at.min(self.bytes.len())..];
            self.at += rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(rest.len());
            let Some(b) = self.peek() else {
                return false;
            };
            self.at += 1;
            match b {
                b'"' => return true,
                b'\\' => {
                    self.escaped = true;
                    let Some(e) = self.peek() else {
                        return false;
                    };
                    self.at += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.bytes.get(self.at..self.at + 4);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return false;
                            }
                            self.at += 4;
                        }
                        _ => return false,
                    }
                }
                0x00..=0x1f => return false,
                _ => {}
            }
        }
    }

    fn digits(&mut self) -> usize {
        let from = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - from
    }

    fn number(&mut self) -> bool {
        self.eat(b'-');
        if !self.eat(b'0') && self.digits() == 0 {
            return false;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_values_are_recognised() {
        for ok in [
            r#"{"input":{"a":1,"b":2}}"#,
            " \t\r\n{ \"a\" : [ 1 , -2.5e+3 , true , false , null , \"x\\u00e9\\n\" ] } \n",
            "0",
            "-0.0E-7",
            "\"\"",
            "[]",
            "{}",
            "[[],{},[{}]]",
            "\"caf\u{e9} \u{1f600}\"",
            r#""\ud800""#, // a lone surrogate escape: JSON.parse accepts it
            r#"{"a":1,"a":2}"#,
            r#"{"a":[1,{"b":[{"c":{}},[[]]]}],"d":[{}]}"#,
        ] {
            assert!(is_one_value(ok.as_bytes()), "{ok}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            " ",
            "{\"a\":1},{\"a\":2}",
            "1,2",
            "1 2",
            "[1,]",
            "[,1]",
            "{\"a\":1,}",
            "{\"a\"}",
            "{a:1}",
            "01",
            "1.",
            ".5",
            "+1",
            "1e",
            "-",
            "NaN",
            "tru",
            "\"unterminated",
            "\"tab\there\"",
            "\"\\x\"",
            "\"\\u12g4\"",
            "'single'",
            "\u{feff}{}", // JSON.parse does not skip a byte order mark
            "{}\u{a0}",   // nor a no-break space
            "[1]]",
            "[[1]",
            "[1}",
            "{\"a\":[1}]",
            "{\"a\":{\"b\":1]}",
            "[{\"a\":1]}",
            "\"",
        ] {
            assert!(!is_one_value(bad.as_bytes()), "{bad:?}");
        }
        assert!(!is_one_value(b"\"\xff\""), "invalid UTF-8");
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_left_alone() {
        let ok = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(is_one_value(ok.as_bytes()));
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert!(!is_one_value(deep.as_bytes()));
        let objects = format!(
            "{}1{}",
            "{\"a\":".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        assert!(!is_one_value(objects.as_bytes()));
    }

    #[test]
    fn runner_plain_values_have_no_marker_keys() {
        for ok in [
            r#"{"input":{"a":1,"b":2}}"#,
            r#"{"input":{"kind":"__type","x":["__graph","$runner.escape::a"]}}"#, // values, not keys
            r#"{"_type":1,"__typ":2,"__types":3,"type":4,"Constructor":5,"proto":6,"__ref":7}"#,
            r#"{"$runner.escape:":1,"$runner":2}"#,
            r#"{"a":"\u005f_type"}"#, // an escape in a value is fine
            "[1,\"x\",null]",
            "\"__type\"",
        ] {
            assert!(is_runner_plain_value(ok.as_bytes()), "{ok}");
        }
    }

    #[test]
    fn marker_and_escaped_keys_are_not_runner_plain() {
        for marked in [
            r#"{"__type":"Date","value":"2020-01-01T00:00:00.000Z"}"#,
            r#"{"input":{"__type":"BigInt","value":"1"}}"#,
            r#"{"__graph":true,"version":1,"root":{"__ref":"obj_1"},"nodes":{}}"#,
            r#"{"input":{"__proto__":{"polluted":true}}}"#,
            r#"{"input":[{"constructor":{"prototype":{}}}]}"#,
            r#"{"a":{"b":{"prototype":1}}}"#,
            r#"{"$runner.escape::__type":"x"}"#,
            r#"{"$runner.escape::":"x"}"#,
            r#"{"\u005f_type":"Date","value":"x"}"#, // spells __type
            r#"{"a\nb":1}"#,                         // any escape in a key
            r#"{"input":1,"__type":"x"}"#,
        ] {
            assert!(is_one_value(marked.as_bytes()), "{marked}");
            assert!(!is_runner_plain_value(marked.as_bytes()), "{marked}");
        }
        assert!(
            !is_runner_plain_value(b"{\"a\":1,}"),
            "still one valid value"
        );
    }
}
