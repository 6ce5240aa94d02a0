//! Progress bars on stderr, drawn only when it is a terminal: how far a
//! run's windows got, the orders stored, the calls used, and what the calls
//! wait for ("waiting 48s: rate limit", "banned until 12:03:10"), from what
//! the library reports (`crate::activity`).
//!
//! Every bar hangs from one [`MultiProgress`] ([`bars`]): log lines are
//! written with the bars lifted (`term::AboveBars`), and a command prints its
//! own lines only once its bar is finished or cleared, so neither overwrites
//! the other.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::term;
use crate::activity::{Activity, ActivitySink, Reporter, WaitReason};
use crate::nodes::BuildContext;

/// The process's bars: drawn on stderr when it is a terminal, hidden (and
/// free) when it is not.
pub fn bars() -> &'static MultiProgress {
    static BARS: LazyLock<MultiProgress> = LazyLock::new(|| {
        let target =
            if term::stderr_is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        MultiProgress::with_draw_target(target)
    });
    &BARS
}

/// How often a bar is redrawn while nothing is reported, so a wait counts
/// down and the elapsed time moves.
const TICK: Duration = Duration::from_millis(250);

/// One bar at a time for the runs of a command, fed by the runs' activity.
/// One reporter serves every run: a rate gate keeps the first it is given.
pub struct RunProgress {
    shown: Arc<Shown>,
}

/// What the current bar shows.
#[derive(Default)]
struct Shown {
    /// The bar, and the style it takes once there are windows to count
    /// (until then a spinner: a run with no windows has no bar to fill).
    bar: Mutex<Option<(ProgressBar, ProgressStyle)>>,
    counts: Mutex<Counts>,
}

/// What the runs reported since the bar began.
#[derive(Debug, Default, Clone, PartialEq)]
struct Counts {
    /// (windows read, windows in all) by node.
    windows: BTreeMap<String, (u64, u64)>,
    stored: u64,
    calls: u64,
    waiting: Option<(DateTime<Utc>, WaitReason)>,
}

impl RunProgress {
    /// Bars for the runs of this command, or `None` when stderr is not a
    /// terminal: then nothing listens and the runs report nothing.
    pub fn on_stderr() -> Option<Self> {
        term::stderr_is_terminal().then(|| Self { shown: Arc::default() })
    }

    /// A bar for a run of the flow `label` whose nodes `build` builds, or
    /// `None` when stderr is not a terminal.
    pub fn for_run(build: &mut BuildContext, label: &str) -> Option<Self> {
        let progress = Self::on_stderr()?;
        progress.watch(build);
        progress.begin(label);
        Some(progress)
    }

    /// Makes the nodes `build` builds, and the rate gates of its shops,
    /// report to these bars.
    pub fn watch(&self, build: &mut BuildContext) {
        let reporter = Reporter::to(self.shown.clone());
        for shop in build.platforms.names() {
            if let Some(platform) = build.platforms.get(shop) {
                platform.guard().gate().report_to(&reporter);
            }
        }
        build.activity = reporter;
    }

    /// Starts a new bar, `label` before it, with nothing counted yet.
    pub fn begin(&self, label: &str) {
        *lock(&self.shown.counts) = Counts::default();
        let shown = self.shown.clone();
        let activity = move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
            let _ = out.write_str(&lock(&shown.counts).describe(Utc::now()));
        };
        let bar_style = if term::colours_on_stderr() { "{bar:30.cyan/blue}" } else { "{bar:30}" };
        let style = |template: &str| {
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key("activity", activity.clone())
        };
        let spinner = style("{spinner} {prefix} [{elapsed_precise}] {activity}");
        let windows =
            style(&format!("{{prefix}} [{{elapsed_precise}}] {bar_style} {{pos}}/{{len}} windows · {{activity}}"));
        let bar = bars().add(ProgressBar::new(0).with_style(spinner).with_prefix(label.to_owned()));
        bar.enable_steady_tick(TICK);
        if let Some((previous, _)) = lock(&self.shown.bar).replace((bar, windows)) {
            previous.finish_and_clear();
        }
    }

    /// Ends the bar, leaving its last state on the screen.
    pub fn finish(&self) {
        if let Some((bar, _)) = lock(&self.shown.bar).take() {
            bar.finish();
        }
    }

    /// Ends the bar and takes it off the screen.
    pub fn clear(&self) {
        if let Some((bar, _)) = lock(&self.shown.bar).take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for RunProgress {
    /// A command that fails midway leaves no bar drawn over its error.
    fn drop(&mut self) {
        self.clear();
    }
}

impl ActivitySink for Shown {
    fn report(&self, activity: Activity) {
        let mut counts = lock(&self.counts);
        let windows = counts.add(activity);
        drop(counts);
        if let (Some((done, total)), Some((bar, windows_style))) = (windows, lock(&self.bar).as_ref()) {
            if bar.length() == Some(0) {
                bar.set_style(windows_style.clone());
            }
            bar.set_length(total);
            bar.set_position(done);
        }
    }
}

impl Counts {
    /// Counts `activity`; the windows of every node together when they
    /// moved.
    fn add(&mut self, activity: Activity) -> Option<(u64, u64)> {
        match activity {
            Activity::Windows { node_id, done, total } => {
                self.windows.insert(node_id, (done, total.max(done)));
                let sum = self.windows.values().fold((0, 0), |(done, total), (d, t)| (done + d, total + t));
                return Some(sum);
            }
            Activity::OrdersStored(orders) => self.stored += orders,
            Activity::Called => {
                // A call went out: whatever it waited for is over.
                self.calls += 1;
                self.waiting = None;
            }
            Activity::Waiting { until, reason } => self.waiting = Some((until, reason)),
        }
        None
    }

    /// The counts and the wait in force at `now`, for the bar's line.
    fn describe(&self, now: DateTime<Utc>) -> String {
        let mut line = format!("{} orders stored · {} calls", self.stored, self.calls);
        match self.waiting {
            Some((until, WaitReason::Ban)) if until > now => {
                let _ = write!(line, " · banned until {}", until.with_timezone(&Local).format("%H:%M:%S"));
            }
            Some((until, reason)) if until > now => {
                let left = (until - now).num_milliseconds().max(0) as u64;
                let _ = write!(line, " · waiting {}s: {reason}", left.div_ceil(1000));
            }
            _ => {}
        }
        line
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_sums_every_node_and_shows_the_wait_until_a_call_goes_out() {
        let now = Utc::now();
        let mut counts = Counts::default();
        let windows = |node_id: &str, done, total| Activity::Windows { node_id: node_id.into(), done, total };
        assert_eq!(counts.add(windows("taobao", 2, 10)), Some((2, 10)));
        assert_eq!(counts.add(windows("douyin", 1, 4)), Some((3, 14)));
        assert_eq!(counts.add(windows("taobao", 3, 9)), Some((4, 13)), "a node's latest report replaces its last");
        counts.add(Activity::OrdersStored(120));
        counts.add(Activity::Called);
        let until = now + chrono::Duration::milliseconds(47_200);
        counts.add(Activity::Waiting { until, reason: WaitReason::RateLimit });
        assert_eq!(counts.describe(now), "120 orders stored · 1 calls · waiting 48s: rate limit");
        assert_eq!(counts.describe(until), "120 orders stored · 1 calls", "a wait past its end is not shown");
        counts.add(Activity::Called);
        assert_eq!(counts.describe(now), "120 orders stored · 2 calls", "the call that went out ended the wait");
    }

    #[test]
    fn a_ban_shows_when_it_ends() {
        let now = Utc::now();
        let until = now + chrono::Duration::seconds(90);
        let counts = Counts { waiting: Some((until, WaitReason::Ban)), ..Counts::default() };
        let local = until.with_timezone(&Local).format("%H:%M:%S").to_string();
        assert_eq!(counts.describe(now), format!("0 orders stored · 0 calls · banned until {local}"));
    }
}
