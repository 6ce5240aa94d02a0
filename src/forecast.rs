//! Demand forecasting for restock suggestions: a daily sales series in, a
//! 7-day forecast out. Pure and deterministic: no I/O, no randomness, so the
//! same history always gives the same forecast. See `docs/restock.md`.
//!
//! Three models compete, all with a weekly season (shops sell differently on
//! each weekday):
//!
//! - **naive** ("same day last week"): the baseline every other model must
//!   beat;
//! - **seasonal mean**: per weekday, the mean of the last
//!   [`SEASONAL_WEEKS`] same weekdays;
//! - **Holt-Winters**, additive, period 7: level, trend and season smoothed,
//!   the three parameters picked by a small grid search on the training data.
//!
//! The model is chosen by a rolling-origin back-test: for each of the last
//! [`BACKTEST_FOLDS`] weeks, every model is fitted on the days before it and
//! forecasts it; the model with the lowest MAPE over those weeks wins. MAPE
//! here skips days whose actual sales were zero (a percentage of zero is
//! undefined); when every actual is zero, there is no MAPE.

/// The length of the season: a week of daily values.
pub const PERIOD: usize = 7;
/// How many days a forecast covers.
pub const HORIZON: usize = 7;
/// How many same weekdays the seasonal mean averages.
pub const SEASONAL_WEEKS: usize = 4;
/// How many weeks (at most) the back-test forecasts, each from the days before it.
pub const BACKTEST_FOLDS: usize = 4;
/// The shortest series that is back-tested: two weeks to fit Holt-Winters
/// (one to start the season, one to start the trend) and one to test. A
/// shorter series gets the seasonal mean, untested.
pub const MIN_BACKTEST_DAYS: usize = 3 * PERIOD;

/// Holt-Winters parameters tried by the grid search: level, trend, season.
const ALPHAS: [f64; 4] = [0.1, 0.2, 0.3, 0.5];
const BETAS: [f64; 3] = [0.0, 0.05, 0.1];
const GAMMAS: [f64; 4] = [0.1, 0.2, 0.3, 0.5];

/// A forecasting model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Model {
    /// Same day last week.
    Naive,
    /// Per weekday, the mean of the last [`SEASONAL_WEEKS`] same weekdays.
    SeasonalMean,
    /// Additive Holt-Winters with period 7.
    HoltWinters,
}

impl Model {
    /// Every model, simplest first: on equal back-test error the simpler wins.
    pub const ALL: [Model; 3] = [Model::Naive, Model::SeasonalMean, Model::HoltWinters];

    /// The model's name as stored and shown: `naive`, `seasonal_mean`, `holt_winters`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Model::Naive => "naive",
            Model::SeasonalMean => "seasonal_mean",
            Model::HoltWinters => "holt_winters",
        }
    }

    /// The next [`HORIZON`] days after `history`, never negative.
    pub fn predict(&self, history: &[f64]) -> [f64; HORIZON] {
        let mut days = match self {
            Model::Naive => naive(history),
            Model::SeasonalMean => seasonal_mean(history, SEASONAL_WEEKS),
            // Holt-Winters needs two seasons to start; with less it has
            // nothing better than the seasonal mean.
            Model::HoltWinters => {
                HoltWinters::fit(history).map_or_else(|| seasonal_mean(history, SEASONAL_WEEKS), |hw| hw.forecast())
            }
        };
        // Sales cannot be negative; a falling trend would otherwise say so.
        for day in &mut days {
            *day = if day.is_finite() { day.max(0.0) } else { 0.0 };
        }
        days
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`forecast`] decided for one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// The model chosen.
    pub model: Model,
    /// The next [`HORIZON`] days, the first being the day after the series.
    pub days: [f64; HORIZON],
    /// The chosen model's back-test MAPE in percent; `None` when the series
    /// was too short to back-test or every tested day sold nothing.
    pub mape_model: Option<f64>,
    /// The naive baseline's back-test MAPE on the same days.
    pub mape_naive: Option<f64>,
    /// The chosen model's back-test errors (actual − forecast), one per
    /// tested day; empty when there was no back-test. Their spread sizes
    /// the safety stock.
    pub errors: Vec<f64>,
}

/// Forecasts the [`HORIZON`] days after `history` (daily sales, oldest
/// first, the last value being the most recent whole day).
///
/// A series of [`MIN_BACKTEST_DAYS`] or more is back-tested and gets the
/// model with the lowest MAPE (the simplest on a tie, the naive baseline when
/// no model has a MAPE because nothing sold on the tested days). A shorter
/// series gets the seasonal mean of what there is, untested. Values that are
/// not finite count as zero.
pub fn forecast(history: &[f64]) -> Forecast {
    let history: Vec<f64> = history.iter().map(|v| if v.is_finite() { *v } else { 0.0 }).collect();
    if history.len() < MIN_BACKTEST_DAYS {
        let model = Model::SeasonalMean;
        return Forecast {
            model,
            days: model.predict(&history),
            mape_model: None,
            mape_naive: None,
            errors: Vec::new(),
        };
    }
    let tests: Vec<Backtest> = Model::ALL.iter().map(|model| Backtest::run(*model, &history)).collect();
    // `ALL` is simplest first and `min_by` keeps the first of equals.
    let best = tests
        .iter()
        .filter_map(|t| t.mape.map(|mape| (t, mape)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(&tests[0], |(t, _)| t);
    Forecast {
        model: best.model,
        days: best.model.predict(&history),
        mape_model: best.mape,
        mape_naive: tests[0].mape,
        errors: best.errors.clone(),
    }
}

/// One model's rolling-origin back-test over the last weeks of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Backtest {
    /// The model tested.
    pub model: Model,
    /// MAPE in percent over the tested days with nonzero sales.
    pub mape: Option<f64>,
    /// Actual − forecast, for every tested day.
    pub errors: Vec<f64>,
}

impl Backtest {
    /// Forecasts each of the last weeks of `history` (up to
    /// [`BACKTEST_FOLDS`], always leaving two weeks to fit on) from the days
    /// before it.
    pub fn run(model: Model, history: &[f64]) -> Self {
        let folds = (history.len().saturating_sub(2 * PERIOD) / HORIZON).min(BACKTEST_FOLDS);
        let (mut errors, mut pct_sum, mut pct_days) = (Vec::new(), 0.0, 0usize);
        for fold in (1..=folds).rev() {
            let origin = history.len() - fold * HORIZON;
            let predicted = model.predict(&history[..origin]);
            for (actual, predicted) in history[origin..origin + HORIZON].iter().zip(predicted) {
                errors.push(actual - predicted);
                if *actual != 0.0 {
                    pct_sum += ((actual - predicted) / actual).abs();
                    pct_days += 1;
                }
            }
        }
        let mape = (pct_days > 0).then(|| 100.0 * pct_sum / pct_days as f64);
        Self { model, mape, errors }
    }
}

/// Same day last week; with less than a week of history, the mean of it.
fn naive(history: &[f64]) -> [f64; HORIZON] {
    let n = history.len();
    if n < PERIOD {
        return [mean(history); HORIZON];
    }
    std::array::from_fn(|h| history[n - PERIOD + h])
}

/// Per weekday, the mean of the last `weeks` same weekdays in `history`;
/// with less than a week of history, the mean of it.
fn seasonal_mean(history: &[f64], weeks: usize) -> [f64; HORIZON] {
    let n = history.len();
    if n < PERIOD {
        return [mean(history); HORIZON];
    }
    std::array::from_fn(|h| {
        // The same weekday as day n + h, going back a week at a time.
        let same: Vec<f64> = (1..=weeks)
            .map_while(|week| (n + h).checked_sub(week * PERIOD))
            .filter(|i| *i < n)
            .map(|i| history[i])
            .collect();
        mean(&same)
    })
}

/// The mean, zero for an empty slice.
fn mean(values: &[f64]) -> f64 {
    if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 }
}

/// The population standard deviation, zero for fewer than two values.
pub fn std_dev(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / values.len() as f64).sqrt()
}

/// Additive Holt-Winters after a pass over a series.
#[derive(Debug, Clone, PartialEq)]
struct HoltWinters {
    level: f64,
    trend: f64,
    /// The season, indexed by position in the series modulo [`PERIOD`].
    season: [f64; PERIOD],
    /// The series length, to know which weekday comes next.
    len: usize,
}

impl HoltWinters {
    /// The parameters with the lowest one-step-ahead squared error on
    /// `history`, and the state they end in; `None` with less than two
    /// seasons of history.
    fn fit(history: &[f64]) -> Option<Self> {
        let mut best: Option<(f64, Self)> = None;
        for alpha in ALPHAS {
            for beta in BETAS {
                for gamma in GAMMAS {
                    let (sse, state) = Self::smooth(history, alpha, beta, gamma)?;
                    // Strictly lower: the first (smoothest) of equals wins.
                    if best.as_ref().is_none_or(|(b, _)| sse < *b) {
                        best = Some((sse, state));
                    }
                }
            }
        }
        best.map(|(_, state)| state)
    }

    /// One pass with the given parameters: the sum of squared one-step
    /// errors and the final state. The first season starts the level and the
    /// season, the first two the trend; smoothing runs from the second season.
    fn smooth(history: &[f64], alpha: f64, beta: f64, gamma: f64) -> Option<(f64, Self)> {
        if history.len() < 2 * PERIOD {
            return None;
        }
        let first = mean(&history[..PERIOD]);
        let second = mean(&history[PERIOD..2 * PERIOD]);
        let mut state = Self {
            level: first,
            trend: (second - first) / PERIOD as f64,
            season: std::array::from_fn(|i| history[i] - first),
            len: history.len(),
        };
        let mut sse = 0.0;
        for (t, actual) in history.iter().enumerate().skip(PERIOD) {
            let s = state.season[t % PERIOD];
            let predicted = state.level + state.trend + s;
            sse += (actual - predicted).powi(2);
            let level = alpha * (actual - s) + (1.0 - alpha) * (state.level + state.trend);
            state.trend = beta * (level - state.level) + (1.0 - beta) * state.trend;
            state.level = level;
            state.season[t % PERIOD] = gamma * (actual - level) + (1.0 - gamma) * s;
        }
        Some((sse, state))
    }

    fn forecast(&self) -> [f64; HORIZON] {
        std::array::from_fn(|h| self.level + (h + 1) as f64 * self.trend + self.season[(self.len + h) % PERIOD])
    }
}

/// The z-score below which `p` of a standard normal distribution lies
/// (the inverse normal CDF), by Acklam's rational approximation (relative
/// error below 1.2e-9). `p` is clamped into `(0, 1)`: 0 and 1 have no finite
/// answer.
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const LOW: f64 = 0.024_25;
    let p = if p.is_nan() { 0.5 } else { p.clamp(1e-12, 1.0 - 1e-12) };
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WEEK: [f64; 7] = [10.0, 12.0, 11.0, 13.0, 15.0, 30.0, 28.0];

    fn weekly(weeks: usize) -> Vec<f64> {
        (0..weeks * PERIOD).map(|i| WEEK[i % PERIOD]).collect()
    }

    /// A deterministic pseudo-random stream in [-1, 1) (no rand in unit tests
    /// of a pure module: a fixed LCG keeps them reproducible).
    fn noise(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        }
    }

    #[test]
    fn every_model_recovers_a_clean_weekly_pattern() {
        let history = weekly(8);
        for model in Model::ALL {
            let days = model.predict(&history);
            for (h, day) in days.iter().enumerate() {
                assert!((day - WEEK[h]).abs() < 1e-6, "{model}: day {h} is {day}, expected {}", WEEK[h]);
            }
        }
        let chosen = forecast(&history);
        assert_eq!(chosen.mape_model, Some(0.0));
        assert_eq!(chosen.model, Model::Naive, "on a tie the simplest model wins");
    }

    #[test]
    fn the_forecast_continues_on_the_right_weekday() {
        // 8 weeks and 3 days: the next day is the 4th of the week.
        let history: Vec<f64> = (0..8 * PERIOD + 3).map(|i| WEEK[i % PERIOD]).collect();
        let days = forecast(&history).days;
        assert!((days[0] - WEEK[3]).abs() < 1e-6, "{days:?}");
    }

    #[test]
    fn holt_winters_beats_naive_on_a_noisy_seasonal_series_with_trend() {
        let mut rand = noise(42);
        let history: Vec<f64> =
            (0..10 * PERIOD).map(|i| 20.0 + 0.3 * i as f64 + WEEK[i % PERIOD] + 6.0 * rand()).collect();
        let hw = Backtest::run(Model::HoltWinters, &history);
        let naive = Backtest::run(Model::Naive, &history);
        let (hw_mape, naive_mape) = (hw.mape.unwrap(), naive.mape.unwrap());
        assert!(hw_mape < naive_mape, "Holt-Winters {hw_mape:.2} % vs naive {naive_mape:.2} %");
        let chosen = forecast(&history);
        assert_ne!(chosen.model, Model::Naive);
        assert!(chosen.mape_model.unwrap() < chosen.mape_naive.unwrap());
        assert_eq!(chosen.errors.len(), BACKTEST_FOLDS * HORIZON);
    }

    #[test]
    fn holt_winters_follows_a_trend() {
        let history: Vec<f64> = (0..8 * PERIOD).map(|i| 5.0 + i as f64 + WEEK[i % PERIOD]).collect();
        let days = Model::HoltWinters.predict(&history);
        let next = 8 * PERIOD;
        assert!((days[0] - (5.0 + next as f64 + WEEK[0])).abs() < 1.0, "{days:?}");
    }

    #[test]
    fn short_series_get_the_seasonal_mean_untested() {
        let history = weekly(2);
        let chosen = forecast(&history);
        assert_eq!(chosen.model, Model::SeasonalMean);
        assert_eq!((chosen.mape_model, chosen.mape_naive), (None, None));
        assert!(chosen.errors.is_empty());
        assert!((chosen.days[5] - WEEK[5]).abs() < 1e-9);
        // Less than a week: a flat mean.
        assert_eq!(forecast(&[2.0, 4.0]).days, [3.0; HORIZON]);
        assert_eq!(forecast(&[]).days, [0.0; HORIZON]);
    }

    #[test]
    fn an_all_zero_series_forecasts_zero_without_a_mape() {
        let chosen = forecast(&[0.0; 56]);
        assert_eq!(chosen.days, [0.0; HORIZON]);
        assert_eq!((chosen.mape_model, chosen.mape_naive), (None, None));
        assert_eq!(chosen.model, Model::Naive);
    }

    #[test]
    fn the_inverse_normal_cdf_matches_known_quantiles() {
        for (p, z) in [(0.5, 0.0), (0.95, 1.644_853_6), (0.99, 2.326_347_9), (0.01, -2.326_347_9), (0.8, 0.841_621_2)] {
            assert!((inverse_normal_cdf(p) - z).abs() < 1e-6, "z({p}) = {}", inverse_normal_cdf(p));
        }
        assert!(inverse_normal_cdf(1.0).is_finite() && inverse_normal_cdf(0.0).is_finite());
        assert_eq!(inverse_normal_cdf(f64::NAN), 0.0);
    }

    proptest! {
        #[test]
        fn forecasts_are_finite_and_never_negative(
            history in proptest::collection::vec(prop_oneof![Just(0.0), 0.0..500.0f64, Just(f64::NAN)], 0..120)
        ) {
            let chosen = forecast(&history);
            prop_assert!(chosen.days.iter().all(|d| d.is_finite() && *d >= 0.0), "{:?}", chosen.days);
            for mape in [chosen.mape_model, chosen.mape_naive].into_iter().flatten() {
                prop_assert!(mape.is_finite() && mape >= 0.0);
            }
            prop_assert!(chosen.errors.iter().all(|e| e.is_finite()));
            if let (Some(model), Some(naive)) = (chosen.mape_model, chosen.mape_naive) {
                prop_assert!(model <= naive);
            }
        }
    }
}
