//! The figures as JSON, for `server.stats()`: `lib/stats.js` turns the
//! histograms' counts into `{ count, sum, buckets: [{ le, count }] }`.

use std::fmt::Write;

use super::{HistogramSum, Metrics, RequestKind, BOUNDS};

impl Metrics {
    /// `{"le":[bounds],"requests":{kind:{status:n}},"requestDurationSeconds":
    /// {kind:{"counts":[cumulative],"sum":s}},"callsInFlight":n,...}`; the
    /// last count of a histogram is its total (`+Inf`).
    pub fn stats_json(&self) -> String {
        let s = self.snapshot();
        let mut out = String::with_capacity(2048);
        out.push_str("{\"le\":[");
        out.push_str(&BOUNDS.join(","));
        out.push_str("],\"requests\":{");
        for (i, kind) in RequestKind::ALL.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{}\":{{", kind.label());
            for (j, (status, n)) in s.requests[*kind as usize].iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                let _ = write!(out, "\"{status}\":{n}");
            }
            out.push('}');
        }
        out.push_str("},\"requestDurationSeconds\":{");
        for (i, kind) in RequestKind::ALL.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{}\":", kind.label());
            histogram(&mut out, &s.durations[*kind as usize]);
        }
        out.push_str("},\"jsBatchWaitSeconds\":");
        histogram(&mut out, &s.js_batch_wait);
        for (name, value) in [
            ("callsInFlight", s.calls_in_flight),
            ("openConnections", s.open_connections),
            ("connections", s.connections),
            ("jsQueueDepth", s.js_queue_depth),
            ("jsCalls", s.js_calls),
            ("receivedBytes", s.received_bytes),
            ("sentBytes", s.sent_bytes),
            ("accessLogDropped", s.access_dropped),
        ] {
            let _ = write!(out, ",\"{name}\":{value}");
        }
        out.push('}');
        out
    }
}

fn histogram(out: &mut String, h: &HistogramSum) {
    out.push_str("{\"counts\":[");
    for (i, n) in h.cumulative().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{n}");
    }
    let _ = write!(out, "],\"sum\":{}}}", h.sum_seconds());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_one_json_document_with_every_figure() {
        let m = Metrics::new(1);
        m.request(RequestKind::Task, 200, Some(1_000), 10, 20);
        m.request(RequestKind::Task, 200, Some(1_000), 10, 20);
        m.request(RequestKind::Other, 404, None, 1, 2);
        let v: serde_json::Value = serde_json::from_str(&m.stats_json()).expect("valid JSON");
        assert_eq!(v["requests"]["task"]["200"], 2);
        assert_eq!(v["requests"]["other"]["404"], 1);
        assert_eq!(v["requests"]["event"], serde_json::json!({}));
        let counts = v["requestDurationSeconds"]["task"]["counts"]
            .as_array()
            .expect("counts");
        assert_eq!(counts.len(), BOUNDS.len() + 1);
        assert_eq!(counts[0], 2);
        assert_eq!(v["le"].as_array().map(Vec::len), Some(BOUNDS.len()));
        assert_eq!(v["receivedBytes"], 21);
        assert_eq!(v["sentBytes"], 42);
        assert_eq!(v["accessLogDropped"], 0);
    }
}
