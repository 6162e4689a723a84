//! The HTTP server: tokio accepts, hyper speaks HTTP/1.1, an axum fallback
//! handler walks each request through the protocol core and, when a handler
//! must run, hands it to the [`Dispatch`] (the JavaScript bridge, or a Rust
//! handler in the benchmark peer).

mod answer;
mod dispatch;
mod handler;
mod server;
pub mod stream;

pub use answer::{Reply, ReplyBody};
pub use dispatch::{Call, Dispatch, RequestMeta};
pub use server::{bind, RunningServer, ServerState};
