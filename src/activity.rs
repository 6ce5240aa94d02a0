//! What a run is doing while it does it, for whoever shows it: the command
//! line's progress bar (`src/cli/progress.rs`) listens through an
//! [`ActivitySink`]; the library only reports.
//!
//! The sync machinery reports the windows it walks and the waits it sits out
//! (`src/sync/`), the rate gate reports the calls it lets through and the
//! quota waits it imposes (`src/platforms/guard.rs`), and `store_orders`
//! reports the orders it writes. A [`Reporter`] with no sink (the default:
//! `serve`, tests, a run whose output is not a terminal) costs one branch per
//! report.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Waits shorter than this are not reported: a paced call waits a fraction
/// of a second every time, and a bar flickering "waiting 0s" says nothing.
pub const NOTABLE_WAIT: Duration = Duration::from_secs(1);

/// One thing a run did, or is about to sit out.
#[derive(Debug, Clone, PartialEq)]
pub enum Activity {
    /// A node walking a time range window by window moved on: `done` windows
    /// read of about `total` (an estimate: windows halve when crowded and
    /// grow back when quiet).
    Windows {
        /// The node walking them.
        node_id: String,
        /// Windows read so far in this run.
        done: u64,
        /// Windows read plus those left at the current window size.
        total: u64,
    },
    /// Orders written to the store (new ones, or newer versions).
    OrdersStored(u64),
    /// A platform call went out.
    Called,
    /// No call goes out until `until`, because of `reason`.
    Waiting {
        /// When calls go on again.
        until: DateTime<Utc>,
        /// Why they wait.
        reason: WaitReason,
    },
}

/// Why calls wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// The app key's own calls-per-minute limit paces the next call.
    RateLimit,
    /// The platform banned the app key for exceeding its quota.
    Ban,
    /// The platform refused a query as too heavy for now.
    Overloaded,
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RateLimit => "rate limit",
            Self::Ban => "banned by the platform",
            Self::Overloaded => "platform overloaded",
        })
    }
}

/// Receives a run's activity; called from the run's tasks, so it must be
/// quick and must not block.
pub trait ActivitySink: Send + Sync {
    /// Takes one report.
    fn report(&self, activity: Activity);
}

/// Where library code reports its activity: a sink, or nowhere.
#[derive(Clone, Default)]
pub struct Reporter {
    sink: Option<Arc<dyn ActivitySink>>,
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter").field("listening", &self.sink.is_some()).finish()
    }
}

impl Reporter {
    /// Reports to `sink`.
    pub fn to(sink: Arc<dyn ActivitySink>) -> Self {
        Self { sink: Some(sink) }
    }

    /// Whether anyone listens: a caller with a report that costs something
    /// to make (a clock read, a string) asks first.
    pub fn is_listening(&self) -> bool {
        self.sink.is_some()
    }

    /// Reports `activity` when anyone listens; `activity` is only made then.
    pub fn report(&self, activity: impl FnOnce() -> Activity) {
        if let Some(sink) = &self.sink {
            sink.report(activity());
        }
    }

    /// Reports that calls wait `wait` from now for `reason`, when the wait is
    /// long enough to show ([`NOTABLE_WAIT`]).
    pub fn waiting(&self, wait: Duration, reason: WaitReason) {
        if wait >= NOTABLE_WAIT {
            self.report(|| Activity::Waiting {
                until: Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX),
                reason,
            });
        }
    }
}

/// Windows read plus those left: `left` of the range still to read, in
/// windows of `step` (the window just read).
pub fn windows_total(done: u64, left: chrono::Duration, step: chrono::Duration) -> u64 {
    let (left, step) = (left.num_milliseconds().max(0).unsigned_abs(), step.num_milliseconds().max(1).unsigned_abs());
    done + left.div_ceil(step)
}

/// A sink that keeps every report, for tests.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Collect(pub std::sync::Mutex<Vec<Activity>>);

#[cfg(test)]
impl Collect {
    /// A reporter to a new collector, and the collector.
    pub(crate) fn reporter() -> (Reporter, Arc<Self>) {
        let sink = Arc::new(Self::default());
        (Reporter::to(sink.clone()), sink)
    }

    /// The reports so far.
    pub(crate) fn taken(&self) -> Vec<Activity> {
        self.0.lock().unwrap().clone()
    }
}

#[cfg(test)]
impl ActivitySink for Collect {
    fn report(&self, activity: Activity) {
        self.0.lock().unwrap().push(activity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reporter_without_a_sink_makes_no_report() {
        let reporter = Reporter::default();
        assert!(!reporter.is_listening());
        reporter.report(|| unreachable!("nobody listens, so nothing is made"));
    }

    #[test]
    fn only_waits_worth_showing_are_reported() {
        let (reporter, sink) = Collect::reporter();
        reporter.waiting(Duration::from_millis(600), WaitReason::RateLimit);
        reporter.waiting(Duration::from_secs(48), WaitReason::Ban);
        let reports = sink.taken();
        assert_eq!(reports.len(), 1, "{reports:?}");
        let Activity::Waiting { until, reason } = &reports[0] else { panic!("{reports:?}") };
        assert_eq!(*reason, WaitReason::Ban);
        let left = (*until - Utc::now()).num_seconds();
        assert!((46..=48).contains(&left), "{left}");
    }

    #[test]
    fn the_total_counts_the_windows_left_at_the_current_size() {
        let hour = chrono::Duration::hours(1);
        assert_eq!(windows_total(3, hour * 5, hour), 8);
        assert_eq!(windows_total(3, hour * 5 / 2, hour), 6, "a part window is one more");
        assert_eq!(windows_total(4, chrono::Duration::zero(), hour), 4, "none left");
    }
}
