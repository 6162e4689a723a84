//! The napi bridge: the `NativeServer` class `index.js` wraps, and the
//! dispatcher that batches handler calls into JavaScript.

// Deny, not forbid: a forbid here would also bind `server`'s `#[napi]` glue.
#![deny(unsafe_code)]

use std::sync::{Mutex, MutexGuard, PoisonError};

mod batch;
mod observe;
pub mod server;

/// Locks one of the bridge's mutexes, going on past a panic that poisoned
/// it (refusing would leave every later request unanswered): each critical
/// section is one map insert or removal, one `Option` set or taken, or a
/// buffer cleared before it is filled, so a panic leaves the data whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The batch format's numbers, exported for `lib/wire.js` so that they are
/// written once (`crate::wire`).
// Read only through the exports `#[napi]` registers, which test builds leave out.
#[cfg_attr(test, allow(dead_code))]
mod format {
    use crate::core::body::BodyKind;
    use crate::wire;
    use napi_derive::napi;

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
    pub const RECORD_HEADER: u32 = wire::RECORD_HEADER as u32;
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
}
