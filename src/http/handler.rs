#![forbid(unsafe_code)]

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderName, HeaderValue, Method, Response};
use http_body_util::BodyExt;
use tokio::sync::oneshot;

use crate::core::auth::AuthOutcome;
use crate::core::body::{body_kind, declared_too_large, BodyKind};
use crate::core::cors::{CorsHeader, OriginDecision};
use crate::core::envelope::{discovery_body, ProtocolError};
use crate::core::exposure::Kind;
use crate::core::headers::node_header;
use crate::core::request_id;
use crate::core::router::{pathname_of, Route};

use super::answer::{self, AnswerHeaders, Body};
use super::answer::{Reply, ReplyBody};
use super::body::RequestBody;
use super::dispatch::{Call, RequestMeta};
use super::health;
use super::metrics::{KindSlot, RequestKind};
use super::state::ServerState;

const REQUEST_ID: HeaderName = HeaderName::from_static(request_id::REQUEST_ID_HEADER);

/// Per-request context the answer needs whatever happens.
struct Exchange {
    cors: Vec<CorsHeader>,
    /// The request id, as the answer's header value (ASCII by construction).
    request_id: Option<HeaderValue>,
}

impl Exchange {
    /// The request id as text ("" outside the base path, where there is none).
    fn id(&self) -> &str {
        self.request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn headers(&self) -> AnswerHeaders<'_> {
        AnswerHeaders {
            request_id: self.request_id.as_ref(),
            cors: &self.cors,
        }
    }

    /// A JSON answer the server writes itself, passed through the user's
    /// serializer when it is not plain JSON (as the reference does).
    async fn json(&self, state: &ServerState, status: u16, body: String) -> Response<Body> {
        let body = if state.envelopes_in_js {
            let (tx, rx) = oneshot::channel();
            state.dispatch.serialize(body.clone(), tx);
            rx.await.ok().flatten().unwrap_or(body)
        } else {
            body
        };
        answer::json(status, Bytes::from(body), &self.headers())
    }

    async fn error(&self, state: &ServerState, err: &ProtocolError) -> Response<Body> {
        self.json(state, err.status(), err.body()).await
    }
}

enum BodyError {
    TooLarge,
    Aborted,
}

async fn origin_decision(state: &ServerState, origin: Option<&str>) -> OriginDecision {
    let dynamic = if state.cors.needs_dynamic_origin() {
        let (tx, rx) = oneshot::channel();
        state
            .dispatch
            .resolve_origin(origin.map(str::to_string), tx);
        rx.await.ok().flatten()
    } else {
        None
    };
    state.cors.resolve_origin(origin, dynamic)
}

/// The origin decision without asking JS (a shed call's).
#[cold]
#[inline(never)]
fn static_origin(state: &ServerState, origin: Option<&str>) -> OriginDecision {
    state.cors.resolve_origin(origin, None)
}

/// The one entry point: every request under any path comes here. A body
/// left unread is drained by the connection after the answer. What the
/// request was routed as is noted in `noted`, for the metrics.
pub async fn handle(
    state: &ServerState,
    parts: http::request::Parts,
    mut body: RequestBody,
    noted: &KindSlot,
) -> Response<Body> {
    let target = match parts.uri.path_and_query() {
        Some(pq) if parts.uri.scheme().is_none() => pq.as_str().to_string(),
        _ => parts.uri.to_string(),
    };
    let pathname = pathname_of(&target);
    if let Some(endpoint) = &state.metrics_endpoint {
        if let Some(answer) = endpoint.answer(&parts.method, &pathname, &state.metrics) {
            return answer;
        }
    }
    let route = state.router.route(&pathname);
    if route == Route::Outside {
        if let Some((probes, probe)) = health::probe_at(state, &pathname) {
            // Boxed: a rare path, kept out of every request's future.
            return Box::pin(health::answer(state, probes, &parts.method, probe)).await;
        }
    }
    let origin = node_header(&parts.headers, &header::ORIGIN);

    if parts.method == Method::OPTIONS && route != Route::Outside {
        let decision = origin_decision(state, origin.as_deref()).await;
        let requested = node_header(&parts.headers, &header::ACCESS_CONTROL_REQUEST_HEADERS);
        let mut cors = Vec::with_capacity(5);
        state
            .cors
            .preflight_headers(&decision, requested.as_deref(), &mut cors);
        return answer::preflight(&cors);
    }

    // Past `maxInFlight` a call is shed before anything that could wake JS
    // (a dynamic CORS origin, which the 503 then goes without; auth
    // validators) or read its body.
    let shed = matches!(route, Route::Task(_) | Route::Event(_))
        && parts.method == Method::POST
        && state.in_flight.is_full();
    let decision = if shed {
        static_origin(state, origin.as_deref())
    } else {
        origin_decision(state, origin.as_deref()).await
    };
    let mut cors = Vec::with_capacity(4);
    state.cors.actual_headers(&decision, &mut cors);

    if route == Route::Outside {
        // Outside the base the reference answers without the serializer.
        let ex = Exchange {
            cors,
            request_id: None,
        };
        return answer::error(&ProtocolError::NotFound, &ex.headers());
    }

    let sent = node_header(&parts.headers, &REQUEST_ID);
    let mut fresh = [0u8; request_id::FRESH_LEN];
    let request_id = match request_id::normalize(sent.as_deref()) {
        Some(id) => id,
        None => request_id::fresh_into(&mut fresh),
    };
    let ex = Exchange {
        cors,
        request_id: HeaderValue::from_str(request_id).ok(),
    };
    drop(sent);
    // Before the shedding: a shed call counts as the call it was.
    noted.set(match route {
        Route::Task(_) => RequestKind::Task,
        Route::Event(_) => RequestKind::Event,
        Route::Discovery => RequestKind::Discovery,
        Route::UnknownUnderBase | Route::Outside => RequestKind::Other,
    });
    if shed {
        return state.in_flight.overloaded(&ex.headers());
    }

    let (kind, id) = match route {
        Route::Task(id) => (Kind::Task, id),
        Route::Event(id) => (Kind::Event, id),
        Route::Discovery => {
            if state.disable_discovery {
                return ex.error(state, &ProtocolError::NotFound).await;
            }
            if parts.method != Method::GET {
                return ex.error(state, &ProtocolError::MethodNotAllowed).await;
            }
            if let Err(e) = authenticate(state, &parts, &pathname, &target, &ex).await {
                return ex.error(state, &e).await;
            }
            let text = {
                let registry = state.registry.load();
                let (enabled, tasks, events) = registry.discovery();
                discovery_body(enabled, tasks, events)
            };
            return ex.json(state, 200, text).await;
        }
        Route::UnknownUnderBase | Route::Outside => {
            return ex.error(state, &ProtocolError::NotFound).await
        }
    };

    if parts.method != Method::POST {
        return ex.error(state, &ProtocolError::MethodNotAllowed).await;
    }
    if let Err(e) = authenticate(state, &parts, &pathname, &target, &ex).await {
        return ex.error(state, &e).await;
    }
    let handler = match state.registry.load().resolve(kind, &id) {
        Ok(h) => h,
        Err(e) => return ex.error(state, &e).await,
    };

    let body_kind = match kind {
        Kind::Task => body_kind(node_header(&parts.headers, &header::CONTENT_TYPE).as_deref()),
        Kind::Event => BodyKind::Json,
    };
    let bytes = match body_kind {
        BodyKind::Json => {
            let declared = parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok());
            if declared_too_large(declared, state.max_json_bytes) {
                return ex.error(state, &ProtocolError::PayloadTooLarge).await;
            }
            match read_limited(&mut body, state.max_json_bytes).await {
                Ok(b) => b,
                Err(BodyError::TooLarge) => {
                    return ex.error(state, &ProtocolError::PayloadTooLarge).await
                }
                Err(BodyError::Aborted) => {
                    return ex.error(state, &ProtocolError::RequestAborted).await
                }
            }
        }
        // Raw bodies and uploads are streamed to the handler, not read here.
        BodyKind::Raw | BodyKind::Multipart => Bytes::new(),
    };
    let body_stream = match body_kind {
        BodyKind::Json => None,
        BodyKind::Raw | BodyKind::Multipart => Some(body),
    };

    let meta = Arc::new(RequestMeta {
        method: parts.method.clone(),
        url: target,
        path: pathname,
        request_id: ex.id().to_string(),
        headers: parts.headers,
    });
    // Held until the reply comes or the client goes away.
    let Some(_admitted) = state.in_flight.admit() else {
        return state.in_flight.overloaded(&ex.headers());
    };
    let (tx, rx) = oneshot::channel();
    let _in_flight = state.metrics.call();
    let json_text = body_kind == BodyKind::Json && state.json_calls.reads_as_json(&bytes);
    let ticket = state.dispatch.submit(Call {
        kind,
        handler,
        body_kind,
        json_text,
        body: bytes,
        body_stream,
        meta,
        reply: tx,
        load: None,
    });
    let mut guard = AbortOnDrop {
        state,
        ticket,
        armed: true,
    };
    let reply = rx.await;
    guard.armed = false;
    match reply {
        Ok(Reply {
            status,
            body: ReplyBody::Json(bytes),
        }) => answer::json(status, bytes, &ex.headers()),
        Ok(Reply {
            status,
            body:
                ReplyBody::Stream {
                    headers,
                    body,
                    bare,
                },
        }) => answer::stream(status, headers, body, bare, &ex.headers()),
        Err(_) => ex.error(state, &ProtocolError::InternalError).await,
    }
}

/// Tells the dispatcher when the client goes away (the connection drops the
/// request future) before the handler answered.
struct AbortOnDrop<'a> {
    state: &'a ServerState,
    ticket: u64,
    armed: bool,
}

impl Drop for AbortOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.state.dispatch.abort(self.ticket);
        }
    }
}

/// Checks the request's credentials; a refusal is also reported for the
/// audit log, as the reference logs `exposure.auth.failure`.
async fn authenticate(
    state: &ServerState,
    parts: &http::request::Parts,
    pathname: &str,
    target: &str,
    ex: &Exchange,
) -> Result<(), ProtocolError> {
    let meta = || RequestMeta {
        method: parts.method.clone(),
        url: target.to_string(),
        path: pathname.to_string(),
        request_id: ex.id().to_string(),
        headers: parts.headers.clone(),
    };
    let outcome = check_credentials(state, &parts.headers, meta).await;
    if let Err(e) = &outcome {
        let record = serde_json::json!({
            "requestId": ex.request_id.as_ref().map(|_| ex.id()),
            "method": parts.method.as_str(),
            "path": pathname,
            "status": e.status(),
            "code": e.code(),
        });
        state.dispatch.auth_failed(record.to_string());
    }
    outcome
}

/// The token, then (when no token matched) the `validate` hooks in JS, which
/// see the request's metadata (`meta`, built only then).
async fn check_credentials(
    state: &ServerState,
    headers: &http::HeaderMap,
    meta: impl FnOnce() -> RequestMeta,
) -> Result<(), ProtocolError> {
    let provided = state
        .auth
        .header_name()
        .and_then(|name| node_header(headers, name))
        .unwrap_or_default();
    match state.auth.check(&provided) {
        AuthOutcome::Allowed => Ok(()),
        AuthOutcome::Unauthorized => Err(ProtocolError::Unauthorized),
        AuthOutcome::NotConfigured => Err(ProtocolError::AuthNotConfigured),
        AuthOutcome::AskValidators => {
            let (tx, rx) = oneshot::channel();
            state.dispatch.validate_auth(Arc::new(meta()), tx);
            if rx.await.unwrap_or(false) {
                Ok(())
            } else {
                Err(ProtocolError::Unauthorized)
            }
        }
    }
}

/// Reads a body up to `max` bytes, never buffering past the limit.
async fn read_limited(body: &mut RequestBody, max: usize) -> Result<Bytes, BodyError> {
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Aborted)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len();
        if total > max {
            return Err(BodyError::TooLarge);
        }
        match (&mut first, &mut rest) {
            (None, _) => first = Some(data),
            (Some(f), None) => {
                let mut buf = BytesMut::with_capacity(total.max(f.len() * 2));
                buf.extend_from_slice(f);
                buf.extend_from_slice(&data);
                rest = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    Ok(match rest {
        Some(buf) => buf.freeze(),
        None => first.unwrap_or_default(),
    })
}
