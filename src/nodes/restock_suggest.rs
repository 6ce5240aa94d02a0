//! `restock_suggest`: forecasts each SKU's sales from the stored orders and
//! suggests how many units to order. See `docs/restock.md`.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::Days;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::{BuildContext, BuildError, Built, Emitter, Fields, NodeError, NodeKind, Output, Role, Shape, Source};
use crate::clock::Clock;
use crate::forecast::{self, Forecast, HORIZON};
use crate::record::Record;
use crate::store::RestockSuggestion;

/// For each SKU the shop sold in the last `history_days` whole days (in
/// `timezone`), forecasts the next days' sales and suggests how many units
/// to order so that stock lasts the supplier's lead time.
///
/// Sales are the units of stored order lines, by the day the order was
/// created, leaving out closed orders and lines with a refund in progress or
/// succeeded. The forecast is the best of three models (same day last week,
/// a per-weekday mean, Holt-Winters) by a back-test on the last four weeks;
/// the suggestion is max(0, ceil(demand over the lead time + safety stock −
/// available − on order)), stock from the `stock` table (a SKU it lacks has
/// none). Each suggestion is stored in `restock_suggestions`, written to
/// `csv` if set, and sent on as one record per SKU, busiest first (fields
/// `sku`, `model`, `mape_model`, `mape_naive`, `forecast_7d`,
/// `lead_time_days`, `demand_over_lead`, `safety_stock`, `available`,
/// `on_order`, `suggested`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockSuggestSettings {
    /// The shop in `orderflow.yaml`; the flow's `shop:` when left out.
    #[serde(default)]
    pub shop: Option<String>,
    /// How many whole days of sales before today to forecast from. Eight
    /// weeks give the back-test four weeks and the models four to learn on.
    #[serde(default = "default_history_days")]
    #[schemars(range(min = 7, max = 366))]
    pub history_days: u32,
    /// Days from placing a supplier order to its arrival: the stock must
    /// cover this many days of sales.
    #[serde(default = "default_lead_time_days")]
    #[schemars(range(min = 1, max = 365))]
    pub lead_time_days: u32,
    /// The wanted chance of not running out during the lead time, 0.5 to
    /// 0.999; sets the safety stock through the normal distribution's z.
    #[serde(default = "default_service_level")]
    #[schemars(range(min = 0.5, max = 0.999))]
    pub service_level: f64,
    /// The time zone whose days sales are counted in (the shop's own).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// A CSV file to write the suggestions to as well (header, one row per
    /// SKU), relative to the flow file. Replaced whole: a failed run leaves
    /// the previous file. A test or dry run writes it to a scratch folder.
    #[serde(default)]
    pub csv: Option<PathBuf>,
    /// A SKU whose first sale in the window is fewer days ago than this is
    /// left out: too new to forecast.
    #[serde(default = "default_min_history_days")]
    #[schemars(range(min = 1, max = 366))]
    pub min_history_days: u32,
}

fn default_history_days() -> u32 {
    56
}

fn default_lead_time_days() -> u32 {
    7
}

fn default_service_level() -> f64 {
    0.95
}

fn default_timezone() -> String {
    "Asia/Shanghai".to_owned()
}

fn default_min_history_days() -> u32 {
    14
}

/// The `restock_suggest` node type.
pub struct RestockSuggest;

impl NodeKind for RestockSuggest {
    const TYPE: &'static str = "restock_suggest";
    const ROLE: Role = Role::Source;
    type Settings = RestockSuggestSettings;

    fn example() -> &'static str {
        "suggest:\n  use: restock_suggest\n  with:\n    history_days: 56\n    lead_time_days: 7\n    service_level: 0.95\n    csv: out/restock.csv\n"
    }

    /// One suggestion per SKU (see `restock_suggestions` in docs/store.md).
    fn output() -> Output {
        let (text, whole, number) =
            (|| Shape::of_type("string"), || Shape::of_type("integer"), || Shape::of_type("number"));
        let maybe_number = || Shape::Value { types: vec!["number".into(), "null".into()], values: &[] };
        Output::Records(
            Fields::default()
                .field("run_id", text(), "The run that computed it.")
                .field("sku", text(), "The SKU: the merchant's `outer_sku_id`, else the platform's `sku_id`.")
                .field("model", text(), "The forecasting model chosen (`naive`, `seasonal_mean`, `holt_winters`).")
                .field("mape_model", maybe_number(), "The chosen model's back-test MAPE in percent, if it had one.")
                .field("mape_naive", maybe_number(), "The naive baseline's back-test MAPE in percent, if it had one.")
                .field("forecast_7d", Shape::List(Box::new(number())), "Units forecast for each of the next 7 days.")
                .field("lead_time_days", whole(), "Days until an order placed now arrives.")
                .field("demand_over_lead", number(), "Units forecast to sell over the lead time.")
                .field("safety_stock", whole(), "Units kept against forecast error.")
                .field("available", whole(), "Units that can still be sold (on hand minus frozen).")
                .field("on_order", whole(), "Units suppliers are bringing.")
                .field("suggested", whole(), "Units to order."),
        )
    }

    fn build(settings: RestockSuggestSettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        let platform = ctx.platform(settings.shop.as_deref())?;
        let timezone: chrono_tz::Tz = settings.timezone.parse().map_err(|_| {
            BuildError::setting("timezone", format!("{:?} is not an IANA time zone", settings.timezone))
        })?;
        if !(0.5..=0.999).contains(&settings.service_level) {
            return Err(BuildError::setting("service_level", "must be 0.5 to 0.999"));
        }
        if settings.min_history_days > settings.history_days {
            return Err(BuildError::setting("min_history_days", "cannot exceed history_days"));
        }
        Ok(Built::Source(Box::new(RestockSource {
            z: forecast::inverse_normal_cdf(settings.service_level),
            csv: settings.csv.as_deref().map(|path| ctx.resolve_output(path)),
            platform: platform.name().to_owned(),
            shop: platform.shop().to_owned(),
            clock: ctx.clock.clone(),
            timezone,
            settings,
        })))
    }
}

struct RestockSource {
    settings: RestockSuggestSettings,
    /// The z-score of `service_level`.
    z: f64,
    csv: Option<PathBuf>,
    platform: String,
    shop: String,
    clock: Clock,
    timezone: chrono_tz::Tz,
}

/// The numbers a suggestion is made of.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    demand_over_lead: f64,
    safety_stock: i64,
    suggested: i64,
}

/// Demand over the lead time (the 7-day forecast repeated week after week
/// for longer lead times), safety stock z × σ × √lead time, and the units to
/// order. σ is the spread of the back-test errors, which is what the
/// forecast actually gets wrong; without a back-test, that of daily sales.
fn figures(forecast: &Forecast, history: &[f64], lead_time_days: u32, z: f64, stock: f64) -> Figures {
    let lead = lead_time_days as usize;
    let demand_over_lead: f64 = (0..lead).map(|d| forecast.days[d % HORIZON]).sum();
    let sigma =
        if forecast.errors.len() >= 2 { forecast::std_dev(&forecast.errors) } else { forecast::std_dev(history) };
    let safety = (z * sigma * f64::from(lead_time_days).sqrt()).ceil().max(0.0);
    let suggested = (demand_over_lead + safety - stock).ceil().max(0.0);
    // Both are finite and far below i64::MAX for any real shop: the casts
    // only drop the (zero) fraction.
    Figures { demand_over_lead, safety_stock: safety as i64, suggested: suggested as i64 }
}

#[async_trait]
impl Source for RestockSource {
    async fn run(&mut self, out: &mut Emitter<'_>) -> Result<(), NodeError> {
        let ctx = out.ctx();
        let now = self.clock.now();
        let today = now.with_timezone(&self.timezone).date_naive();
        let days = self.settings.history_days;
        let first_day = today - Days::new(u64::from(days));
        let sales = ctx.store.daily_sales(&self.platform, &self.shop, self.timezone, first_day, days).await?;
        let stock = ctx.store.stock_levels().await?;

        let mut busiest: Vec<(String, Vec<u64>)> = sales.into_iter().collect();
        busiest.sort_by(|a, b| b.1.iter().sum::<u64>().cmp(&a.1.iter().sum()).then_with(|| a.0.cmp(&b.0)));
        let mut suggestions = Vec::with_capacity(busiest.len());
        let mut too_new = 0;
        for (sku, series) in busiest {
            // The series starts at the SKU's first sale: days before it were
            // not zero demand but no product.
            let first_sale = series.iter().position(|units| *units > 0).unwrap_or(series.len());
            let history: Vec<f64> = series[first_sale..].iter().map(|units| *units as f64).collect();
            if history.len() < self.settings.min_history_days as usize {
                too_new += 1;
                continue;
            }
            let forecast = forecast::forecast(&history);
            let level = stock.get(&sku);
            let (available, on_order) = level.map_or((0, 0), |l| (l.available(), l.on_order));
            let figures =
                figures(&forecast, &history, self.settings.lead_time_days, self.z, (available + on_order) as f64);
            tracing::info!(node_id = %ctx.node_id, sku, model = %forecast.model, mape_model = ?forecast.mape_model,
                mape_naive = ?forecast.mape_naive, suggested = figures.suggested, "Restock forecast.");
            suggestions.push(RestockSuggestion {
                run_id: ctx.run_id.clone(),
                platform: self.platform.clone(),
                shop: self.shop.clone(),
                sku,
                model: forecast.model.as_str().to_owned(),
                mape_model: forecast.mape_model,
                mape_naive: forecast.mape_naive,
                forecast_7d: forecast.days.to_vec(),
                lead_time_days: i64::from(self.settings.lead_time_days),
                demand_over_lead: figures.demand_over_lead,
                safety_stock: figures.safety_stock,
                available,
                on_order,
                suggested: figures.suggested,
                created_at: now,
            });
        }

        // The CSV goes to a temporary file first and replaces the old one
        // only once the rows are stored: a failure leaves neither half a
        // file nor a file the database disagrees with.
        let staged = self.csv.as_deref().map(|path| stage_csv(path, &suggestions)).transpose()?;
        if let Err(error) = ctx.store.record_restock_suggestions(&suggestions).await {
            if let Some((temp, _)) = &staged {
                // Best effort: the error that matters is the store's.
                let _ = std::fs::remove_file(temp);
            }
            return Err(error.into());
        }
        if let Some((temp, path)) = staged {
            std::fs::rename(&temp, &path)
                .map_err(|e| NodeError::permanent(format!("replacing {}: {e}", path.display())))?;
        }
        tracing::info!(node_id = %ctx.node_id, shop = %self.shop, skus = suggestions.len(), too_new,
            to_order = suggestions.iter().filter(|s| s.suggested > 0).count(), "Restock suggestions made.");
        for chunk in suggestions.chunks(ctx.batch_size.max(1)) {
            out.emit(chunk.iter().map(record).collect()).await?;
        }
        Ok(())
    }
}

/// The record sent on for one suggestion.
fn record(s: &RestockSuggestion) -> Record {
    let fields = json!({
        "run_id": s.run_id,
        "sku": s.sku,
        "model": s.model,
        "mape_model": s.mape_model,
        "mape_naive": s.mape_naive,
        "forecast_7d": s.forecast_7d,
        "lead_time_days": s.lead_time_days,
        "demand_over_lead": s.demand_over_lead,
        "safety_stock": s.safety_stock,
        "available": s.available,
        "on_order": s.on_order,
        "suggested": s.suggested,
    });
    match fields {
        Json::Object(map) => Record::new(map),
        _ => Record::new(Map::new()),
    }
}

const CSV_HEADER: &str = "sku,model,mape_model,mape_naive,forecast_7d,lead_time_days,demand_over_lead,\
                          safety_stock,available,on_order,suggested";

/// Writes the CSV next to `path` under a temporary name; returns that name
/// and `path`, for the rename.
fn stage_csv(path: &Path, suggestions: &[RestockSuggestion]) -> Result<(PathBuf, PathBuf), NodeError> {
    let io_error = |e: std::io::Error| NodeError::permanent(format!("writing {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_error)?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.tmp"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&temp).map_err(io_error)?);
    let mut write = || -> std::io::Result<()> {
        writeln!(file, "{CSV_HEADER}")?;
        for s in suggestions {
            writeln!(file, "{}", csv_row(s))?;
        }
        file.flush()?;
        file.get_ref().sync_all()
    };
    if let Err(error) = write() {
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(error));
    }
    Ok((temp, path.to_path_buf()))
}

fn csv_row(s: &RestockSuggestion) -> String {
    let optional = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
    let forecast = format!("[{}]", s.forecast_7d.iter().map(|d| format!("{d:.2}")).collect::<Vec<_>>().join(","));
    [
        csv_field(&s.sku),
        csv_field(&s.model),
        optional(s.mape_model),
        optional(s.mape_naive),
        csv_field(&forecast),
        s.lead_time_days.to_string(),
        format!("{:.2}", s.demand_over_lead),
        s.safety_stock.to_string(),
        s.available.to_string(),
        s.on_order.to_string(),
        s.suggested.to_string(),
    ]
    .join(",")
}

/// A CSV field, quoted (RFC 4180) when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::Model;

    fn flat(units: f64, errors: Vec<f64>) -> Forecast {
        Forecast { model: Model::SeasonalMean, days: [units; HORIZON], mape_model: None, mape_naive: None, errors }
    }

    #[test]
    fn suggests_demand_plus_safety_minus_stock() {
        // σ of ±2 errors is 2; z 1.645 × 2 × √4 = 6.58 → 7 units of safety.
        let f = flat(10.0, vec![2.0, -2.0, 2.0, -2.0]);
        let figures = figures(&f, &[], 4, 1.645, 15.0);
        assert_eq!(figures, Figures { demand_over_lead: 40.0, safety_stock: 7, suggested: 32 });
        // Enough stock: nothing to order, never a negative order.
        assert_eq!(figures_for_stock(&f, 100.0), 0);
    }

    #[test]
    fn a_suggestion_record_has_the_declared_fields() {
        let suggestion = RestockSuggestion {
            run_id: "r".into(),
            platform: "taobao".into(),
            shop: "s".into(),
            sku: "A-1".into(),
            model: "naive".into(),
            mape_model: Some(12.5),
            mape_naive: None,
            forecast_7d: vec![1.0; HORIZON],
            lead_time_days: 4,
            demand_over_lead: 4.0,
            safety_stock: 2,
            available: 1,
            on_order: 0,
            suggested: 5,
            created_at: chrono::Utc::now(),
        };
        crate::nodes::testing::assert_output(&RestockSuggest::output(), &[], &[record(&suggestion).to_json()]);
    }

    fn figures_for_stock(f: &Forecast, stock: f64) -> i64 {
        figures(f, &[], 4, 1.645, stock).suggested
    }

    #[test]
    fn long_lead_times_repeat_the_week_and_short_series_use_the_sales_spread() {
        let f = flat(1.0, Vec::new());
        let figures = figures(&f, &[1.0, 3.0], 14, 1.0, 0.0);
        // σ of [1, 3] is 1; 1 × 1 × √14 = 3.74 → 4.
        assert_eq!(figures, Figures { demand_over_lead: 14.0, safety_stock: 4, suggested: 18 });
    }

    #[test]
    fn quotes_csv_fields_that_need_it() {
        assert_eq!(csv_field("SP001-02"), "SP001-02");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
