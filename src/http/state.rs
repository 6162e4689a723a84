//! What every request is served with: the protocol core's policies, the
//! limits and the dispatcher, built once at start-up and shared through one
//! `Arc` by every connection.

#![forbid(unsafe_code)]

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::core::auth::AuthCheck;
use crate::core::config::{JsonCalls, ServerConfig};
use crate::core::cors::CorsPolicy;
use crate::core::exposure::Registry;
use crate::core::health::Probes;
use crate::core::router::Router as PathRouter;

use super::access::AccessLog;
use super::compress::Compression;
use super::dispatch::Dispatch;
use super::metrics::{Metrics, MetricsEndpoint};
use super::shed::{ConnLimit, InFlight};

/// Everything a request needs, built once at start-up.
pub struct ServerState {
    pub router: PathRouter,
    pub cors: CorsPolicy,
    pub auth: AuthCheck,
    pub max_json_bytes: usize,
    /// Which JSON bodies JS reads with `JSON.parse`.
    pub json_calls: JsonCalls,
    pub disable_discovery: bool,
    /// How long a request may take to arrive whole; `None`: no limit.
    pub request_timeout: Option<Duration>,
    /// How long a keep-alive connection may idle; `None`: no limit.
    pub keep_alive_timeout: Option<Duration>,
    /// Pass server-written JSON through the (non-JSON) user serializer.
    pub envelopes_in_js: bool,
    pub registry: Arc<ArcSwap<Registry>>,
    pub dispatch: Arc<dyn Dispatch>,
    /// `maxInFlight`: calls admitted to the dispatcher.
    pub in_flight: InFlight,
    /// `maxConnections`: connections open.
    pub connections: ConnLimit,
    /// `compression`; `None`: answers go as handled.
    pub compression: Option<Compression>,
    /// The health and readiness probes, when configured.
    pub probes: Option<Probes>,
    /// Set once the server stops accepting; read only by the probes.
    pub draining: AtomicBool,
    /// What the server counts; the bridge keeps it across listens.
    pub metrics: Arc<Metrics>,
    /// The scrape endpoint on this listener, when it has one.
    pub metrics_endpoint: Option<MetricsEndpoint>,
    /// Where finished requests are recorded, with `onAccess`.
    pub access: Option<Arc<AccessLog>>,
    /// Connections speak TLS with this configuration; `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
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
            json_calls: cfg.json_calls,
            disable_discovery: cfg.disable_discovery,
            request_timeout: cfg.request_timeout(),
            keep_alive_timeout: cfg.keep_alive_timeout(),
            envelopes_in_js: cfg.custom_serializer,
            registry,
            dispatch,
            in_flight: InFlight::new(cfg.max_in_flight, cfg.retry_after_secs()),
            connections: ConnLimit::new(cfg.max_connections),
            compression: cfg.compression.as_ref().map(Compression::new),
            probes: Probes::new(cfg.health.as_ref()),
            draining: AtomicBool::new(false),
            metrics: Arc::new(Metrics::new(metrics_shards(cfg))),
            metrics_endpoint: cfg.metrics.as_ref().filter(|m| m.port.is_none()).map(|m| {
                MetricsEndpoint {
                    path: m.path.clone(),
                    only: false,
                }
            }),
            access: None,
            tls: None,
        }
    }

    /// Serves HTTPS with this configuration (`tls::server_config`).
    pub fn with_tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Counts into `metrics` (kept by the caller) instead of its own.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Records finished requests in `log`.
    pub fn with_access(mut self, log: Arc<AccessLog>) -> Self {
        self.access = Some(log);
        self
    }

    /// The state of the metrics port's listener, when there is one: its
    /// requests are counted and logged with the server's, and anything but
    /// the metrics path is a 404.
    pub fn for_metrics_port(&self, cfg: &ServerConfig) -> Option<ServerState> {
        let m = cfg.metrics.as_ref().filter(|m| m.port.is_some())?;
        let mut state = ServerState::new(cfg, self.registry.clone(), self.dispatch.clone())
            .with_metrics(self.metrics.clone());
        state.metrics_endpoint = Some(MetricsEndpoint {
            path: m.path.clone(),
            only: true,
        });
        state.access = self.access.clone();
        Some(state)
    }
}

/// One shard per HTTP worker, and one for any other thread that counts.
pub fn metrics_shards(cfg: &ServerConfig) -> usize {
    worker_count(cfg) + 1
}

/// The HTTP worker threads a server runs: as configured, or one per core.
pub fn worker_count(cfg: &ServerConfig) -> usize {
    if cfg.worker_threads > 0 {
        cfg.worker_threads
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    }
}
