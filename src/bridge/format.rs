//! What JS and the native side must agree on, exported to JS (`native.js`)
//! so that it is written once: the numbers of the batch format
//! (`crate::wire`) and the answer bodies JS writes (`crate::core::envelope`).

// Deny, not forbid: the `#[napi]` expansions allow unsafe for their own FFI glue.
#![deny(unsafe_code)]

use napi::bindgen_prelude::{BufferSlice, Utf16String};
use napi_derive::napi;

use crate::core::body::BodyKind;
use crate::core::envelope;
use crate::core::exposure::Kind;
use crate::core::json;
use crate::wire;

#[napi]
pub const KIND_TASK: u32 = wire::KIND_TASK as u32;
#[napi]
pub const KIND_EVENT: u32 = wire::KIND_EVENT as u32;
#[napi]
pub const KIND_ABORT: u32 = wire::KIND_ABORT as u32;
#[napi]
pub const KIND_ORIGIN: u32 = wire::KIND_ORIGIN as u32;
#[napi]
pub const KIND_AUTH: u32 = wire::KIND_AUTH as u32;
#[napi]
pub const KIND_SERIALIZE: u32 = wire::KIND_SERIALIZE as u32;
#[napi]
pub const KIND_BODY_CHUNK: u32 = wire::KIND_BODY_CHUNK as u32;
#[napi]
pub const KIND_BODY_END: u32 = wire::KIND_BODY_END as u32;
#[napi]
pub const KIND_BODY_ERROR: u32 = wire::KIND_BODY_ERROR as u32;
#[napi]
pub const KIND_RESUME: u32 = wire::KIND_RESUME as u32;
#[napi]
pub const KIND_GONE: u32 = wire::KIND_GONE as u32;
#[napi]
pub const KIND_AUTH_FAILED: u32 = wire::KIND_AUTH_FAILED as u32;
#[napi]
pub const KIND_VALUES: u32 = wire::KIND_VALUES as u32;
#[napi]
pub const FLAG_JOINED: u32 = wire::FLAG_JOINED as u32;
#[napi]
pub const FLAG_JSON_TEXT: u32 = wire::FLAG_JSON_TEXT as u32;
#[napi]
pub const BATCH_BUFFER: u32 = wire::BATCH_BUFFER as u32;
#[napi]
pub const POLLED_CHUNKS: u32 = wire::POLLED_CHUNKS;
#[napi]
pub const FLAG_VALUES_ASCII: u32 = wire::FLAG_VALUES_ASCII as u32;
#[napi]
pub const FLAG_ORIGIN_SENT: u32 = wire::FLAG_ORIGIN_SENT as u32;
#[napi]
pub const RECORD_KIND: u32 = wire::RECORD_KIND as u32;
#[napi]
pub const RECORD_FLAGS: u32 = wire::RECORD_FLAGS as u32;
#[napi]
pub const RECORD_TICKET: u32 = wire::RECORD_TICKET as u32;
#[napi]
pub const RECORD_HANDLER: u32 = wire::RECORD_HANDLER as u32;
#[napi]
pub const RECORD_LENGTH: u32 = wire::RECORD_LENGTH as u32;
#[napi]
pub const RECORD_HEADER: u32 = wire::RECORD_HEADER as u32;
#[napi]
pub const ANSWER_TICKET: u32 = wire::ANSWER_TICKET as u32;
#[napi]
pub const ANSWER_STATUS: u32 = wire::ANSWER_STATUS as u32;
#[napi]
pub const ANSWER_LENGTH: u32 = wire::ANSWER_LENGTH as u32;
#[napi]
pub const ANSWER_HEADER: u32 = wire::ANSWER_HEADER as u32;
#[napi]
pub const JOINED_RESULTS: u32 = wire::JOINED_RESULTS;
#[napi]
pub const BODY_JSON: u32 = BodyKind::Json as u32;
#[napi]
pub const BODY_RAW: u32 = BodyKind::Raw as u32;
#[napi]
pub const BODY_MULTIPART: u32 = BodyKind::Multipart as u32;

/// `{"ok":true}`: a call answered without a result.
#[napi]
pub const OK_EMPTY: &str = envelope::OK_EMPTY;
/// `{"ok":true,"result":`, then the result's JSON, then [`OK_RESULT_SUFFIX`].
#[napi]
pub const OK_RESULT_PREFIX: &str = envelope::OK_RESULT_PREFIX;
/// `}`, closing a result's envelope.
#[napi]
pub const OK_RESULT_SUFFIX: &str = envelope::OK_RESULT_SUFFIX;
/// The 499 answer of a call whose client went away.
#[napi]
pub const ABORTED_BODY: &str = envelope::ABORTED_BODY;
/// The 500 answer of a call whose handler failed without saying how.
#[napi]
pub const INTERNAL_BODY: &str = envelope::INTERNAL_BODY;
/// The 400 answer of a call whose JSON body does not parse.
#[napi]
pub const INVALID_JSON_BODY: &str = envelope::INVALID_JSON_BODY;
/// The error code of a call to an id that has no handler.
#[napi]
pub const NOT_FOUND_CODE: &str = envelope::NOT_FOUND_CODE;

/// Whether the native side marks a JSON body as text JS may read with
/// `JSON.parse` when the serializer is Runner's own
/// (`core::json::is_runner_plain_value`); exported so that JS checks the
/// rule against that serializer (`__test__/serializer-json.property.test.js`).
#[napi]
pub fn is_runner_plain_json(body: BufferSlice) -> bool {
    json::is_runner_plain_value(&body)
}

/// `Task {id} not found` (`Event ...` for `KIND_EVENT`): the message of a
/// call whose handler was unregistered after the native side looked it up.
#[napi]
pub fn not_found_message(kind: u32, id: Utf16String) -> Utf16String {
    let kind = if kind == u32::from(wire::KIND_EVENT) {
        Kind::Event
    } else {
        Kind::Task
    };
    let [before, after] = envelope::not_found_words(kind);
    // UTF-16 both ways, so the id is said exactly as JS holds it.
    let message: Vec<u16> = before
        .encode_utf16()
        .chain(id.iter().copied())
        .chain(after.encode_utf16())
        .collect();
    message.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_message_is_the_protocol_errors_and_keeps_the_id_as_js_has_it() {
        let message = |kind: u8, id: &[u16]| -> Vec<u16> {
            not_found_message(u32::from(kind), id.to_vec().into()).to_vec()
        };
        let utf16 = |s: &str| -> Vec<u16> { s.encode_utf16().collect() };
        assert_eq!(
            message(wire::KIND_TASK, &utf16("a.b")),
            utf16(&envelope::ProtocolError::TaskNotFound("a.b".into()).message())
        );
        assert_eq!(
            message(wire::KIND_EVENT, &utf16("e")),
            utf16(&envelope::ProtocolError::EventNotFound("e".into()).message())
        );
        // A lone surrogate, which no Rust string can hold, is kept.
        let mut id = utf16("x");
        id.push(0xd800);
        let mut expected = utf16("Task x");
        expected.push(0xd800);
        expected.extend(utf16(" not found"));
        assert_eq!(message(wire::KIND_TASK, &id), expected);
    }
}
