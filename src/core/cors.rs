//! CORS headers exactly as the reference chooses them, for actual answers
//! and for preflights.

#![forbid(unsafe_code)]

use std::borrow::Cow;

use super::config::{CorsConfig, OriginSpec};

/// One CORS header: its (lower-case) name and value. Fixed values are
/// borrowed, so the common answers allocate nothing for them.
pub type CorsHeader = (&'static str, Cow<'static, str>);

/// The origin decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginDecision {
    pub value: Option<Cow<'static, str>>,
    pub vary: bool,
}

/// CORS for one server: `None` config means "no cors option given".
#[derive(Debug, Clone, Default)]
pub struct CorsPolicy {
    cfg: Option<CorsConfig>,
}

/// What the request carries that CORS looks at.
pub struct CorsRequest<'a> {
    pub origin: Option<&'a str>,
    pub requested_headers: Option<&'a str>,
}

impl CorsPolicy {
    pub fn new(cfg: Option<CorsConfig>) -> Self {
        CorsPolicy { cfg }
    }

    /// True when the origin can only be decided by a JavaScript function or
    /// RegExp.
    pub fn needs_dynamic_origin(&self) -> bool {
        matches!(
            self.cfg.as_ref().map(|c| &c.origin),
            Some(OriginSpec::Dynamic)
        )
    }

    /// Static origin resolution; `dynamic` is the JavaScript answer when the
    /// spec is a function or RegExp.
    pub fn resolve_origin(
        &self,
        request_origin: Option<&str>,
        dynamic: Option<String>,
    ) -> OriginDecision {
        let Some(cfg) = &self.cfg else {
            return OriginDecision {
                value: Some("*".into()),
                vary: false,
            };
        };
        match &cfg.origin {
            OriginSpec::Unset => {
                if cfg.credentials {
                    OriginDecision {
                        value: None,
                        vary: true,
                    }
                } else {
                    OriginDecision {
                        value: Some("*".into()),
                        vary: false,
                    }
                }
            }
            OriginSpec::Exact(v) => OriginDecision {
                value: non_empty(v.clone()).map(Cow::Owned),
                vary: false,
            },
            OriginSpec::List(list) => {
                let matched = request_origin.filter(|o| list.iter().any(|l| l == o));
                OriginDecision {
                    value: matched
                        .and_then(|o| non_empty(o.to_string()))
                        .map(Cow::Owned),
                    vary: true,
                }
            }
            OriginSpec::Dynamic => OriginDecision {
                value: dynamic.and_then(non_empty).map(Cow::Owned),
                vary: true,
            },
        }
    }

    fn vary_origin(&self) -> bool {
        self.cfg
            .as_ref()
            .and_then(|c| c.vary_origin)
            .unwrap_or(true)
    }

    /// Headers for an actual (non-preflight) answer, errors included.
    pub fn actual_headers(&self, origin: &OriginDecision, out: &mut Vec<CorsHeader>) {
        let Some(cfg) = &self.cfg else {
            out.push(("access-control-allow-origin", "*".into()));
            return;
        };
        if origin.vary && self.vary_origin() {
            out.push(("vary", "Origin".into()));
        }
        if let Some(v) = &origin.value {
            out.push(("access-control-allow-origin", v.clone()));
        }
        if cfg.credentials {
            out.push(("access-control-allow-credentials", "true".into()));
        }
        if let Some(exposed) = cfg.exposed_headers.as_ref().filter(|h| !h.is_empty()) {
            out.push(("access-control-expose-headers", exposed.join(", ").into()));
        }
    }

    /// Headers for a preflight answer (status 204, empty body).
    pub fn preflight_headers(
        &self,
        origin: &OriginDecision,
        requested_headers: Option<&str>,
        out: &mut Vec<CorsHeader>,
    ) {
        let cfg = self.cfg.as_ref();
        if origin.vary && self.vary_origin() {
            out.push(("vary", "Origin".into()));
        }
        if let Some(v) = &origin.value {
            out.push(("access-control-allow-origin", v.clone()));
        }
        let methods = cfg
            .and_then(|c| c.methods.as_ref())
            .filter(|m| !m.is_empty())
            .map(|m| m.join(", "))
            .unwrap_or_else(|| "POST, OPTIONS".into());
        out.push(("access-control-allow-methods", methods.into()));
        let allow_headers = cfg
            .and_then(|c| c.allowed_headers.as_ref())
            .filter(|h| !h.is_empty())
            .map(|h| h.join(", "))
            .or_else(|| requested_headers.map(str::to_string))
            .unwrap_or_default();
        if !allow_headers.is_empty() {
            out.push(("access-control-allow-headers", allow_headers.into()));
        }
        if cfg.is_some_and(|c| c.credentials) {
            out.push(("access-control-allow-credentials", "true".into()));
        }
        if let Some(max_age) = cfg.and_then(|c| c.max_age) {
            out.push((
                "access-control-max-age",
                js_number_to_string(max_age).into(),
            ));
        }
    }
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

/// `String(n)` for the numbers a config can hold (integers print without a
/// fraction; other values use Rust's shortest round-trip form).
pub fn js_number_to_string(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(cfg: CorsConfig) -> CorsPolicy {
        CorsPolicy::new(Some(cfg))
    }

    fn actual(p: &CorsPolicy, origin: Option<&str>) -> Vec<CorsHeader> {
        let mut out = vec![];
        p.actual_headers(&p.resolve_origin(origin, None), &mut out);
        out
    }

    #[test]
    fn no_config_allows_any_origin() {
        let p = CorsPolicy::new(None);
        assert_eq!(
            actual(&p, Some("https://x")),
            vec![("access-control-allow-origin", "*".into())]
        );
    }

    #[test]
    fn listed_origin_is_echoed_with_vary() {
        let p = policy(CorsConfig {
            origin: OriginSpec::List(vec!["https://a".into()]),
            ..Default::default()
        });
        assert_eq!(
            actual(&p, Some("https://a")),
            vec![
                ("vary", "Origin".into()),
                ("access-control-allow-origin", "https://a".into())
            ]
        );
        assert_eq!(
            actual(&p, Some("https://b")),
            vec![("vary", "Origin".into())]
        );
        assert_eq!(actual(&p, None), vec![("vary", "Origin".into())]);
    }

    #[test]
    fn credentials_without_origin_echo_nothing_like_the_reference() {
        let p = policy(CorsConfig {
            credentials: true,
            ..Default::default()
        });
        assert_eq!(
            actual(&p, Some("https://a")),
            vec![
                ("vary", "Origin".into()),
                ("access-control-allow-credentials", "true".into())
            ]
        );
    }

    #[test]
    fn vary_can_be_turned_off() {
        let p = policy(CorsConfig {
            origin: OriginSpec::List(vec!["https://a".into()]),
            vary_origin: Some(false),
            exposed_headers: Some(vec!["x-a".into(), "x-b".into()]),
            ..Default::default()
        });
        assert_eq!(
            actual(&p, Some("https://a")),
            vec![
                ("access-control-allow-origin", "https://a".into()),
                ("access-control-expose-headers", "x-a, x-b".into())
            ]
        );
    }

    #[test]
    fn preflight_defaults_echo_requested_headers() {
        let p = CorsPolicy::new(None);
        let mut out = vec![];
        p.preflight_headers(
            &p.resolve_origin(None, None),
            Some("content-type, x-runner-token"),
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                ("access-control-allow-origin", "*".into()),
                ("access-control-allow-methods", "POST, OPTIONS".into()),
                (
                    "access-control-allow-headers",
                    "content-type, x-runner-token".into()
                ),
            ]
        );
    }

    #[test]
    fn preflight_uses_configured_lists_and_max_age() {
        let p = policy(CorsConfig {
            origin: OriginSpec::Exact("https://a".into()),
            methods: Some(vec!["POST".into()]),
            allowed_headers: Some(vec!["x-y".into()]),
            max_age: Some(600.0),
            credentials: true,
            ..Default::default()
        });
        let mut out = vec![];
        p.preflight_headers(
            &p.resolve_origin(Some("https://z"), None),
            Some("x-q"),
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                ("access-control-allow-origin", "https://a".into()),
                ("access-control-allow-methods", "POST".into()),
                ("access-control-allow-headers", "x-y".into()),
                ("access-control-allow-credentials", "true".into()),
                ("access-control-max-age", "600".into()),
            ]
        );
    }

    #[test]
    fn empty_exact_origin_sends_no_header() {
        let p = policy(CorsConfig {
            origin: OriginSpec::Exact(String::new()),
            ..Default::default()
        });
        assert_eq!(actual(&p, Some("https://a")), vec![]);
    }
}
