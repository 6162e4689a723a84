//! The HTTP server: tokio accepts, `conn` speaks HTTP/1.1 (wire format in
//! `h1`), and one handler walks each request (head and body) through
//! the protocol core and, when a handler must run, hands it to the
//! [`Dispatch`] (the JavaScript bridge, or a Rust handler in the benchmark
//! peer).

mod answer;
mod body;
mod conn;
mod dispatch;
/// The HTTP/1.1 codec; public for the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub mod h1;
mod handler;
mod server;
mod state;
pub mod stream;

pub use answer::{Reply, ReplyBody};
pub use body::RequestBody;
pub use dispatch::{Call, Dispatch, RequestMeta};
pub use server::{bind, RunningServer};
pub use state::ServerState;
