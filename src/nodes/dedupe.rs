//! `dedupe`: drops records already seen at the same or a newer version.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;

use super::{
    BuildContext, BuildError, Built, Entry, NodeContext, NodeError, NodeKind, Output, Role, Transform, Typing,
    list_entries,
};
use crate::record::{Batch, Record};
use crate::store::StoredVersion;

/// Drops a record whose key was already seen in this run, or is already
/// stored in `orders`, at the same or a newer version — so that the
/// overlap of `lookback`, an order met twice while paging, or a replayed
/// window costs no detail call and no write.
///
/// Versions compare as times when both are times (`modified`), as numbers
/// when both are numbers, as text otherwise. A record without a key or
/// version passes. Against the store, a stored order with the same
/// `modified` but another status is not the same version: platform times
/// have whole seconds, and an order can change twice in one (a backfill may
/// have stored the first change).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DedupeSettings {
    /// The fields that identify a record.
    #[serde(default = "default_key")]
    pub key: Vec<String>,
    /// The field that orders versions of a record.
    #[serde(default = "default_version")]
    pub version: String,
    /// Also compare with the `orders` table (records with `platform`,
    /// `shop` and `tid`, versioned by `modified`). The table is the shop's,
    /// written by every flow that stores its orders: turn this off in a flow
    /// whose work is not storing them (moving stock, say), or it drops the
    /// orders another flow stored first.
    #[serde(default = "default_true")]
    pub check_store: bool,
    /// How many keys the run remembers; past that, memory starts afresh
    /// (the store check and the store's own version rule still hold).
    #[serde(default = "default_remember")]
    pub remember: usize,
}

fn default_key() -> Vec<String> {
    ["platform", "shop", "tid"].map(String::from).to_vec()
}

fn default_version() -> String {
    "modified".into()
}

fn default_true() -> bool {
    true
}

fn default_remember() -> usize {
    200_000
}

/// The `dedupe` node type.
pub struct Dedupe;

impl NodeKind for Dedupe {
    const TYPE: &'static str = "dedupe";
    const ROLE: Role = Role::Transform;
    type Settings = DedupeSettings;

    fn example() -> &'static str {
        "fresh:\n  use: dedupe\n  input: changed\n"
    }

    fn output() -> Output {
        Output::unchanged()
    }

    fn typing(settings: &DedupeSettings, _ctx: &BuildContext) -> Result<Typing, BuildError> {
        Ok(Typing::output(Self::output())
            .reading_setting("key", list_entries(&settings.key))
            .reading_setting("version", [(Entry::Whole, settings.version.as_str())]))
    }

    fn build(settings: DedupeSettings, _ctx: &BuildContext) -> Result<Built, BuildError> {
        if settings.key.is_empty() {
            return Err(BuildError::setting("key", "name at least one field"));
        }
        Ok(Built::Transform(Box::new(DedupeTransform { settings, seen: HashMap::new() })))
    }
}

struct DedupeTransform {
    settings: DedupeSettings,
    seen: HashMap<String, Json>,
}

/// Whether version `a` is at least as new as `b`.
fn at_least(a: &Json, b: &Json) -> bool {
    let time = |v: &Json| v.as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok());
    if let (Some(a), Some(b)) = (time(a), time(b)) {
        return a >= b;
    }
    if let (Some(a), Some(b)) = (a.as_f64(), b.as_f64()) {
        if let (Some(a), Some(b)) = (a.is_finite().then_some(a), b.is_finite().then_some(b)) {
            return a >= b;
        }
    }
    match (a.as_str(), b.as_str()) {
        (Some(a), Some(b)) => a >= b,
        _ => a.to_string().cmp(&b.to_string()).is_ge(),
    }
}

impl DedupeTransform {
    fn key_of(&self, record: &Record) -> Option<String> {
        let parts: Option<Vec<String>> =
            self.settings.key.iter().map(|field| record.fields.get(field).map(Json::to_string)).collect();
        parts.map(|parts| parts.join("\u{1f}"))
    }

    /// The stored version per record index, for the order records in `batch`.
    async fn stored_versions(
        &self,
        ctx: &NodeContext,
        batch: &[(usize, &Record)],
    ) -> Result<HashMap<usize, StoredVersion>, NodeError> {
        let mut by_shop: BTreeMap<(String, String), Vec<(usize, i64)>> = BTreeMap::new();
        for (index, record) in batch {
            let text = |f: &str| record.fields.get(f).and_then(Json::as_str).map(str::to_owned);
            if let (Some(platform), Some(shop), Some(tid)) =
                (text("platform"), text("shop"), record.fields.get("tid").and_then(Json::as_i64))
            {
                by_shop.entry((platform, shop)).or_default().push((*index, tid));
            }
        }
        let mut versions = HashMap::new();
        for ((platform, shop), entries) in by_shop {
            let tids: Vec<i64> = entries.iter().map(|(_, tid)| *tid).collect();
            let stored = ctx.store.order_versions(&platform, &shop, &tids).await?;
            for (index, tid) in entries {
                if let Some(version) = stored.get(&tid) {
                    versions.insert(index, version.clone());
                }
            }
        }
        Ok(versions)
    }
}

#[async_trait]
impl Transform for DedupeTransform {
    async fn process(&mut self, batch: Batch, ctx: &NodeContext) -> Result<Batch, NodeError> {
        let version_field = self.settings.version.clone();
        let fresh_in_memory: Vec<(usize, &Record)> = batch
            .iter()
            .enumerate()
            .filter(|(_, record)| match (self.key_of(record), record.fields.get(&version_field)) {
                (Some(key), Some(version)) => !self.seen.get(&key).is_some_and(|seen| at_least(seen, version)),
                _ => true,
            })
            .collect();
        let stored = if self.settings.check_store && version_field == "modified" {
            self.stored_versions(ctx, &fresh_in_memory).await?
        } else {
            HashMap::new()
        };
        let keep: Vec<usize> = fresh_in_memory
            .iter()
            .filter(|(index, record)| {
                let modified = record.fields.get("modified").and_then(Json::as_str).and_then(|m| m.parse().ok());
                let status = record.fields.get("status").and_then(Json::as_str);
                match (stored.get(index), modified, status) {
                    (Some(stored), Some(modified), Some(status)) => !stored.covers(modified, status),
                    _ => true,
                }
            })
            .map(|(index, _)| *index)
            .collect();
        if self.seen.len() + keep.len() > self.settings.remember {
            self.seen.clear();
        }
        let mut out = Vec::with_capacity(keep.len());
        let mut keep = keep.into_iter().peekable();
        for (index, record) in batch.into_iter().enumerate() {
            if keep.peek() != Some(&index) {
                continue;
            }
            keep.next();
            if let (Some(key), Some(version)) = (self.key_of(&record), record.fields.get(&version_field)) {
                // Within one batch a later record may still be older.
                if self.seen.get(&key).is_some_and(|seen| at_least(seen, version)) {
                    continue;
                }
                self.seen.insert(key, version.clone());
            }
            out.push(record);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::nodes::testing::{assert_output, build_ctx, run_transform_in};
    use crate::platforms::{Money, Order};
    use crate::store::Store;

    fn order(tid: i64, modified: &str) -> Json {
        json!({"platform": "taobao", "shop": "s", "tid": tid, "modified": modified, "status": "TRADE_FINISHED"})
    }

    fn node() -> Box<dyn Transform> {
        let settings: DedupeSettings = serde_json::from_value(json!({})).unwrap();
        match Dedupe::build(settings, &build_ctx()).unwrap() {
            Built::Transform(node) => node,
            Built::Source(_) => panic!("a transform"),
        }
    }

    #[tokio::test]
    async fn only_newer_versions_than_seen_or_stored_pass() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let stored = Order {
            platform: "taobao".into(),
            shop: "s".into(),
            tid: 1,
            status: "TRADE_FINISHED".into(),
            order_type: "fixed".into(),
            created: "2026-11-01T00:00:00Z".parse().unwrap(),
            modified: "2026-11-02T00:00:00Z".parse().unwrap(),
            pay_time: None,
            payment: Money(1),
            buyer_nick: None,
            step_trade_status: None,
            items: Vec::new(),
            raw: json!({}),
        };
        store.save_orders(&[stored], &[]).await.unwrap();
        let input = vec![
            order(1, "2026-11-02T00:00:00Z"), // as stored: dropped
            // The same second as stored, another status: a second change in
            // that second, which the store must get.
            json!({"platform": "taobao", "shop": "s", "tid": 1, "modified": "2026-11-02T00:00:00Z", "status": "TRADE_CLOSED"}),
            order(1, "2026-11-01T00:00:00Z"), // older than stored: dropped
            order(2, "2026-11-02T00:00:00Z"), // new
            order(2, "2026-11-02T00:00:00Z"), // seen: dropped
            order(2, "2026-11-03T00:00:00Z"), // newer than seen
            order(1, "2026-11-04T00:00:00Z"), // newer than stored
            json!({"no_key": true}),          // passes untouched
        ];
        let out = run_transform_in(&store, node(), input.clone()).await.unwrap();
        assert_output(&Dedupe::output(), &input, &out);
        let kept: Vec<(Option<i64>, Option<&str>)> =
            out.iter().map(|r| (r["tid"].as_i64(), r["modified"].as_str())).collect();
        assert_eq!(
            kept,
            vec![
                (Some(1), Some("2026-11-02T00:00:00Z")),
                (Some(2), Some("2026-11-02T00:00:00Z")),
                (Some(2), Some("2026-11-03T00:00:00Z")),
                (Some(1), Some("2026-11-04T00:00:00Z")),
                (None, None)
            ]
        );
    }
}
