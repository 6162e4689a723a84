//! The napi bridge: the `NativeServer` class `index.js` wraps, and the
//! dispatcher that batches handler calls into JavaScript.

mod batch;
pub mod server;
