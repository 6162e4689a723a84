//! For the readiness probe: since when the JS thread has owed the bridge a
//! look at its queue. Kept with one store per batch: when the first job
//! after an idle spell schedules a wake-up, and when JS takes a batch (it
//! then owes the next look); cleared when JS finds the queue empty.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct QueueClock {
    epoch: Instant,
    /// Milliseconds since `epoch`, plus one; 0: JS owes nothing.
    owed_since: AtomicU64,
}

impl QueueClock {
    pub fn new() -> Self {
        QueueClock {
            epoch: Instant::now(),
            owed_since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// JS owes a look at the queue from now on.
    pub fn owe(&self) {
        self.owed_since.store(self.now(), Ordering::Relaxed);
    }

    /// JS found the queue empty: it owes nothing until the next wake-up.
    pub fn settle(&self) {
        self.owed_since.store(0, Ordering::Relaxed);
    }

    /// How long JS has owed a look (zero when it owes none).
    pub fn owed_for(&self) -> Duration {
        match self.owed_since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => Duration::from_millis(self.now().saturating_sub(since)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owing_counts_from_the_last_owe_until_settled() {
        let clock = QueueClock::new();
        assert_eq!(clock.owed_for(), Duration::ZERO);
        clock.owe();
        std::thread::sleep(Duration::from_millis(30));
        assert!(clock.owed_for() >= Duration::from_millis(25));
        clock.owe();
        assert!(clock.owed_for() < Duration::from_millis(25));
        clock.settle();
        assert_eq!(clock.owed_for(), Duration::ZERO);
    }
}
