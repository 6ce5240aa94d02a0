//! The time the engine decides schedules by (circuit breakers' hours now;
//! the scheduler's later). Production reads the system clock; tests hold a
//! [`ManualClock`] and move it, so an hour of behaviour takes no hour.

use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// A source of "now", cheap to clone.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<Mutex<DateTime<Utc>>>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that stands at `start` until moved through the returned handle.
    pub fn manual(start: DateTime<Utc>) -> (Self, ManualClock) {
        let time = Arc::new(Mutex::new(start));
        (Self(Some(time.clone())), ManualClock(time))
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            None => Utc::now(),
            Some(time) => *time.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Clock(system)"),
            Some(_) => write!(f, "Clock(manual, {})", self.now()),
        }
    }
}

/// Moves a manual [`Clock`].
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) += by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = Utc::now() - chrono::Duration::days(3);
        let (clock, hand) = Clock::manual(start);
        assert_eq!(clock.now(), start);
        hand.advance(chrono::Duration::hours(1));
        assert_eq!(clock.clone().now(), start + chrono::Duration::hours(1));
        assert!(Clock::system().now() > start + chrono::Duration::days(2));
    }
}
