//! Binding and accepting: the runtime a server runs on, the accept loop,
//! and stopping (gracefully or at once).

#![forbid(unsafe_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::core::config::ServerConfig;

use super::conn;
use super::shed::{Admission, ConnSlot};
use super::state::{worker_count, ServerState};

/// A server accepting on its own tokio runtime.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    /// Where the metrics port listens, when it has a port of its own.
    pub metrics_addr: Option<SocketAddr>,
    runtime: Option<Serving>,
    stop: watch::Sender<bool>,
    done: Option<std_mpsc::Receiver<()>>,
}

/// The runtime a server runs on. One worker thread runs a current-thread
/// runtime (no work-stealing bookkeeping on every wake-up); more run a
/// multi-threaded one.
enum Serving {
    Multi(tokio::runtime::Runtime),
    Single {
        handle: tokio::runtime::Handle,
        /// Tells the worker thread to stop: `true` waits up to 200 ms for
        /// what still runs, `false` drops it at once.
        quit: oneshot::Sender<bool>,
        thread: std::thread::JoinHandle<()>,
    },
}

impl Serving {
    fn handle(&self) -> tokio::runtime::Handle {
        match self {
            Serving::Multi(rt) => rt.handle().clone(),
            Serving::Single { handle, .. } => handle.clone(),
        }
    }

    fn stop(self, wait: bool) {
        match self {
            Serving::Multi(rt) => shut_down(rt, wait),
            Serving::Single { quit, thread, .. } => {
                let _ = quit.send(wait);
                if wait {
                    let _ = thread.join();
                }
            }
        }
    }
}

/// Drops what still runs on a runtime: after up to 200 ms, or at once.
fn shut_down(runtime: tokio::runtime::Runtime, wait: bool) {
    if wait {
        runtime.shutdown_timeout(Duration::from_millis(200));
    } else {
        runtime.shutdown_background();
    }
}

fn start_runtime(workers: usize) -> std::io::Result<Serving> {
    const NAME: &str = "runner-native-http";
    if workers > 1 {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name(NAME)
            .worker_threads(workers)
            .build()?;
        return Ok(Serving::Multi(runtime));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name(NAME)
        .build()?;
    let handle = runtime.handle().clone();
    let (quit, quit_rx) = oneshot::channel::<bool>();
    let thread = std::thread::Builder::new()
        .name(NAME.into())
        .spawn(move || {
            // Dropped sender (server dropped without a stop): stop at once.
            let wait = runtime.block_on(quit_rx).unwrap_or(false);
            shut_down(runtime, wait);
        })?;
    Ok(Serving::Single {
        handle,
        quit,
        thread,
    })
}

/// Binds synchronously (so address errors surface at once), then serves on a
/// fresh runtime.
pub fn bind(cfg: &ServerConfig, state: ServerState) -> std::io::Result<RunningServer> {
    // A (host, port) pair takes names, IPv4 and bare IPv6 addresses alike.
    let host = cfg.host().trim_start_matches('[').trim_end_matches(']');
    let std_listener = if cfg.reuse_port {
        bind_reusing_port(host, cfg.port)?
    } else {
        std::net::TcpListener::bind((host, cfg.port))?
    };
    std_listener.set_nonblocking(true)?;
    let local_addr = std_listener.local_addr()?;
    let metrics_port = match (state.for_metrics_port(cfg), &cfg.metrics) {
        (Some(metrics_state), Some(m)) => {
            let port = m.port.unwrap_or(0);
            let listener = std::net::TcpListener::bind((host, port)).map_err(|e| {
                // Said so: the error is otherwise reported on the main port.
                std::io::Error::new(e.kind(), format!("the metrics port {port}: {e}"))
            })?;
            listener.set_nonblocking(true)?;
            Some((listener, metrics_state))
        }
        _ => None,
    };
    let metrics_addr = match &metrics_port {
        Some((listener, _)) => Some(listener.local_addr()?),
        None => None,
    };

    let runtime = start_runtime(worker_count(cfg))?;
    let handle = runtime.handle();

    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = std_mpsc::channel();
    let state = Arc::new(state);
    let listeners = {
        let _guard = handle.enter();
        TcpListener::from_std(std_listener).and_then(|main| {
            let metrics = metrics_port
                .map(|(l, s)| TcpListener::from_std(l).map(|l| (l, s)))
                .transpose()?;
            Ok((main, metrics))
        })
    };
    let (listener, metrics_listener) = match listeners {
        Ok(listeners) => listeners,
        Err(e) => {
            runtime.stop(false);
            return Err(e);
        }
    };
    if let Some((listener, metrics_state)) = metrics_listener {
        // Stops with the server; the main loop's end is what `close` waits for.
        handle.spawn(accept_loop(
            listener,
            Arc::new(metrics_state),
            stop_rx.clone(),
        ));
    }
    handle.spawn(async move {
        accept_loop(listener, state, stop_rx).await;
        let _ = done_tx.send(());
    });
    Ok(RunningServer {
        local_addr,
        metrics_addr,
        runtime: Some(runtime),
        stop: stop_tx,
        done: Some(done_rx),
    })
}

/// A listener on `host:port` with `SO_REUSEPORT` (and `SO_REUSEADDR`, as
/// std sets it), so that other processes may bind the same port: the first
/// address the host resolves to that binds, as `TcpListener::bind` does.
fn bind_reusing_port(host: &str, port: u16) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::net::ToSocketAddrs;
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        let bound = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .and_then(|socket| {
                socket.set_reuse_address(true)?;
                socket.set_reuse_port(true)?;
                socket.bind(&addr.into())?;
                // Node's default backlog.
                socket.listen(511)?;
                Ok(socket)
            });
        match bound {
            Ok(socket) => return Ok(socket.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
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
                    let slot = match state.connections.admit() {
                        // Past `maxConnections`: closed at once, as Node's
                        // `server.maxConnections` does.
                        Admission::Refused => continue,
                        Admission::Unlimited => None,
                        Admission::Slot(slot) => Some(slot),
                    };
                    let _ = stream.set_nodelay(true);
                    match &state.tls {
                        None => spawn_conn(conn::serve(stream, Arc::clone(&state), stop.clone(), live.clone()), slot),
                        Some(tls) => spawn_conn(
                            conn::serve_tls(stream, Arc::clone(tls), Arc::clone(&state), stop.clone(), live.clone()),
                            slot,
                        ),
                    };
                }
                // Out of descriptors or similar: let connections close
                // before trying again.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            _ = stop.changed() => break,
        }
    }
    state.draining.store(true, Ordering::Relaxed);
    // New connections are refused from here on.
    drop(listener);
    drop(live);
    // Idle connections close at once; busy ones after their answer.
    let _ = all_closed.recv().await;
}

/// Serves a connection, holding its `maxConnections` place (if any) until
/// it ends.
fn spawn_conn<F: Future<Output = ()> + Send + 'static>(serving: F, slot: Option<ConnSlot>) {
    match slot {
        None => drop(tokio::spawn(serving)),
        Some(slot) => drop(tokio::spawn(async move {
            serving.await;
            drop(slot);
        })),
    }
}

impl RunningServer {
    /// The runtime the server runs on, for tasks that serve it.
    pub fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.as_ref().map(Serving::handle)
    }

    /// Stops accepting (the port refuses connections from now on) and lets
    /// connections drain, without waiting for them.
    pub fn stop_accepting(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops accepting and waits (blocking this thread) until in-flight
    /// requests have been answered or `grace` has passed, then stops the
    /// runtime, dropping whatever is still running.
    pub fn shutdown_graceful(&mut self, grace: Duration) {
        let _ = self.stop.send(true);
        if let Some(done) = self.done.take() {
            let _ = done.recv_timeout(grace);
        }
        if let Some(rt) = self.runtime.take() {
            rt.stop(true);
        }
    }

    /// Stops at once, abandoning in-flight requests.
    pub fn shutdown_now(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.runtime.take() {
            rt.stop(false);
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}
