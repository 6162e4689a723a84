//! Server configuration as it arrives from the JavaScript wrapper (one JSON
//! value, validated there with field-naming TypeErrors).

#![forbid(unsafe_code)]

use serde::Deserialize;

/// Default `limits.json.maxSize`: 2 MiB, as the reference.
pub const DEFAULT_MAX_JSON_BYTES: usize = 2 * 1024 * 1024;
pub const DEFAULT_BASE_PATH: &str = "/__runner";

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerConfig {
    pub host: Option<String>,
    pub port: u16,
    /// The port is bound with `SO_REUSEPORT`, so that several processes
    /// (`cluster`, pm2) may each listen on it and the kernel spreads new
    /// connections over them.
    pub reuse_port: bool,
    /// Join the listener another isolate of this process has on the same
    /// host and port (`share`), or bind one the others may join.
    pub share: bool,
    pub base_path: Option<String>,
    pub auth: Option<AuthConfig>,
    pub cors: Option<CorsConfig>,
    pub max_json_bytes: Option<usize>,
    pub disable_discovery: bool,
    /// The user's serializer writes something other than plain JSON, so the
    /// envelopes the server writes itself must go through it.
    pub custom_serializer: bool,
    /// How JS reads JSON request bodies, so which of them it may read with
    /// `JSON.parse` (and small ones joined into one array per batch).
    pub json_calls: JsonCalls,
    /// Tokio worker threads; 0 picks the default.
    pub worker_threads: usize,
    /// How long a client may take to send a whole request (head and body),
    /// in milliseconds; 0 means no limit. Default: Node's `requestTimeout`.
    pub request_timeout_ms: Option<u64>,
    /// How long a keep-alive connection may wait for its next request, in
    /// milliseconds; 0 means no limit. Default: Node's `keepAliveTimeout`.
    pub keep_alive_timeout_ms: Option<u64>,
    /// Connections past this many are closed as soon as they are accepted;
    /// `None`: no limit.
    pub max_connections: Option<usize>,
    /// Calls queued for or running in JavaScript past this many are answered
    /// 503 from Rust; `None`: no limit.
    pub max_in_flight: Option<usize>,
    /// The `Retry-After` of those 503s, in seconds; default 1.
    pub retry_after_secs: Option<u64>,
    /// Compressed answers (gzip, brotli) by `Accept-Encoding`; `None`: off.
    pub compression: Option<CompressionConfig>,
    /// The health and readiness probes (`health`); `None`: no probe is served.
    pub health: Option<HealthConfig>,
    /// HTTPS on the same port; `None`: plain HTTP.
    pub tls: Option<TlsConfig>,
    /// The Prometheus endpoint, when asked for.
    pub metrics: Option<MetricsConfig>,
    /// Finished requests are recorded for `onAccess`.
    pub access_log: bool,
}

/// How JS reads the JSON body of a call.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum JsonCalls {
    /// With a serializer of the user's: no body is known to be plain JSON.
    #[default]
    Serializer,
    /// With `JSON.parse` (no serializer): the small bodies that are one JSON
    /// value are marked, to be joined (a large one is read alone anyway).
    Plain,
    /// With Runner's own `Serializer`: bodies it reads as `JSON.parse` does
    /// (`core::json::is_runner_plain_value`) are read with `JSON.parse`.
    RunnerPlain,
}

impl JsonCalls {
    /// Whether JS may read `body` with `JSON.parse`, joined with others
    /// when it is shorter than [`crate::wire::JOINED_BELOW`]. Without a
    /// serializer only those are looked at: a longer one is read alone with
    /// `JSON.parse` either way.
    pub fn reads_as_json(self, body: &[u8]) -> bool {
        match self {
            JsonCalls::Serializer => false,
            JsonCalls::Plain => {
                body.len() < crate::wire::JOINED_BELOW && super::json::is_one_value(body)
            }
            JsonCalls::RunnerPlain => super::json::is_runner_plain_value(body),
        }
    }
}

/// Default `Retry-After` of a 503 past `maxInFlight`: one second.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

/// `compression`: which answers are compressed, and how hard.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct CompressionConfig {
    /// Whole answers shorter than this many bytes go uncompressed.
    pub threshold: usize,
    /// gzip level, 1 (fastest) to 9 (smallest).
    pub gzip_level: u32,
    /// brotli quality, 0 (fastest) to 11 (smallest).
    pub brotli_level: u32,
}

impl Default for CompressionConfig {
    /// 1 KiB; zlib's default level; brotli quality 4, the usual choice for
    /// answers compressed as they are served (11 takes ~50x longer).
    fn default() -> Self {
        CompressionConfig {
            threshold: 1024,
            gzip_level: 6,
            brotli_level: 4,
        }
    }
}

/// `metrics: { path, port }`: where the Prometheus text is served.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MetricsConfig {
    /// The pathname scraped; outside the base path unless on a port of its own.
    pub path: String,
    /// A port of its own (on the same host; 0: any free one), or `None`:
    /// the server's port.
    pub port: Option<u16>,
}

/// The `tls` option: PEM text as the wrapper passed it (Buffers decoded,
/// arrays joined). Checked when the server starts (`http::tls`).
#[derive(Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsConfig {
    /// The server's certificate chain, leaf first.
    pub cert: String,
    /// Its private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC), or encrypted PKCS#8.
    pub key: String,
    /// The CAs client certificates are checked against.
    pub ca: Option<String>,
    /// Decrypts an encrypted PKCS#8 key.
    pub passphrase: Option<String>,
    /// Require a client certificate signed by one of `ca`.
    pub request_cert: bool,
}

/// Key material stays out of debug output.
impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert_bytes", &self.cert.len())
            .field("key", &"<redacted>")
            .field("ca_bytes", &self.ca.as_ref().map(String::len))
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("request_cert", &self.request_cert)
            .finish()
    }
}

/// Node's default `server.requestTimeout`: 300 s.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 300_000;

/// Node's default `server.keepAliveTimeout`: 5 s.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT_MS: u64 = 5_000;

fn invalid(e: serde_json::Error) -> String {
    format!("invalid server configuration: {e}")
}

fn millis_or_none(ms: u64) -> Option<std::time::Duration> {
    (ms > 0).then(|| std::time::Duration::from_millis(ms))
}

impl ServerConfig {
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(invalid)
    }

    pub fn from_value(value: serde_json::Value) -> Result<Self, String> {
        serde_json::from_value(value).map_err(invalid)
    }

    /// With the handlers on the JS thread: unless set, one worker fewer than
    /// the cores (at least one), so that thread has a core of its own.
    pub fn leaving_a_core_to_js(mut self) -> Self {
        if self.worker_threads == 0 {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            self.worker_threads = cores.saturating_sub(1).max(1);
        }
        self
    }

    pub fn host(&self) -> &str {
        self.host.as_deref().unwrap_or("127.0.0.1")
    }

    /// `None`: requests may take as long as they like.
    pub fn request_timeout(&self) -> Option<std::time::Duration> {
        millis_or_none(
            self.request_timeout_ms
                .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS),
        )
    }

    /// `None`: idle keep-alive connections stay open until the client
    /// closes them.
    pub fn keep_alive_timeout(&self) -> Option<std::time::Duration> {
        millis_or_none(
            self.keep_alive_timeout_ms
                .unwrap_or(DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
        )
    }

    /// The `Retry-After` of a 503 past `max_in_flight`, in seconds.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after_secs.unwrap_or(DEFAULT_RETRY_AFTER_SECS)
    }

    pub fn max_json_bytes(&self) -> usize {
        self.max_json_bytes.unwrap_or(DEFAULT_MAX_JSON_BYTES)
    }

    /// The base path normalised like the reference: a leading `/` added, one
    /// trailing `/` dropped (unless the path is `/` itself).
    pub fn base_path(&self) -> String {
        normalize_base_path(self.base_path.as_deref().unwrap_or(DEFAULT_BASE_PATH))
    }
}

pub fn normalize_base_path(raw: &str) -> String {
    let mut path = if raw.starts_with('/') {
        raw.to_string()
    } else {
        format!("/{raw}")
    };
    if path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    path
}

/// `health`: the probe paths (outside the base path, checked in JS) and how
/// long the JS thread may leave queued calls untaken before readiness fails.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct HealthConfig {
    pub path: Option<String>,
    pub ready_path: Option<String>,
    pub ready_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthConfig {
    /// `None`: no token configured. `Some(vec![])` is a configured but empty
    /// list, which (as in the reference) rejects every request with 401.
    pub tokens: Option<Vec<String>>,
    pub header: Option<String>,
    pub allow_anonymous: bool,
    /// Extra validators run in JavaScript when no token matched.
    pub has_validators: bool,
}

/// How `Access-Control-Allow-Origin` is chosen.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(tag = "kind", content = "value", rename_all = "camelCase")]
pub enum OriginSpec {
    /// No `origin` configured.
    #[default]
    Unset,
    /// Sent as is.
    Exact(String),
    /// Echo the request origin when listed.
    List(Vec<String>),
    /// A RegExp or a function: decided in JavaScript per request.
    Dynamic,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct CorsConfig {
    pub origin: OriginSpec,
    pub methods: Option<Vec<String>>,
    pub allowed_headers: Option<Vec<String>>,
    pub exposed_headers: Option<Vec<String>>,
    pub credentials: bool,
    pub max_age: Option<f64>,
    pub vary_origin: Option<bool>,
}

/// The first option, by the name a user gives it, on which two servers
/// sharing one listener (`share`) disagree; `None` when they agree on all
/// the HTTP side depends on. `workerThreads`, `host`, `port`, `reusePort`
/// and `share` are not compared (the first sharer's serve); defaults
/// written out equal defaults left out.
pub fn shared_difference(a: &ServerConfig, b: &ServerConfig) -> Option<&'static str> {
    let auth = |c: &ServerConfig| {
        c.auth.clone().map(|mut auth| {
            let header = auth
                .header
                .as_deref()
                .unwrap_or(crate::core::auth::DEFAULT_TOKEN_HEADER);
            auth.header = Some(header.to_ascii_lowercase());
            auth
        })
    };
    let same = [
        ("basePath", a.base_path() == b.base_path()),
        ("auth", auth(a) == auth(b)),
        ("cors", a.cors == b.cors),
        (
            "limits.json.maxSize",
            a.max_json_bytes() == b.max_json_bytes(),
        ),
        (
            "disableDiscovery",
            a.disable_discovery == b.disable_discovery,
        ),
        (
            "serializer",
            a.custom_serializer == b.custom_serializer && a.json_calls == b.json_calls,
        ),
        ("requestTimeout", a.request_timeout() == b.request_timeout()),
        (
            "keepAliveTimeout",
            a.keep_alive_timeout() == b.keep_alive_timeout(),
        ),
        ("maxConnections", a.max_connections == b.max_connections),
        ("maxInFlight", a.max_in_flight == b.max_in_flight),
        (
            "retryAfterSeconds",
            a.retry_after_secs() == b.retry_after_secs(),
        ),
        ("compression", a.compression == b.compression),
        ("health", a.health == b.health),
        ("tls", a.tls == b.tls),
        ("metrics", a.metrics == b.metrics),
        ("onAccess", a.access_log == b.access_log),
    ];
    same.iter().find(|(_, same)| !same).map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg(json: serde_json::Value) -> ServerConfig {
        serde_json::from_value(json).unwrap_or_default()
    }

    #[test]
    fn sharers_agree_when_only_threads_host_port_or_defaults_differ() {
        let a = cfg(
            serde_json::json!({ "port": 7000, "workerThreads": 1, "auth": { "tokens": ["t"] } }),
        );
        let b = cfg(serde_json::json!({
            "port": 0, "workerThreads": 3, "reusePort": true, "basePath": "__runner/",
            "auth": { "tokens": ["t"], "header": "X-Runner-Token" },
            "maxJsonBytes": DEFAULT_MAX_JSON_BYTES,
        }));
        assert_eq!(shared_difference(&a, &b), None);
    }

    #[test]
    fn sharers_differing_name_the_option() {
        let a = cfg(serde_json::json!({ "auth": { "tokens": ["t"] } }));
        for (json, name) in [
            (serde_json::json!({ "auth": { "tokens": ["u"] } }), "auth"),
            (
                serde_json::json!({ "auth": { "tokens": ["t"] }, "basePath": "/api" }),
                "basePath",
            ),
            (
                serde_json::json!({ "auth": { "tokens": ["t"] }, "maxJsonBytes": 10 }),
                "limits.json.maxSize",
            ),
            (
                serde_json::json!({ "auth": { "tokens": ["t"] }, "customSerializer": true }),
                "serializer",
            ),
            (
                serde_json::json!({ "auth": { "tokens": ["t"] }, "maxInFlight": 5 }),
                "maxInFlight",
            ),
        ] {
            assert_eq!(shared_difference(&a, &cfg(json)), Some(name));
        }
    }

    #[test]
    fn base_path_gains_leading_slash_and_loses_trailing_one() {
        assert_eq!(normalize_base_path("api/"), "/api");
        assert_eq!(normalize_base_path("/__runner"), "/__runner");
        assert_eq!(normalize_base_path("/"), "/");
        assert_eq!(normalize_base_path("/x//"), "/x/");
    }

    #[test]
    fn timeouts_default_to_nodes_and_zero_turns_them_off() {
        type Get = fn(&ServerConfig) -> Option<Duration>;
        let cases: [(&str, Get, u64); 2] = [
            ("requestTimeoutMs", ServerConfig::request_timeout, 300_000),
            (
                "keepAliveTimeoutMs",
                ServerConfig::keep_alive_timeout,
                5_000,
            ),
        ];
        for (key, get, default_ms) in cases {
            let cfg = |json: &str| ServerConfig::from_json(json).expect("config");
            assert_eq!(
                get(&cfg("{}")),
                Some(Duration::from_millis(default_ms)),
                "{key}"
            );
            assert_eq!(get(&cfg(&format!(r#"{{"{key}":0}}"#))), None, "{key}");
            assert_eq!(
                get(&cfg(&format!(r#"{{"{key}":65000}}"#))),
                Some(Duration::from_secs(65)),
                "{key}"
            );
        }
    }

    #[test]
    fn config_parses_from_wrapper_json() {
        let cfg = ServerConfig::from_json(
            r#"{"port":0,"basePath":"api/","auth":{"tokens":["a"],"allowAnonymous":false},
                "cors":{"origin":{"kind":"list","value":["https://a"]},"credentials":true},
                "maxJsonBytes":10}"#,
        )
        .expect("valid config");
        assert_eq!(cfg.base_path(), "/api");
        assert_eq!(cfg.max_json_bytes(), 10);
        assert_eq!(
            cfg.cors.expect("cors").origin,
            OriginSpec::List(vec!["https://a".into()])
        );
    }

    #[test]
    fn shedding_and_compression_are_off_unless_configured() {
        let cfg = ServerConfig::from_json("{}").expect("empty config");
        assert_eq!((cfg.max_connections, cfg.max_in_flight), (None, None));
        assert_eq!(cfg.retry_after_secs(), 1);
        assert!(cfg.compression.is_none());
        let cfg = ServerConfig::from_json(
            r#"{"maxConnections":2,"maxInFlight":3,"retryAfterSecs":5,"compression":{"threshold":10}}"#,
        )
        .expect("config");
        assert_eq!((cfg.max_connections, cfg.max_in_flight), (Some(2), Some(3)));
        assert_eq!(cfg.retry_after_secs(), 5);
        let c = cfg.compression.expect("compression");
        assert_eq!((c.threshold, c.gzip_level, c.brotli_level), (10, 6, 4));
    }

    #[test]
    fn tls_parses_and_its_key_stays_out_of_debug_output() {
        let cfg = ServerConfig::from_json(
            r#"{"tls":{"cert":"C","key":"SECRET-KEY","passphrase":"SECRET-PASS","requestCert":true,"ca":"A"}}"#,
        )
        .expect("valid config");
        let tls = cfg.tls.as_ref().expect("tls");
        assert_eq!((tls.cert.as_str(), tls.key.as_str()), ("C", "SECRET-KEY"));
        assert!(tls.request_cert);
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(ServerConfig::from_json("{}").expect("empty").tls.is_none());
    }

    #[test]
    fn the_js_thread_keeps_a_core_unless_workers_are_set() {
        let cfg = |workers: usize| ServerConfig {
            worker_threads: workers,
            ..Default::default()
        };
        assert_eq!(cfg(3).leaving_a_core_to_js().worker_threads, 3);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert_eq!(
            cfg(0).leaving_a_core_to_js().worker_threads,
            (cores - 1).max(1)
        );
    }

    #[test]
    fn a_value_reads_as_its_json_text_does() {
        let text = r#"{"port":8080,"maxJsonBytes":5000000000,"cors":{"origin":{"kind":"exact","value":"https://a"},"maxAge":1.5}}"#;
        let value: serde_json::Value = serde_json::from_str(text).expect("json");
        let (a, b) = (
            ServerConfig::from_json(text).expect("text"),
            ServerConfig::from_value(value).expect("value"),
        );
        assert_eq!((a.port, a.max_json_bytes), (b.port, b.max_json_bytes));
        assert_eq!(a.cors.map(|c| c.max_age), b.cors.map(|c| c.max_age));
        assert!(ServerConfig::from_value(serde_json::json!({"port": "x"}))
            .is_err_and(|e| e.starts_with("invalid server configuration: ")));
    }

    #[test]
    fn defaults_match_the_reference() {
        let cfg = ServerConfig::from_json("{}").expect("empty config");
        assert_eq!(cfg.base_path(), "/__runner");
        assert_eq!(cfg.max_json_bytes(), 2 * 1024 * 1024);
        assert_eq!(cfg.host(), "127.0.0.1");
        assert_eq!(cfg.metrics, None);
        assert!(!cfg.access_log);
    }

    #[test]
    fn metrics_and_access_log_parse_from_wrapper_json() {
        let cfg = ServerConfig::from_json(
            r#"{"metrics":{"path":"/metrics","port":9100},"accessLog":true}"#,
        )
        .expect("valid config");
        assert_eq!(
            cfg.metrics,
            Some(MetricsConfig {
                path: "/metrics".into(),
                port: Some(9100)
            })
        );
        assert!(cfg.access_log);
    }
}
