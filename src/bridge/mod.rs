//! The napi bridge: the `NativeServer` class `index.js` wraps, and the
//! dispatcher that batches handler calls into JavaScript.

// Deny, not forbid: a forbid here would also bind `server`'s `#[napi]` glue.
#![deny(unsafe_code)]

use std::sync::{Mutex, MutexGuard, PoisonError};

mod answers;
mod batch;
mod convert;
// Read only through the exports `#[napi]` registers, which test builds leave out.
#[cfg_attr(test, allow(dead_code))]
mod format;
mod observe;
mod ready;
mod records;
pub mod server;
mod shared;
mod wake;

/// Locks one of the bridge's mutexes, going on past a panic that poisoned
/// it (refusing would leave every later request unanswered): each critical
/// section is one map insert or removal, one `Option` set or taken, or a
/// buffer cleared before it is filled, so a panic leaves the data whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
