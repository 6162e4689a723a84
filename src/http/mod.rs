//! The HTTP server: tokio accepts, `conn` speaks HTTP/1.1 (wire format in
//! `h1`), and one handler walks each request (head and body) through
//! the protocol core and, when a handler must run, hands it to the
//! [`Dispatch`] (the JavaScript bridge, or a Rust handler in the benchmark
//! peer).
//!
//! What goes back to the client is its *answer*; a *reply* is what a
//! handler sends the server, from which the answer is made.
//!
//! # Glossary
//!
//! The request, in the order it is read:
//! - `h1::Head`: a parsed request head (`http::Request<()>`, its `Framing`,
//!   keep-alive, `expect: 100-continue`). `h1::Refusal`: why the parser
//!   refused a request, with the fixed answer written before closing.
//! - `h1::Framing`: how the request body is delimited (length or chunked);
//!   `h1::Decoder` undoes it from the read buffer, yielding `h1::Decoded`
//!   (data, need more, done).
//! - `conn::BodyIn`: the connection's side of a body still on the wire
//!   (decoder, sender to the handler, whether the framing broke).
//! - [`RequestBody`] (`body.rs`): the body as the handler reads it, whole
//!   (it came with its head) or an `IncomingBody` still arriving, fed by
//!   the connection one `BodyMsg` (data, end, error) at a time.
//! - [`Call`], [`RequestMeta`] (`dispatch.rs`): one handler invocation
//!   given to the [`Dispatch`], and what it may read besides the body.
//! - `stream::PullWindow`, `stream::Pulled`: flow control of a request body
//!   the handler streams itself (raw, multipart), and what each pull yields.
//!
//! The answer, in the order it is written:
//! - [`Reply`], [`ReplyBody`] (`answer.rs`): a handler's reply: a status and
//!   a JSON envelope, or a stream with the handler's headers.
//! - `answer::Body` (`answer.rs`): an answer's body as the connection writes
//!   it: whole bytes or a `ChunkStream`. `answer::AnswerHeaders`: the
//!   request id and CORS headers every answer carries.
//! - `stream::ChunkStream`, `stream::StreamWriter`, `stream::Credit`: a
//!   streamed answer's connection end, its writer's end, and the
//!   backpressure count between them.
//! - `h1::BodyOut`: how an answer's body goes on the wire (known length or
//!   streamed); `h1::HeadOut`: what `encode_head` decided (a body at all,
//!   chunked, keep-alive); `h1::Reuse`: whether the connection may carry
//!   another request.

#![forbid(unsafe_code)]

pub mod access;
mod answer;
mod body;
mod compress;
mod conn;
mod dispatch;
/// The HTTP/1.1 codec; public for the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub mod h1;
mod handler;
mod health;
pub mod metrics;
mod served;
mod server;
mod shed;
mod state;
pub mod stream;
/// The `tls` option as a rustls configuration.
pub mod tls;

pub use answer::{Reply, ReplyBody};
pub use body::RequestBody;
pub use dispatch::{Call, Dispatch, LoadGuard, RequestMeta};
pub use server::{bind, RunningServer};
pub use state::{metrics_shards, ServerState};
