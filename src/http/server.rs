use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::core::auth::AuthCheck;
use crate::core::config::ServerConfig;
use crate::core::cors::CorsPolicy;
use crate::core::exposure::Registry;
use crate::core::router::Router as PathRouter;

use super::conn;
use super::dispatch::Dispatch;

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
    // Every connection holds a sender; when all are gone, so are they.
    let (live, mut all_closed) = mpsc::channel::<()>(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(conn::serve(stream, Arc::clone(&state), stop.clone(), live.clone()));
                }
                // Out of descriptors or similar: let connections close
                // before trying again.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    drop(live);
    // Idle connections close at once; busy ones after their answer.
    let _ = all_closed.recv().await;
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
