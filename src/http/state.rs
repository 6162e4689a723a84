//! What every request is served with: the protocol core's policies, the
//! limits and the dispatcher, built once at start-up and shared through one
//! `Arc` by every connection.

#![forbid(unsafe_code)]

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::core::auth::AuthCheck;
use crate::core::config::ServerConfig;
use crate::core::cors::CorsPolicy;
use crate::core::exposure::Registry;
use crate::core::health::Probes;
use crate::core::router::Router as PathRouter;

use super::dispatch::Dispatch;

/// Everything a request needs, built once at start-up.
pub struct ServerState {
    pub router: PathRouter,
    pub cors: CorsPolicy,
    pub auth: AuthCheck,
    pub max_json_bytes: usize,
    pub disable_discovery: bool,
    /// How long a request may take to arrive whole; `None`: no limit.
    pub request_timeout: Option<Duration>,
    /// How long a keep-alive connection may idle; `None`: no limit.
    pub keep_alive_timeout: Option<Duration>,
    /// Pass server-written JSON through the (non-JSON) user serializer.
    pub envelopes_in_js: bool,
    pub registry: Arc<ArcSwap<Registry>>,
    pub dispatch: Arc<dyn Dispatch>,
    /// The health and readiness probes, when configured.
    pub probes: Option<Probes>,
    /// Set once the server stops accepting; read only by the probes.
    pub draining: AtomicBool,
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
            disable_discovery: cfg.disable_discovery,
            request_timeout: cfg.request_timeout(),
            keep_alive_timeout: cfg.keep_alive_timeout(),
            envelopes_in_js: cfg.custom_serializer,
            registry,
            dispatch,
            probes: Probes::new(cfg.health.as_ref()),
            draining: AtomicBool::new(false),
            tls: None,
        }
    }

    /// Serves HTTPS with this configuration (`tls::server_config`).
    pub fn with_tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tls);
        self
    }
}
