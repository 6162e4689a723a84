//! The JSON answers the server writes itself (errors decided before any
//! handler runs, and discovery). Key order follows the reference, which
//! builds `{ ok, error: { message, code } }`.

#![forbid(unsafe_code)]

use serde_json::Value;

use super::exposure::Kind;

pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

// The bodies JS writes too, defined here only: the bridge exports them to
// `lib/codec.js` (a test below pins each error body to its `ProtocolError`).

/// A call answered without a result.
pub const OK_EMPTY: &str = r#"{"ok":true}"#;
/// What a call's result is written after: `{"ok":true,"result":` result `}`.
pub const OK_RESULT_PREFIX: &str = r#"{"ok":true,"result":"#;
/// What a call's result is written before [`OK_RESULT_SUFFIX`] closes it.
pub const OK_RESULT_SUFFIX: &str = "}";
/// [`ProtocolError::RequestAborted`]'s body.
pub const ABORTED_BODY: &str =
    r#"{"ok":false,"error":{"message":"Client Closed Request","code":"REQUEST_ABORTED"}}"#;
/// [`ProtocolError::InternalError`]'s body.
pub const INTERNAL_BODY: &str =
    r#"{"ok":false,"error":{"message":"Internal Error","code":"INTERNAL_ERROR"}}"#;
/// [`ProtocolError::InvalidJson`]'s body.
pub const INVALID_JSON_BODY: &str =
    r#"{"ok":false,"error":{"message":"Invalid JSON body","code":"INVALID_JSON"}}"#;
/// The code of a call to an id no handler is registered for.
pub const NOT_FOUND_CODE: &str = "NOT_FOUND";

/// An error the protocol core answers without calling a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    NotFound,
    MethodNotAllowed,
    Unauthorized,
    AuthNotConfigured,
    PayloadTooLarge,
    TaskNotFound(String),
    EventNotFound(String),
    ExposureNotEnabled,
    TaskNotExposed(String),
    EventNotExposed(String),
    RequestAborted,
    InternalError,
    /// Past `maxInFlight`: answered without waking JavaScript.
    Overloaded,
    /// A JSON body that does not parse; JS decides it, as it parses bodies.
    InvalidJson,
}

impl ProtocolError {
    pub fn status(&self) -> u16 {
        match self {
            ProtocolError::NotFound
            | ProtocolError::TaskNotFound(_)
            | ProtocolError::EventNotFound(_) => 404,
            ProtocolError::MethodNotAllowed => 405,
            ProtocolError::Unauthorized => 401,
            ProtocolError::AuthNotConfigured | ProtocolError::InternalError => 500,
            ProtocolError::PayloadTooLarge => 413,
            ProtocolError::ExposureNotEnabled
            | ProtocolError::TaskNotExposed(_)
            | ProtocolError::EventNotExposed(_) => 403,
            ProtocolError::RequestAborted => 499,
            ProtocolError::Overloaded => 503,
            ProtocolError::InvalidJson => 400,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::NotFound
            | ProtocolError::TaskNotFound(_)
            | ProtocolError::EventNotFound(_) => NOT_FOUND_CODE,
            ProtocolError::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ProtocolError::Unauthorized => "UNAUTHORIZED",
            ProtocolError::AuthNotConfigured => "AUTH_NOT_CONFIGURED",
            ProtocolError::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ProtocolError::ExposureNotEnabled
            | ProtocolError::TaskNotExposed(_)
            | ProtocolError::EventNotExposed(_) => "FORBIDDEN",
            ProtocolError::RequestAborted => "REQUEST_ABORTED",
            ProtocolError::InternalError => "INTERNAL_ERROR",
            ProtocolError::Overloaded => "OVERLOADED",
            ProtocolError::InvalidJson => "INVALID_JSON",
        }
    }

    pub fn message(&self) -> String {
        match self {
            ProtocolError::NotFound => "Not Found".into(),
            ProtocolError::MethodNotAllowed => "Method Not Allowed".into(),
            ProtocolError::Unauthorized => "Unauthorized".into(),
            ProtocolError::AuthNotConfigured => "Authentication not configured.".into(),
            ProtocolError::PayloadTooLarge => "Payload too large".into(),
            ProtocolError::TaskNotFound(id) => not_found_message(Kind::Task, id),
            ProtocolError::EventNotFound(id) => not_found_message(Kind::Event, id),
            ProtocolError::ExposureNotEnabled => "Exposure not enabled".into(),
            ProtocolError::TaskNotExposed(id) => format!("Task {id} not exposed"),
            ProtocolError::EventNotExposed(id) => format!("Event {id} not exposed"),
            ProtocolError::RequestAborted => "Client Closed Request".into(),
            ProtocolError::InternalError => "Internal Error".into(),
            ProtocolError::Overloaded => "Server busy".into(),
            ProtocolError::InvalidJson => "Invalid JSON body".into(),
        }
    }

    /// The answer body, e.g. `{"ok":false,"error":{"message":"Not Found","code":"NOT_FOUND"}}`.
    pub fn body(&self) -> String {
        error_body(&self.message(), self.code())
    }
}

/// `Task {id} not found` (or `Event ...`): the words before and after the id.
/// The bridge joins them around an id as JS holds it (UTF-16, lone
/// surrogates and all), for a call whose handler went away after the lookup.
pub fn not_found_words(kind: Kind) -> [&'static str; 2] {
    match kind {
        Kind::Task => ["Task ", " not found"],
        Kind::Event => ["Event ", " not found"],
    }
}

/// The message of a call to an id no handler is registered for.
pub fn not_found_message(kind: Kind, id: &str) -> String {
    let [before, after] = not_found_words(kind);
    [before, id, after].concat()
}

pub fn error_body(message: &str, code: &str) -> String {
    let mut out = String::with_capacity(48 + message.len() + code.len());
    out.push_str(r#"{"ok":false,"error":{"message":"#);
    push_json_string(&mut out, message);
    out.push_str(r#","code":"#);
    push_json_string(&mut out, code);
    out.push_str("}}");
    out
}

/// `{"ok":true,"result":{"allowList":{"enabled":E,"tasks":[..],"events":[..]}}}`
pub fn discovery_body(enabled: bool, tasks: &[String], events: &[String]) -> String {
    let mut out = String::from(r#"{"ok":true,"result":{"allowList":{"enabled":"#);
    out.push_str(if enabled { "true" } else { "false" });
    out.push_str(r#","tasks":"#);
    push_json_list(&mut out, tasks);
    out.push_str(r#","events":"#);
    push_json_list(&mut out, events);
    out.push_str("}}}");
    out
}

fn push_json_list(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, item);
    }
    out.push(']');
}

/// Escapes like `JSON.stringify` (serde_json uses the same short escapes and
/// `\u00XX` for other control characters; lone surrogates cannot occur in a
/// Rust string).
pub fn push_json_string(out: &mut String, s: &str) {
    match serde_json::to_string(&Value::String(s.to_string())) {
        Ok(text) => out.push_str(&text),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_body_matches_the_reference_bytes() {
        assert_eq!(
            ProtocolError::NotFound.body(),
            r#"{"ok":false,"error":{"message":"Not Found","code":"NOT_FOUND"}}"#
        );
    }

    #[test]
    fn task_not_found_names_the_id_and_escapes_it() {
        let e = ProtocolError::TaskNotFound("a\"b".into());
        assert_eq!(e.status(), 404);
        assert_eq!(
            e.body(),
            r#"{"ok":false,"error":{"message":"Task a\"b not found","code":"NOT_FOUND"}}"#
        );
    }

    #[test]
    fn the_bodies_js_writes_are_the_protocol_errors_bodies() {
        assert_eq!(ABORTED_BODY, ProtocolError::RequestAborted.body());
        assert_eq!(INTERNAL_BODY, ProtocolError::InternalError.body());
        assert_eq!(INVALID_JSON_BODY, ProtocolError::InvalidJson.body());
        assert_eq!(ProtocolError::InvalidJson.status(), 400);
        assert_eq!(
            ProtocolError::EventNotFound("e".into()).code(),
            NOT_FOUND_CODE
        );
        assert_eq!(
            ProtocolError::EventNotFound("e.1".into()).message(),
            "Event e.1 not found"
        );
        let result = [OK_RESULT_PREFIX, "[1]", OK_RESULT_SUFFIX].concat();
        assert_eq!(result, r#"{"ok":true,"result":[1]}"#);
        assert_eq!(OK_EMPTY, r#"{"ok":true}"#);
    }

    #[test]
    fn statuses_follow_the_protocol_table() {
        assert_eq!(ProtocolError::MethodNotAllowed.status(), 405);
        assert_eq!(ProtocolError::Unauthorized.status(), 401);
        assert_eq!(ProtocolError::AuthNotConfigured.status(), 500);
        assert_eq!(ProtocolError::PayloadTooLarge.status(), 413);
        assert_eq!(ProtocolError::TaskNotExposed("x".into()).status(), 403);
        assert_eq!(ProtocolError::RequestAborted.status(), 499);
    }

    #[test]
    fn discovery_lists_ids_in_order() {
        assert_eq!(
            discovery_body(true, &["a".into(), "b".into()], &[]),
            r#"{"ok":true,"result":{"allowList":{"enabled":true,"tasks":["a","b"],"events":[]}}}"#
        );
    }
}
