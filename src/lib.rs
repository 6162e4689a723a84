//! `@bluelibs/runner-native`: BlueLibs Runner's tunnel protocol served by a
//! Rust HTTP server inside the Node.js process.
//!
//! Three layers, data flowing one way: [`core`] decides what each request
//! means and what its answer looks like, [`http`] moves bytes, and the napi
//! bridge (feature `node`) hands handler calls to JavaScript and takes the
//! serialized answers back.

// Deny here; each module forbids it but the bridge, whose `#[napi]` glue allows it.
#![deny(unsafe_code)]

pub mod core;
pub mod http;
pub mod wire;

#[cfg(feature = "node")]
mod bridge;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
