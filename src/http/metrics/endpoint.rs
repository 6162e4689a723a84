//! The scrape endpoint: `GET {path}` answered in Rust with the Prometheus
//! text, on the server's port (outside its base path) or on a port of its
//! own, where nothing else is served.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};

use super::text::CONTENT_TYPE;
use super::Metrics;
use crate::http::answer::Body;

/// Where the metrics are served.
#[derive(Debug, Clone)]
pub struct MetricsEndpoint {
    /// The pathname scraped, e.g. `/metrics` (the query is ignored).
    pub path: String,
    /// On the metrics port: anything but `path` is a 404.
    pub only: bool,
}

impl MetricsEndpoint {
    /// The answer when this request is the endpoint's (or, on the metrics
    /// port, anything else); `None`: the request is the server's.
    pub fn answer(
        &self,
        method: &Method,
        pathname: &str,
        metrics: &Metrics,
    ) -> Option<Response<Body>> {
        if pathname != self.path {
            return self.only.then(|| {
                text(
                    StatusCode::NOT_FOUND,
                    "text/plain; charset=utf-8",
                    "Not Found\n".into(),
                )
            });
        }
        if method != Method::GET && method != Method::HEAD {
            let mut res = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "Method Not Allowed\n".into(),
            );
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Some(res);
        }
        Some(text(StatusCode::OK, CONTENT_TYPE, metrics.render()))
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let len = body.len();
    let mut res = Response::new(Body::Full(Bytes::from(body)));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(only: bool) -> MetricsEndpoint {
        MetricsEndpoint {
            path: "/metrics".into(),
            only,
        }
    }

    #[test]
    fn the_path_is_answered_with_the_text_and_other_methods_with_405() {
        let m = Metrics::new(1);
        let ok = endpoint(false).answer(&Method::GET, "/metrics", &m);
        let ok = ok.expect("answered");
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let post = endpoint(false).answer(&Method::POST, "/metrics", &m);
        let post = post.expect("answered");
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[header::ALLOW], "GET, HEAD");
    }

    #[test]
    fn other_paths_are_the_servers_unless_on_the_metrics_port() {
        let m = Metrics::new(1);
        assert!(endpoint(false)
            .answer(&Method::GET, "/__runner/discovery", &m)
            .is_none());
        let other = endpoint(true).answer(&Method::GET, "/__runner/discovery", &m);
        assert_eq!(other.map(|r| r.status()), Some(StatusCode::NOT_FOUND));
    }
}
