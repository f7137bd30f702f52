//! The request deadline (`ingress.request_timeout_ms`): a request not answered
//! within it gets a problem+json answer, never an empty one, and is counted in
//! `http_request_timeouts_total{kind}`. Which answer depends on whose time ran out:
//!
//! - **`408 request_timeout`** (`kind="body"`) when the request body had not fully
//!   arrived: the client is sending it too slowly (or stopped), waiting longer on our
//!   side would not help and retrying at once would not either. The answer carries
//!   `Connection: close`: the rest of the body is never read, so the connection
//!   cannot carry another request.
//! - **`503 unavailable`** with `Retry-After` (`kind="handler"`) when the whole body
//!   was read (or there was none) and the handler did not finish: the time went on
//!   our side (a dependency slow or down), and the same request may succeed later.
//!
//! The body is watched by wrapping it ([`Watched`]): it marks the request as
//! received when the body reports its end.

use crate::problem::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// The middleware: runs the rest of the stack within `timeout`.
pub async fn enforce(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let received = Arc::new(AtomicBool::new(body.is_end_stream()));
    let body = Body::new(Watched {
        inner: body,
        received: received.clone(),
    });
    match tokio::time::timeout(timeout, next.run(Request::from_parts(parts, body))).await {
        Ok(res) => res,
        Err(_) if !received.load(Ordering::Acquire) => {
            metrics::counter!("http_request_timeouts_total", "kind" => "body").increment(1);
            let mut res = ApiError::RequestTimeout {
                timeout_ms: millis(timeout),
            }
            .into_response();
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
        Err(_) => {
            metrics::counter!("http_request_timeouts_total", "kind" => "handler").increment(1);
            ApiError::Unavailable(anyhow::anyhow!(
                "the request was not answered within {} ms",
                millis(timeout)
            ))
            .into_response()
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A request body that sets `received` once it has been read to its end.
struct Watched {
    inner: Body,
    received: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.received.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
