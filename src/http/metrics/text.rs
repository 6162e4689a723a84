//! The Prometheus text exposition (format 0.0.4) of a [`Snapshot`].

use std::fmt::Write;

use super::{HistogramSum, Metrics, RequestKind, Snapshot, BOUNDS};

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Metrics {
    /// Every figure as Prometheus text.
    pub fn render(&self) -> String {
        render(&self.snapshot())
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// A histogram's samples; `labels` is `kind="task",` or empty.
fn histogram(out: &mut String, name: &str, labels: &str, h: &HistogramSum) {
    let cumulative = h.cumulative();
    for (le, n) in BOUNDS.iter().chain(["+Inf"].iter()).zip(cumulative) {
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {n}");
    }
    let bare = labels.trim_end_matches(',');
    let braces = if bare.is_empty() {
        String::new()
    } else {
        format!("{{{bare}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum_seconds());
    let _ = writeln!(out, "{name}_count{braces} {}", h.count());
}

pub(super) fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let name = "runner_native_requests_total";
    family(
        &mut out,
        name,
        "counter",
        "Requests answered, by kind (task, event, discovery, other) and status (499: the client went away before the answer).",
    );
    for kind in RequestKind::ALL {
        for (status, n) in &s.requests[kind as usize] {
            let _ = writeln!(
                out,
                "{name}{{kind=\"{}\",status=\"{status}\"}} {n}",
                kind.label()
            );
        }
    }
    let name = "runner_native_request_duration_seconds";
    family(
        &mut out,
        name,
        "histogram",
        "Time from a request's head being parsed to its answer being written, by kind.",
    );
    for kind in RequestKind::ALL {
        let labels = format!("kind=\"{}\",", kind.label());
        histogram(&mut out, name, &labels, &s.durations[kind as usize]);
    }
    single(
        &mut out,
        "runner_native_calls_in_flight",
        "gauge",
        "Task and event calls handed to a handler whose reply has not come yet.",
        s.calls_in_flight,
    );
    single(
        &mut out,
        "runner_native_open_connections",
        "gauge",
        "Client connections open now.",
        s.open_connections,
    );
    single(
        &mut out,
        "runner_native_connections_total",
        "counter",
        "Client connections accepted.",
        s.connections,
    );
    single(
        &mut out,
        "runner_native_js_queue_depth",
        "gauge",
        "Calls queued for the JS thread that it has not taken yet.",
        s.js_queue_depth,
    );
    single(
        &mut out,
        "runner_native_js_calls_total",
        "counter",
        "Calls the JS thread has taken.",
        s.js_calls,
    );
    let name = "runner_native_js_batch_wait_seconds";
    family(
        &mut out,
        name,
        "histogram",
        "Per batch of jobs the JS thread took, how long it waited: from the wake-up asked for it, or, when JS was busy and fetched it itself, from JS taking the batch before.",
    );
    histogram(&mut out, name, "", &s.js_batch_wait);
    single(
        &mut out,
        "runner_native_received_bytes_total",
        "counter",
        "Bytes of request heads and bodies received.",
        s.received_bytes,
    );
    single(
        &mut out,
        "runner_native_sent_bytes_total",
        "counter",
        "Bytes of answers written, heads and bodies.",
        s.sent_bytes,
    );
    single(
        &mut out,
        "runner_native_access_log_dropped_total",
        "counter",
        "Access records dropped because the buffer for them was full (onAccess falling behind).",
        s.access_dropped,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_and_type_and_histograms_end_in_inf() {
        let m = Metrics::new(1);
        m.request(RequestKind::Task, 200, Some(300_000), 100, 50);
        m.request(RequestKind::Other, 404, Some(1), 80, 40);
        let text = m.render();
        assert!(text.contains("runner_native_requests_total{kind=\"task\",status=\"200\"} 1\n"));
        assert!(text.contains("runner_native_requests_total{kind=\"other\",status=\"404\"} 1\n"));
        assert!(text.contains(
            "runner_native_request_duration_seconds_bucket{kind=\"task\",le=\"0.00025\"} 0\n"
        ));
        assert!(text.contains(
            "runner_native_request_duration_seconds_bucket{kind=\"task\",le=\"0.0005\"} 1\n"
        ));
        assert!(text.contains(
            "runner_native_request_duration_seconds_bucket{kind=\"task\",le=\"+Inf\"} 1\n"
        ));
        assert!(text.contains("runner_native_request_duration_seconds_sum{kind=\"task\"} 0.0003\n"));
        assert!(text.contains("runner_native_js_batch_wait_seconds_count 0\n"));
        assert!(text.contains("runner_native_received_bytes_total 180\n"));
        let mut helped = 0;
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap_or_default();
            assert!(name.starts_with("runner_native_"), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "{name} has HELP");
            helped += 1;
        }
        assert_eq!(helped, 11);
    }
}
