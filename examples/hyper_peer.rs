//! A plain hyper 1 HTTP/1.1 server, the second peer of the wire-level
//! differential tests (`__test__/wire.*.test.js`): they send the same raw
//! bytes to it, to Node's `http` server and to this project's server, and
//! compare which requests each ran.
//!
//! Every request whose body arrives whole is recorded ("ran") under the
//! client's port and answered `200`. `GET /__peer/log?port=N` answers the
//! records of the connection from port N as JSON and forgets them.
//!
//! `cargo run --example hyper_peer` prints `listening <port>`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

type Log = Arc<Mutex<HashMap<u16, Vec<serde_json::Value>>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn serve(
    req: Request<Incoming>,
    port: u16,
    log: Log,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req.uri().to_string();
    if let Some(query) = target.strip_prefix("/__peer/log?port=") {
        let of: u16 = query.parse().unwrap_or(0);
        let records = log.lock().map(|mut l| l.remove(&of)).unwrap_or_default();
        let text = serde_json::Value::from(records.unwrap_or_default()).to_string();
        return Ok(Response::new(Full::new(Bytes::from(text))));
    }
    let method = req.method().to_string();
    let content_type = req
        .headers()
        .get("content-type")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match req.into_body().collect().await {
        Ok(body) => {
            let record = serde_json::json!({
                "method": method,
                "target": target,
                "contentType": content_type,
                "body": hex(&body.to_bytes()),
            });
            if let Ok(mut l) = log.lock() {
                l.entry(port).or_default().push(record);
            }
            Ok(Response::new(Full::new(Bytes::from_static(b"ran"))))
        }
        Err(_) => {
            let mut res = Response::new(Full::new(Bytes::from_static(b"body error")));
            *res.status_mut() = hyper::StatusCode::BAD_REQUEST;
            Ok(res)
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?.port());
    let log: Log = Arc::default();
    loop {
        let (stream, addr) = listener.accept().await?;
        let log = Arc::clone(&log);
        let port = addr.port();
        // A new connection from a port starts that port's record afresh (ports are reused).
        if let Ok(mut l) = log.lock() {
            l.remove(&port);
        }
        tokio::spawn(async move {
            let service = service_fn(move |req| serve(req, port, Arc::clone(&log)));
            // hyper's defaults: the parser settings under test.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
