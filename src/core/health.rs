//! Health and readiness probes: which paths they answer on (outside the base
//! path) and what each answers, decided from two facts the server keeps:
//! whether it is draining, and how long the handlers' thread has left queued
//! calls untaken. No handler runs for a probe.

#![forbid(unsafe_code)]

use std::time::Duration;

use super::config::HealthConfig;

/// Default `health.readyTimeoutMs`.
pub const DEFAULT_READY_TIMEOUT_MS: u64 = 5_000;

/// The two probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `health.path`: the server is up and not draining.
    Live,
    /// `health.readyPath`: it also takes calls (its JS thread keeps up).
    Ready,
}

/// The probe paths, built once at start-up.
#[derive(Debug, Clone)]
pub struct Probes {
    live: Option<String>,
    ready: Option<String>,
    /// How long queued calls may wait for the JS thread before readiness
    /// fails.
    pub ready_timeout: Duration,
}

impl Probes {
    /// `None` when no probe path is configured.
    pub fn new(cfg: Option<&HealthConfig>) -> Option<Probes> {
        let cfg = cfg?;
        if cfg.path.is_none() && cfg.ready_path.is_none() {
            return None;
        }
        Some(Probes {
            live: cfg.path.clone(),
            ready: cfg.ready_path.clone(),
            ready_timeout: Duration::from_millis(
                cfg.ready_timeout_ms.unwrap_or(DEFAULT_READY_TIMEOUT_MS),
            ),
        })
    }

    /// The probe a request's pathname asks for (an exact match; a query
    /// is not part of the pathname).
    pub fn at(&self, pathname: &str) -> Option<Probe> {
        if self.live.as_deref() == Some(pathname) {
            Some(Probe::Live)
        } else if self.ready.as_deref() == Some(pathname) {
            Some(Probe::Ready)
        } else {
            None
        }
    }

    /// A probe's status and JSON body, given whether the server is draining
    /// and how long queued calls have waited for the JS thread.
    pub fn verdict(&self, probe: Probe, draining: bool, untaken_for: Duration) -> (u16, String) {
        if draining {
            return (503, r#"{"ok":false,"status":"draining"}"#.into());
        }
        match probe {
            Probe::Live => (200, r#"{"ok":true,"status":"serving"}"#.into()),
            Probe::Ready if untaken_for > self.ready_timeout => (
                503,
                format!(
                    r#"{{"ok":false,"status":"stalled","stalledMs":{}}}"#,
                    untaken_for.as_millis()
                ),
            ),
            Probe::Ready => (200, r#"{"ok":true,"status":"ready"}"#.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probes(path: Option<&str>, ready: Option<&str>) -> Option<Probes> {
        Probes::new(Some(&HealthConfig {
            path: path.map(str::to_string),
            ready_path: ready.map(str::to_string),
            ready_timeout_ms: Some(300),
        }))
    }

    #[test]
    fn without_a_path_there_are_no_probes() {
        assert!(Probes::new(None).is_none());
        assert!(probes(None, None).is_none());
    }

    #[test]
    fn each_path_is_its_probe_and_nothing_else_is() {
        let p = probes(Some("/healthz"), Some("/readyz")).expect("probes");
        assert_eq!(p.at("/healthz"), Some(Probe::Live));
        assert_eq!(p.at("/readyz"), Some(Probe::Ready));
        assert_eq!(p.at("/healthz/"), None);
        assert_eq!(p.at("/"), None);
        let live_only = probes(Some("/healthz"), None).expect("probes");
        assert_eq!(live_only.at("/readyz"), None);
    }

    #[test]
    fn the_ready_timeout_defaults_to_five_seconds() {
        let p = Probes::new(Some(&HealthConfig {
            path: Some("/h".into()),
            ..Default::default()
        }))
        .expect("probes");
        assert_eq!(p.ready_timeout, Duration::from_secs(5));
    }

    #[test]
    fn draining_fails_both_probes() {
        let p = probes(Some("/h"), Some("/r")).expect("probes");
        for probe in [Probe::Live, Probe::Ready] {
            assert_eq!(
                p.verdict(probe, true, Duration::ZERO),
                (503, r#"{"ok":false,"status":"draining"}"#.into())
            );
        }
    }

    #[test]
    fn readiness_fails_once_calls_wait_longer_than_the_timeout_liveness_does_not() {
        let p = probes(Some("/h"), Some("/r")).expect("probes");
        let ms = Duration::from_millis;
        assert_eq!(
            p.verdict(Probe::Ready, false, ms(300)),
            (200, r#"{"ok":true,"status":"ready"}"#.into())
        );
        assert_eq!(
            p.verdict(Probe::Ready, false, ms(1234)),
            (
                503,
                r#"{"ok":false,"status":"stalled","stalledMs":1234}"#.into()
            )
        );
        assert_eq!(
            p.verdict(Probe::Live, false, ms(1234)),
            (200, r#"{"ok":true,"status":"serving"}"#.into())
        );
    }
}
