use super::*;

#[test]
fn a_duration_on_a_bound_counts_in_that_bounds_bucket() {
    let h = Histogram::new();
    for nanos in [0, 50_000, 50_001, 10_000_000_000, 10_000_000_001] {
        h.observe(nanos);
    }
    let mut sum = HistogramSum::default();
    h.add_into(&mut sum);
    assert_eq!(sum.buckets[0], 2, "0 and 50 µs are within le=0.00005");
    assert_eq!(sum.buckets[1], 1);
    assert_eq!(sum.buckets[BUCKETS - 2], 1, "10 s is within le=10");
    assert_eq!(sum.buckets[BUCKETS - 1], 1, "past 10 s: +Inf");
    assert_eq!(sum.count(), 5);
    assert_eq!(sum.cumulative()[BUCKETS - 1], 5);
}

#[test]
fn shards_summed_give_every_threads_counts() {
    let m = std::sync::Arc::new(Metrics::new(2));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    m.request(RequestKind::Task, 200, Some(1), 10, 20);
                }
                m.request(RequestKind::Other, 404, None, 1, 2);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("counting thread");
    }
    let s = m.snapshot();
    assert_eq!(s.requests[RequestKind::Task as usize], [(200, 3000)]);
    assert_eq!(s.requests[RequestKind::Other as usize], [(404, 3)]);
    assert_eq!(s.durations[RequestKind::Task as usize].count(), 3000);
    assert_eq!(
        s.durations[RequestKind::Other as usize].count(),
        0,
        "no head: no duration"
    );
    assert_eq!((s.received_bytes, s.sent_bytes), (30_003, 60_006));
}

#[test]
fn gauges_go_up_and_down_across_threads() {
    let m = std::sync::Arc::new(Metrics::new(1));
    let call = m.call();
    let conn = m.connection();
    assert_eq!(m.snapshot().calls_in_flight, 1);
    assert_eq!(m.snapshot().open_connections, 1);
    assert_eq!(m.snapshot().js_queue_depth, 1);
    let other = m.clone();
    std::thread::spawn(move || {
        // Finished on another thread than it started on.
        drop(other.call());
        other.js_batch_taken(2, None);
    })
    .join()
    .expect("thread");
    drop(call);
    drop(conn);
    let s = m.snapshot();
    assert_eq!((s.calls_in_flight, s.open_connections), (0, 0));
    assert_eq!((s.js_queue_depth, s.js_calls, s.connections), (0, 2, 1));
}

#[test]
fn a_batch_waits_from_its_wake_up_or_from_the_batch_before() {
    let m = Metrics::new(1);
    let clock = BatchClock::default();
    m.js_batch_taken(1, clock.taken());
    assert_eq!(
        m.snapshot().js_batch_wait.count(),
        0,
        "nothing to count from"
    );
    m.js_batch_taken(1, clock.taken());
    assert_eq!(
        m.snapshot().js_batch_wait.count(),
        1,
        "from the batch before"
    );
    clock.wake_requested();
    std::thread::sleep(std::time::Duration::from_millis(2));
    m.js_batch_taken(1, clock.taken());
    let wait = m.snapshot().js_batch_wait;
    assert_eq!(wait.count(), 2);
    assert!(wait.sum_nanos >= 2_000_000, "from the wake-up: {wait:?}");
}

#[test]
fn each_js_thread_waits_by_its_own_clock() {
    // Two isolates sharing one listener's figures: a wake-up asked for one
    // is not the other's.
    let m = Metrics::new(1);
    let (a, b) = (BatchClock::default(), BatchClock::default());
    m.js_batch_taken(1, a.taken());
    a.wake_requested();
    std::thread::sleep(std::time::Duration::from_millis(5));
    b.wake_requested();
    m.js_batch_taken(1, a.taken());
    let wait = m.snapshot().js_batch_wait;
    assert_eq!(wait.count(), 1);
    assert!(
        wait.sum_nanos >= 5_000_000,
        "from a's own wake-up: {wait:?}"
    );
}

#[test]
fn calls_never_taken_leave_the_queue_depth() {
    let m = Metrics::new(1);
    let calls = [m.call(), m.call(), m.call()];
    m.js_batch_taken(1, None);
    assert_eq!(m.snapshot().js_queue_depth, 2);
    m.js_calls_dropped(2);
    assert_eq!(m.snapshot().js_queue_depth, 0);
    drop(calls);
}

#[test]
fn a_kind_slot_reads_back_what_was_set() {
    let slot = KindSlot::default();
    assert_eq!(slot.get(), RequestKind::Other);
    for kind in RequestKind::ALL {
        slot.set(kind);
        assert_eq!(slot.get(), kind);
    }
}
