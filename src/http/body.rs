//! The request body as the handler reads it: whole when it came with its
//! head (most requests), otherwise fed by the connection as it reads it.

#![forbid(unsafe_code)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::mpsc;

/// What the connection hands a request body still arriving.
pub(super) enum BodyMsg {
    Data(Bytes),
    End,
    Error,
}

/// A request body as the handler reads it: an [`http_body::Body`] of data
/// frames that fails (with an I/O error) when the body broke off.
pub struct RequestBody(Source);

enum Source {
    /// Came whole with its head; `None` once read, or when empty.
    Whole(Option<Bytes>),
    /// Still arriving from the connection.
    Incoming(IncomingBody),
}

impl RequestBody {
    /// No body at all.
    pub(super) fn empty() -> Self {
        RequestBody(Source::Whole(None))
    }

    /// A body that came whole with its head.
    pub(super) fn whole(bytes: Bytes) -> Self {
        RequestBody(Source::Whole(Some(bytes).filter(|b| !b.is_empty())))
    }

    /// A body the connection feeds through `rx`; `length` when declared.
    pub(super) fn incoming(rx: mpsc::Receiver<BodyMsg>, length: Option<u64>) -> Self {
        RequestBody(Source::Incoming(IncomingBody {
            rx,
            remaining: length,
            done: false,
        }))
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut self.get_mut().0 {
            Source::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Source::Incoming(body) => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Source::Whole(bytes) => bytes.is_none(),
            Source::Incoming(body) => body.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Source::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Source::Incoming(body) => body.size_hint(),
        }
    }
}

/// A request body read from the connection as the handler polls it. The
/// channel holds one chunk: the connection reads no further ahead.
struct IncomingBody {
    rx: mpsc::Receiver<BodyMsg>,
    remaining: Option<u64>,
    done: bool,
}

impl IncomingBody {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(BodyMsg::Data(data))) => {
                if let Some(n) = self.remaining.as_mut() {
                    *n = n.saturating_sub(data.len() as u64);
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Some(BodyMsg::End)) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(BodyMsg::Error)) | Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the request body broke off",
                ))))
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_whole_body_is_one_frame_then_the_end() {
        let mut body = RequestBody::whole(Bytes::from_static(b"{}"));
        assert_eq!(body.size_hint().exact(), Some(2));
        let frame = body.frame().await.and_then(|f| f.ok()?.into_data().ok());
        assert_eq!(frame.as_deref(), Some(&b"{}"[..]));
        assert!(body.is_end_stream());
        assert!(body.frame().await.is_none());
        assert!(RequestBody::whole(Bytes::new()).is_end_stream());
        assert!(RequestBody::empty().is_end_stream());
    }

    #[tokio::test]
    async fn an_incoming_body_that_breaks_off_fails_once() {
        let (tx, rx) = mpsc::channel(1);
        let mut body = RequestBody::incoming(rx, Some(5));
        assert!(tx
            .send(BodyMsg::Data(Bytes::from_static(b"ab")))
            .await
            .is_ok());
        assert!(matches!(body.frame().await, Some(Ok(_))));
        assert_eq!(body.size_hint().exact(), Some(3));
        drop(tx);
        assert!(matches!(body.frame().await, Some(Err(_))));
        assert!(body.is_end_stream());
        assert!(body.frame().await.is_none());
    }
}
