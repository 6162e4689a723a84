use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::core::auth::AuthCheck;
use crate::core::config::ServerConfig;
use crate::core::cors::CorsPolicy;
use crate::core::exposure::Registry;
use crate::core::router::Router as PathRouter;

use super::dispatch::Dispatch;
use super::handler::handle;

/// hyper's per-connection read buffer cap: bounds request heads (Node allows
/// 16 KiB) and the size of each streamed body chunk.
const MAX_BUF: usize = 16 * 1024;

/// Everything a request needs, built once at start-up.
pub struct ServerState {
    pub router: PathRouter,
    pub cors: CorsPolicy,
    pub auth: AuthCheck,
    pub max_json_bytes: usize,
    pub disable_discovery: bool,
    /// Pass server-written JSON through the (non-JSON) user serializer.
    pub envelopes_in_js: bool,
    pub registry: Arc<ArcSwap<Registry>>,
    pub dispatch: Arc<dyn Dispatch>,
}

impl ServerState {
    pub fn new(
        cfg: &ServerConfig,
        registry: Arc<ArcSwap<Registry>>,
        dispatch: Arc<dyn Dispatch>,
    ) -> Self {
        ServerState {
            router: PathRouter::new(&cfg.base_path()),
            cors: CorsPolicy::new(cfg.cors.clone()),
            auth: AuthCheck::new(cfg.auth.as_ref()),
            max_json_bytes: cfg.max_json_bytes(),
            disable_discovery: cfg.disable_discovery,
            envelopes_in_js: cfg.custom_serializer,
            registry,
            dispatch,
        }
    }
}

/// A server accepting on its own tokio runtime.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    stop: watch::Sender<bool>,
    done: Option<oneshot::Receiver<()>>,
}

/// Binds synchronously (so address errors surface at once), then serves on a
/// fresh multi-threaded runtime.
pub fn bind(cfg: &ServerConfig, state: ServerState) -> std::io::Result<RunningServer> {
    // A (host, port) pair takes names, IPv4 and bare IPv6 addresses alike.
    let host = cfg.host().trim_start_matches('[').trim_end_matches(']');
    let std_listener = std::net::TcpListener::bind((host, cfg.port))?;
    std_listener.set_nonblocking(true)?;
    let local_addr = std_listener.local_addr()?;

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("runner-native-http");
    let workers = if cfg.worker_threads > 0 {
        cfg.worker_threads
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    };
    builder.worker_threads(workers);
    let runtime = builder.build()?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = oneshot::channel();
    let state = Arc::new(state);
    let listener = {
        let _guard = runtime.enter();
        TcpListener::from_std(std_listener)?
    };
    runtime.spawn(async move {
        accept_loop(listener, state, stop_rx).await;
        let _ = done_tx.send(());
    });
    Ok(RunningServer {
        local_addr,
        runtime: Some(runtime),
        stop: stop_tx,
        done: Some(done_rx),
    })
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<ServerState>,
    mut stop: watch::Receiver<bool>,
) {
    let app = Router::new().fallback(handle).with_state(state);
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive(true)
        .max_buf_size(MAX_BUF);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(app.clone());
                let conn = http.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

impl RunningServer {
    /// The runtime the server runs on, for tasks that serve it.
    pub fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.as_ref().map(|rt| rt.handle().clone())
    }

    /// Stops accepting and waits (blocking this thread) until in-flight
    /// requests have been answered or `grace` has passed, then stops the
    /// runtime, dropping whatever is still running.
    pub fn shutdown_graceful(&mut self, grace: Duration) {
        let _ = self.stop.send(true);
        if let (Some(done), Some(rt)) = (self.done.take(), self.runtime.as_ref()) {
            let _ = rt.block_on(async { tokio::time::timeout(grace, done).await });
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_millis(200));
        }
    }

    /// Stops at once, abandoning in-flight requests.
    pub fn shutdown_now(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}
