//! Streamed bodies in both directions, with backpressure.
//!
//! Request bodies the server does not read itself (raw and multipart
//! uploads) are pulled: the JS side asks for the next chunk, a task reads one
//! frame and hands it over. Streamed answers are pushed: the JS side writes
//! chunks, the HTTP layer takes them as the socket accepts them, and a
//! credit counter tells the writer to pause above a high-water mark and
//! resume below a low one.

#![forbid(unsafe_code)]

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::body::RequestBody;
use super::compress::Encoding;

/// Bytes a writer may queue ahead of the socket before it is told to pause.
pub const HIGH_WATER: usize = 256 * 1024;
/// Queue size under which a paused writer is told to resume.
pub const LOW_WATER: usize = 64 * 1024;

/// What a request-body pull yields.
pub enum Pulled {
    Chunk(Bytes),
    End,
    Error,
}

/// How far a request body may be read ahead of its reader: two body reads,
/// so one is read while the reader works through the other.
pub const READ_AHEAD: usize = 128 * 1024;

/// Flow control for one streamed request body: the pump reads ahead until
/// `READ_AHEAD` bytes wait unread, then sleeps until the reader asks for
/// more or lets go.
#[derive(Default)]
pub struct PullWindow {
    unread: AtomicUsize,
    closed: AtomicBool,
    wake: tokio::sync::Notify,
}

impl PullWindow {
    /// The reader consumed what it had and wants more.
    pub fn want_more(&self) {
        self.unread.store(0, Ordering::Release);
        self.wake.notify_one();
    }

    /// The reader is gone; the rest of the body is discarded.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// Reads a body ahead of its reader within the window until it ends, the
/// reader lets go, or the client goes away.
pub async fn pull_request_body<F>(mut body: RequestBody, window: Arc<PullWindow>, deliver: F)
where
    F: Fn(Pulled) + Send + 'static,
{
    loop {
        while !window.closed.load(Ordering::Acquire)
            && window.unread.load(Ordering::Acquire) >= READ_AHEAD
        {
            window.wake.notified().await;
        }
        if window.closed.load(Ordering::Acquire) {
            break;
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        window.unread.fetch_add(data.len(), Ordering::AcqRel);
                        deliver(Pulled::Chunk(data));
                    }
                }
            }
            Some(Err(_)) => {
                deliver(Pulled::Error);
                return;
            }
            None => {
                deliver(Pulled::End);
                return;
            }
        }
    }
    // The handler let go of the body before its end: read and discard the
    // rest so the client, still sending, gets its answer.
    let discard = async { while let Some(Ok(_)) = body.frame().await {} };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), discard).await;
}

/// Shared between the writer (JS thread) and the body (HTTP side).
#[derive(Default)]
pub struct Credit {
    queued: AtomicUsize,
    writer_paused: AtomicBool,
}

impl Credit {
    /// Counts a queued chunk; returns whether the writer may go on.
    pub fn queue(&self, len: usize) -> bool {
        let queued = self.queued.fetch_add(len, Ordering::AcqRel) + len;
        if queued <= HIGH_WATER {
            return true;
        }
        self.writer_paused.store(true, Ordering::Release);
        // The body may have drained below the mark in between: re-check so a
        // resume is never lost.
        if self.queued.load(Ordering::Acquire) <= LOW_WATER
            && self.writer_paused.swap(false, Ordering::AcqRel)
        {
            return true;
        }
        false
    }

    /// Counts a chunk taken by the socket; returns whether a paused writer
    /// must now be resumed.
    fn taken(&self, len: usize) -> bool {
        let queued = self
            .queued
            .fetch_sub(len, Ordering::AcqRel)
            .saturating_sub(len);
        queued <= LOW_WATER && self.writer_paused.swap(false, Ordering::AcqRel)
    }
}

/// What a streamed answer's writer queues for the connection.
pub enum Chunk {
    Data(Bytes),
    End,
}

/// The writer's end of a streamed answer.
pub struct StreamWriter {
    tx: mpsc::UnboundedSender<Chunk>,
    credit: Arc<Credit>,
}

impl StreamWriter {
    /// Queues a chunk; `Some(true)` to go on, `Some(false)` to pause until
    /// resumed, `None` when the client is gone.
    pub fn write(&self, data: Bytes) -> Option<bool> {
        let len = data.len();
        self.tx.send(Chunk::Data(data)).ok()?;
        Some(self.credit.queue(len))
    }

    pub fn end(self) {
        let _ = self.tx.send(Chunk::End);
    }
}

/// The HTTP side of a streamed answer.
pub struct ChunkStream {
    rx: mpsc::UnboundedReceiver<Chunk>,
    credit: Arc<Credit>,
    on_resume: Box<dyn Fn() + Send + Sync>,
    on_gone: Option<Box<dyn FnOnce() + Send + Sync>>,
    /// Set when the answer is compressed on the way out (`compress.rs`).
    pub(super) encoding: Option<Encoding>,
}

/// A streamed answer's two ends. `on_resume` runs when a paused writer may
/// write again; `on_gone` when the answer is dropped before its end (the
/// client went away).
pub fn chunk_stream(
    on_resume: Box<dyn Fn() + Send + Sync>,
    on_gone: Box<dyn FnOnce() + Send + Sync>,
) -> (StreamWriter, ChunkStream) {
    let (tx, rx) = mpsc::unbounded_channel();
    let credit = Arc::new(Credit::default());
    (
        StreamWriter {
            tx,
            credit: credit.clone(),
        },
        ChunkStream {
            rx,
            credit,
            on_resume,
            on_gone: Some(on_gone),
            encoding: None,
        },
    )
}

impl http_body::Body for ChunkStream {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let next = if self.encoding.is_some() {
            self.poll_encoded(cx)
        } else {
            self.poll_chunk(cx)
        };
        next.map(|data| data.map(|data| Ok(Frame::data(data))))
    }
}

impl ChunkStream {
    /// The next chunk the writer queued; `None` at the end.
    pub(super) fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Chunk::Data(data))) => {
                if self.credit.taken(data.len()) {
                    (self.on_resume)();
                }
                Poll::Ready(Some(data))
            }
            // The end, or a writer that vanished: either way the answer ends
            // cleanly, as the reference ends it when its source fails.
            Poll::Ready(Some(Chunk::End)) | Poll::Ready(None) => {
                self.on_gone = None;
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for ChunkStream {
    fn drop(&mut self) {
        if let Some(gone) = self.on_gone.take() {
            gone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_pauses_above_high_water_and_resumes_below_low_water() {
        let credit = Credit::default();
        assert!(credit.queue(HIGH_WATER));
        assert!(!credit.queue(1));
        assert!(!credit.taken(HIGH_WATER - LOW_WATER));
        assert!(credit.taken(1));
        // Resumed once only.
        assert!(!credit.taken(0));
    }

    #[tokio::test]
    async fn chunks_flow_in_order_and_end_cleanly() {
        let gone = Arc::new(AtomicBool::new(false));
        let flag = gone.clone();
        let (writer, mut stream) = chunk_stream(
            Box::new(|| {}),
            Box::new(move || flag.store(true, Ordering::SeqCst)),
        );
        assert_eq!(writer.write(Bytes::from_static(b"ab")), Some(true));
        assert_eq!(writer.write(Bytes::from_static(b"c")), Some(true));
        writer.end();
        let collected = (&mut stream).collect().await.map(|c| c.to_bytes());
        assert_eq!(collected.ok().as_deref(), Some(&b"abc"[..]));
        drop(stream);
        assert!(
            !gone.load(Ordering::SeqCst),
            "an ended answer is not a client gone away"
        );
    }

    #[test]
    fn dropping_an_unfinished_answer_reports_the_client_gone() {
        let gone = Arc::new(AtomicBool::new(false));
        let flag = gone.clone();
        let (writer, stream) = chunk_stream(
            Box::new(|| {}),
            Box::new(move || flag.store(true, Ordering::SeqCst)),
        );
        drop(stream);
        assert!(gone.load(Ordering::SeqCst));
        assert_eq!(writer.write(Bytes::from_static(b"x")), None);
    }
}
