//! The benchmark's Rust-only peer: the same protocol core and HTTP server,
//! with handlers written in Rust instead of JavaScript. The gap between this
//! and the addon is what crossing into JavaScript costs.
//!
//! `cargo run --release --example rust_alone -- --port 7070`

#![forbid(unsafe_code)]

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::BodyExt;
use runner_native::core::config::{AuthConfig, ServerConfig};
use runner_native::core::exposure::{Kind, Registry};
use runner_native::http::{bind, Call, Dispatch, Reply, ReplyBody, RequestMeta, ServerState};
use serde_json::Value;
use tokio::sync::oneshot;

const ADD: u32 = 0;
const ECHO: u32 = 1;
const UPLOAD: u32 = 2;

struct RustHandlers;

fn input_of(body: &[u8]) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    Some(match value {
        Value::Object(mut map) if map.contains_key("input") => {
            map.remove("input").unwrap_or(Value::Null)
        }
        other => other,
    })
}

fn answer(call: &Call) -> Reply {
    let invalid = || Reply {
        status: 400,
        body: ReplyBody::Json(Bytes::from_static(
            br#"{"ok":false,"error":{"message":"Invalid JSON body","code":"INVALID_JSON"}}"#,
        )),
    };
    if !call.body.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(&call.body).is_err()
    {
        return invalid();
    }
    let body = match (call.kind, call.handler) {
        (Kind::Task, ADD) => {
            let input = input_of(&call.body).unwrap_or(Value::Null);
            let num = |k: &str| input.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            let sum = num("a") + num("b");
            let sum = if sum.fract() == 0.0 && sum.abs() < 9e15 {
                Value::from(sum as i64)
            } else {
                Value::from(sum)
            };
            format!(r#"{{"ok":true,"result":{{"sum":{sum}}}}}"#)
        }
        (Kind::Task, ECHO) => match input_of(&call.body) {
            Some(v) => format!(r#"{{"ok":true,"result":{v}}}"#),
            None => r#"{"ok":true}"#.to_string(),
        },
        _ => r#"{"ok":true}"#.to_string(),
    };
    Reply {
        status: 200,
        body: ReplyBody::Json(Bytes::from(body)),
    }
}

impl Dispatch for RustHandlers {
    fn submit(&self, mut call: Call) -> u64 {
        if let Some(mut body) = call.body_stream.take() {
            // Raw upload: stream the body and count it.
            tokio::spawn(async move {
                let mut bytes = 0usize;
                while let Some(Ok(frame)) = body.frame().await {
                    if let Ok(data) = frame.into_data() {
                        bytes += data.len();
                    }
                }
                let text = format!(r#"{{"ok":true,"result":{{"bytes":{bytes}}}}}"#);
                let _ = call.reply.send(Reply {
                    status: 200,
                    body: ReplyBody::Json(Bytes::from(text)),
                });
            });
            return 0;
        }
        let reply = answer(&call);
        let _ = call.reply.send(reply);
        0
    }
    fn abort(&self, _ticket: u64) {}
    fn resolve_origin(&self, _origin: Option<String>, reply: oneshot::Sender<Option<String>>) {
        let _ = reply.send(None);
    }
    fn serialize(&self, json: String, reply: oneshot::Sender<Option<String>>) {
        let _ = reply.send(Some(json));
    }
    fn auth_failed(&self, _record: String) {}
    fn validate_auth(&self, _meta: Arc<RequestMeta>, reply: oneshot::Sender<bool>) {
        let _ = reply.send(false);
    }
}

fn main() -> std::io::Result<()> {
    let mut port = 7070u16;
    let mut threads = 0usize;
    let mut config = String::from("{}");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or(port),
            "--threads" => threads = args.next().and_then(|p| p.parse().ok()).unwrap_or(threads),
            // More configuration as the wrapper's JSON, e.g. '{"maxInFlight":1024}'.
            "--config" => config = args.next().unwrap_or(config),
            _ => {}
        }
    }
    let cfg = ServerConfig {
        port,
        worker_threads: threads,
        auth: Some(AuthConfig {
            tokens: Some(vec!["secret".into()]),
            ..Default::default()
        }),
        ..ServerConfig::from_json(&config).map_err(std::io::Error::other)?
    };
    let registry = Registry::default()
        .with_task("bench.add", ADD)
        .with_task("bench.echo", ECHO)
        .with_task("bench.upload", UPLOAD)
        .with_event("bench.ping", 0);
    let state = ServerState::new(
        &cfg,
        Arc::new(ArcSwap::from_pointee(registry)),
        Arc::new(RustHandlers),
    );
    let server = bind(&cfg, state)?;
    println!("{{\"port\":{}}}", server.local_addr.port());
    loop {
        std::thread::park();
    }
}
