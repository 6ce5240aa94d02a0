//! When each (flow, shop) runs: the pure, clock-driven part of `serve`.
//!
//! A [`Slot`] is one flow for one shop. It is told the time (`now`) and
//! answers what to do; it never reads a clock or sleeps, so tests drive it
//! with a [`crate::clock::Clock::manual`] clock through days in microseconds.
//!
//! - The next fire: interval triggers are anchored to the last fire (`every:
//!   10m` fires 10 minutes after the previous fire, not on the wall-clock
//!   grid); cron triggers are read in the flow's time zone by croner, so
//!   `0 3 * * *` in Europe/Berlin stays 03:00 local across DST changes.
//! - Overlap: a fire while the slot runs is skipped (`overlap: skip`) or
//!   waits to run once right after the current run (`overlap: queue`; one
//!   waits at most, later ones are skipped).
//! - Catch-up: at start the slot is given its last fire (from the runs
//!   table). Fires missed while no process ran are skipped, unless
//!   `catch_up:` is set and the latest missed fire lies within that window
//!   of now: then one catch-up run starts at once.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::flow::{Flow, Overlap, Trigger};

/// Why a run was started, as recorded in `runs.trigger_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireKind {
    /// A fire on the trigger's schedule.
    Schedule,
    /// The one run for fires missed while no process ran.
    CatchUp,
    /// A fire that came while the last run was going, run after it.
    Queued,
}

impl FireKind {
    /// The recorded name: `schedule`, `catch_up`, `queued`.
    pub fn as_str(self) -> &'static str {
        match self {
            FireKind::Schedule => "schedule",
            FireKind::CatchUp => "catch_up",
            FireKind::Queued => "queued",
        }
    }
}

/// What a slot says to do at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start a run now.
    Start(FireKind),
    /// The fire at this time came while a run was going and was skipped.
    Skipped(DateTime<Utc>),
    /// The fire at this time came while a run was going; it runs after it.
    Queued(DateTime<Utc>),
}

/// A trigger ready to compute fire times.
#[derive(Debug, Clone)]
pub struct Schedule {
    timing: Timing,
    overlap: Overlap,
    catch_up: Option<chrono::Duration>,
}

#[derive(Debug, Clone)]
enum Timing {
    Every(chrono::Duration),
    Cron { cron: Box<croner::Cron>, timezone: chrono_tz::Tz },
}

/// A trigger the scheduler cannot use.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse (compile checks it, so only a
    /// hand-built flow gets here).
    #[error("cron expression {expression:?}: {reason}")]
    Cron {
        /// The expression.
        expression: String,
        /// croner's reason.
        reason: String,
    },
    /// A duration too long to compute with.
    #[error("{what} {duration:?} is too long")]
    TooLong {
        /// `every` or `catch_up`.
        what: &'static str,
        /// The duration.
        duration: Duration,
    },
}

impl Schedule {
    /// The schedule of `trigger` with its overlap and catch-up policy.
    pub fn new(trigger: &Trigger, overlap: Overlap, catch_up: Option<Duration>) -> Result<Self, ScheduleError> {
        let timing = match trigger {
            Trigger::Every(every) => Timing::Every(chrono_duration("every", *every)?),
            Trigger::Cron { expression, timezone } => {
                let cron = croner::Cron::from_str(expression).map_err(|error| ScheduleError::Cron {
                    expression: expression.clone(),
                    reason: error.to_string(),
                })?;
                Timing::Cron { cron: Box::new(cron), timezone: *timezone }
            }
        };
        let catch_up = catch_up.map(|window| chrono_duration("catch_up", window)).transpose()?;
        Ok(Self { timing, overlap, catch_up })
    }

    /// The schedule of `flow`, when it has a trigger.
    pub fn of(flow: &Flow) -> Option<Result<Self, ScheduleError>> {
        flow.trigger.as_ref().map(|trigger| Self::new(trigger, flow.overlap, flow.catch_up))
    }

    /// The first fire strictly after `after`. For intervals `after` is the
    /// last fire, which the next one is anchored to. `None` when a cron
    /// expression never fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.timing {
            Timing::Every(every) => after.checked_add_signed(*every),
            Timing::Cron { cron, timezone } => cron
                .find_next_occurrence(&after.with_timezone(timezone), false)
                .ok()
                .map(|next| next.with_timezone(&Utc)),
        }
    }

    /// The latest fire at or before `now` of the series that had a fire at
    /// `last` (`None` when there was none after `last`).
    fn latest_missed(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let first = self.next_after(last).filter(|first| *first <= now)?;
        match &self.timing {
            Timing::Every(every) => {
                let periods = (now - first).num_milliseconds() / every.num_milliseconds().max(1);
                first.checked_add_signed(*every * i32::try_from(periods).unwrap_or(i32::MAX))
            }
            Timing::Cron { cron, timezone } => cron
                .find_previous_occurrence(&now.with_timezone(timezone), true)
                .ok()
                .map(|fire| fire.with_timezone(&Utc))
                .filter(|fire| *fire >= first),
        }
    }
}

fn chrono_duration(what: &'static str, duration: Duration) -> Result<chrono::Duration, ScheduleError> {
    chrono::Duration::from_std(duration).map_err(|_| ScheduleError::TooLong { what, duration })
}

/// One flow for one shop: when it fires next and whether it runs.
#[derive(Debug, Clone)]
pub struct Slot {
    schedule: Schedule,
    /// When it fires next; `None`: never again.
    next: Option<DateTime<Utc>>,
    /// What the next fire is, and the fire time the one after is counted
    /// from (a catch-up run stands for the latest missed fire).
    next_kind: FireKind,
    anchor: Option<DateTime<Utc>>,
    running: bool,
    queued: bool,
}

impl Slot {
    /// A slot starting at `now` whose last fire (the last recorded run) was
    /// `last_fire`. Without one, an interval fires at once and a cron at its
    /// next time.
    pub fn new(schedule: Schedule, last_fire: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        let mut slot =
            Self { schedule, next: None, next_kind: FireKind::Schedule, anchor: None, running: false, queued: false };
        match last_fire {
            None => {
                slot.next = match slot.schedule.timing {
                    Timing::Every(_) => Some(now),
                    Timing::Cron { .. } => slot.schedule.next_after(now),
                }
            }
            Some(last) => match slot.schedule.latest_missed(last, now) {
                None => slot.next = slot.schedule.next_after(last),
                Some(missed) => {
                    let within = slot.schedule.catch_up.is_some_and(|window| now - missed <= window);
                    if within {
                        slot.next = Some(now);
                        slot.next_kind = FireKind::CatchUp;
                        slot.anchor = Some(missed);
                    } else {
                        tracing::info!(missed = %missed, "Fires missed while stopped are skipped (no catch_up window covers them).");
                        slot.next = slot.schedule.next_after(missed);
                    }
                }
            },
        }
        slot
    }

    /// Takes a changed trigger (a reloaded flow file): the next fire is
    /// worked out again as at start, while a run going on or queued stays.
    pub fn reschedule(&mut self, schedule: Schedule, last_fire: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        let (running, queued) = (self.running, self.queued);
        *self = Slot::new(schedule, last_fire, now);
        (self.running, self.queued) = (running, queued);
    }

    /// When it fires next.
    pub fn next_fire(&self) -> Option<DateTime<Utc>> {
        self.next
    }

    /// Whether a run of this slot is going.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// What to do at `now`: nothing until the next fire is due; then start
    /// a run, or (while one runs) skip or queue the fire. A start marks
    /// the slot running until [`Slot::finished`].
    pub fn poll(&mut self, now: DateTime<Utc>) -> Option<Decision> {
        let due = self.next.filter(|due| *due <= now)?;
        let kind = self.next_kind;
        let anchor = self.anchor.take().unwrap_or(due);
        self.next_kind = FireKind::Schedule;
        // Fires that went by while the process could not look (a stall, a
        // suspended laptop) are not replayed one by one.
        self.next = self
            .schedule
            .next_after(anchor)
            .map(|next| if next > now { next } else { self.schedule.next_after(now).unwrap_or(next) });
        if !self.running {
            self.running = true;
            return Some(Decision::Start(kind));
        }
        Some(match self.schedule.overlap {
            Overlap::Queue if !self.queued => {
                self.queued = true;
                Decision::Queued(due)
            }
            Overlap::Skip | Overlap::Queue => Decision::Skipped(due),
        })
    }

    /// The run ended (or never started: another process held the shop).
    /// Returns the queued fire to start now, if one waits; the slot then
    /// stays running.
    pub fn finished(&mut self) -> Option<FireKind> {
        if self.queued {
            self.queued = false;
            return Some(FireKind::Queued);
        }
        self.running = false;
        None
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::clock::Clock;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn every(secs: u64, overlap: Overlap, catch_up: Option<u64>) -> Schedule {
        Schedule::new(&Trigger::Every(Duration::from_secs(secs)), overlap, catch_up.map(Duration::from_secs)).unwrap()
    }

    fn cron(expression: &str, timezone: chrono_tz::Tz) -> Schedule {
        Schedule::new(&Trigger::Cron { expression: expression.into(), timezone }, Overlap::Skip, None).unwrap()
    }

    #[test]
    fn an_interval_fires_at_start_then_every_period_from_the_last_fire() {
        let (clock, hand) = Clock::manual(at(2026, 1, 5, 8, 0));
        let mut slot = Slot::new(every(600, Overlap::Skip, None), None, clock.now());
        assert_eq!(slot.poll(clock.now()), Some(Decision::Start(FireKind::Schedule)));
        assert_eq!(slot.finished(), None);
        hand.advance(chrono::Duration::minutes(9));
        assert_eq!(slot.poll(clock.now()), None);
        hand.advance(chrono::Duration::seconds(61));
        assert_eq!(slot.poll(clock.now()), Some(Decision::Start(FireKind::Schedule)));
        assert_eq!(slot.next_fire(), Some(at(2026, 1, 5, 8, 20)), "anchored to the fire at 08:10, not to the poll");
    }

    #[test]
    fn cron_follows_the_time_zone_across_daylight_saving() {
        let berlin = cron("0 3 * * *", chrono_tz::Europe::Berlin);
        // Berlin moves from UTC+1 to UTC+2 on 2026-03-29.
        assert_eq!(berlin.next_after(at(2026, 3, 27, 12, 0)), Some(at(2026, 3, 28, 2, 0)));
        assert_eq!(berlin.next_after(at(2026, 3, 28, 12, 0)), Some(at(2026, 3, 29, 1, 0)));
        assert_eq!(berlin.next_after(at(2026, 10, 24, 12, 0)), Some(at(2026, 10, 25, 2, 0)), "back to UTC+1");
        let shanghai = cron("30 9 * * 1-5", chrono_tz::Asia::Shanghai);
        // Friday 2026-01-09 after 09:30 Shanghai: next is Monday 09:30 = 01:30 UTC.
        assert_eq!(shanghai.next_after(at(2026, 1, 9, 2, 0)), Some(at(2026, 1, 12, 1, 30)));

        let (clock, hand) = Clock::manual(at(2026, 3, 28, 12, 0));
        let mut slot = Slot::new(berlin, None, clock.now());
        assert_eq!(slot.next_fire(), Some(at(2026, 3, 29, 1, 0)));
        hand.advance(chrono::Duration::hours(12));
        assert_eq!(slot.poll(clock.now()), None);
        hand.advance(chrono::Duration::hours(1));
        assert_eq!(slot.poll(clock.now()), Some(Decision::Start(FireKind::Schedule)));
    }

    #[test]
    fn a_fire_during_a_run_is_skipped_under_skip() {
        let (clock, hand) = Clock::manual(at(2026, 1, 5, 8, 0));
        let mut slot = Slot::new(every(60, Overlap::Skip, None), None, clock.now());
        assert_eq!(slot.poll(clock.now()), Some(Decision::Start(FireKind::Schedule)));
        hand.advance(chrono::Duration::seconds(60));
        assert_eq!(slot.poll(clock.now()), Some(Decision::Skipped(at(2026, 1, 5, 8, 1))));
        assert!(slot.is_running());
        hand.advance(chrono::Duration::seconds(30));
        assert_eq!(slot.finished(), None, "nothing queued under skip");
        assert!(!slot.is_running());
        hand.advance(chrono::Duration::seconds(30));
        assert_eq!(slot.poll(clock.now()), Some(Decision::Start(FireKind::Schedule)));
    }

    #[test]
    fn a_fire_during_a_run_runs_once_after_it_under_queue() {
        let (clock, hand) = Clock::manual(at(2026, 1, 5, 8, 0));
        let mut slot = Slot::new(every(60, Overlap::Queue, None), None, clock.now());
        assert_eq!(slot.poll(clock.now()), Some(Decision::Start(FireKind::Schedule)));
        hand.advance(chrono::Duration::seconds(60));
        assert_eq!(slot.poll(clock.now()), Some(Decision::Queued(at(2026, 1, 5, 8, 1))));
        hand.advance(chrono::Duration::seconds(60));
        assert_eq!(slot.poll(clock.now()), Some(Decision::Skipped(at(2026, 1, 5, 8, 2))), "one waits at most");
        assert_eq!(slot.finished(), Some(FireKind::Queued));
        assert!(slot.is_running(), "the queued run starts at once");
        assert_eq!(slot.finished(), None);
        assert!(!slot.is_running());
    }

    #[test]
    fn a_missed_fire_within_the_window_gets_one_catch_up_run() {
        let last = at(2026, 1, 5, 3, 0);
        // Hourly; stopped from 03:10 to 05:30, so 04:00 and 05:00 were missed.
        let now = at(2026, 1, 5, 5, 30);
        let mut slot = Slot::new(every(3600, Overlap::Skip, Some(3600)), Some(last), now);
        assert_eq!(slot.poll(now), Some(Decision::Start(FireKind::CatchUp)));
        assert_eq!(slot.next_fire(), Some(at(2026, 1, 5, 6, 0)), "the series goes on from the missed 05:00");
        slot.finished();
        assert_eq!(slot.poll(now + chrono::Duration::minutes(10)), None, "one catch-up run, not one per missed fire");
    }

    #[test]
    fn a_missed_fire_beyond_the_window_or_without_one_is_skipped() {
        let last = at(2026, 1, 5, 3, 0);
        let now = at(2026, 1, 5, 5, 30);
        for schedule in [every(3600, Overlap::Skip, Some(20 * 60)), every(3600, Overlap::Skip, None)] {
            let mut slot = Slot::new(schedule, Some(last), now);
            assert_eq!(slot.poll(now), None);
            assert_eq!(slot.next_fire(), Some(at(2026, 1, 5, 6, 0)));
            assert_eq!(slot.poll(at(2026, 1, 5, 6, 0)), Some(Decision::Start(FireKind::Schedule)));
        }
        // Nothing missed: the series simply goes on.
        let slot = Slot::new(every(3600, Overlap::Skip, Some(3600)), Some(last), at(2026, 1, 5, 3, 30));
        assert_eq!(slot.next_fire(), Some(at(2026, 1, 5, 4, 0)));
    }

    #[test]
    fn cron_catch_up_counts_from_the_latest_missed_fire() {
        let nightly = Schedule::new(
            &Trigger::Cron { expression: "0 2 * * *".into(), timezone: chrono_tz::Asia::Shanghai },
            Overlap::Skip,
            Some(Duration::from_secs(6 * 3600)),
        )
        .unwrap();
        // 02:00 Shanghai = 18:00 UTC. Last ran the 4th; down until 21:00 UTC on the 5th.
        let last = at(2026, 1, 3, 18, 0);
        let mut slot = Slot::new(nightly.clone(), Some(last), at(2026, 1, 5, 21, 0));
        assert_eq!(slot.poll(at(2026, 1, 5, 21, 0)), Some(Decision::Start(FireKind::CatchUp)));
        assert_eq!(slot.next_fire(), Some(at(2026, 1, 6, 18, 0)));
        let late = Slot::new(nightly, Some(last), at(2026, 1, 6, 1, 0));
        assert_eq!(late.next_fire(), Some(at(2026, 1, 6, 18, 0)), "7 h after the missed fire: past the window");
    }

    #[test]
    fn a_long_stall_does_not_replay_every_missed_interval() {
        let start = at(2026, 1, 5, 8, 0);
        let mut slot = Slot::new(every(60, Overlap::Skip, None), None, start);
        assert_eq!(slot.poll(start), Some(Decision::Start(FireKind::Schedule)));
        slot.finished();
        let later = start + chrono::Duration::minutes(30) + chrono::Duration::seconds(10);
        assert_eq!(slot.poll(later), Some(Decision::Start(FireKind::Schedule)));
        slot.finished();
        assert_eq!(slot.poll(later), None);
        assert_eq!(slot.next_fire(), Some(later + chrono::Duration::seconds(60)));
    }
}
