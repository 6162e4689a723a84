//! The tunnel protocol, free of any HTTP server or JavaScript engine.
//!
//! Every decision the server makes about a request (where it goes, whether it
//! may pass, which headers the answer carries, what an error looks like) lives
//! here, so it can be unit-tested with `cargo test` and reused by the
//! Rust-only benchmark peer.

#![forbid(unsafe_code)]

pub mod auth;
pub mod body;
pub mod config;
pub mod cors;
pub mod encoding;
pub mod envelope;
pub mod exposure;
pub mod headers;
pub mod health;
pub mod json;
pub mod request_id;
pub mod router;
