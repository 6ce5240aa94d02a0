//! `orderflow stock`: the merchant's inventory counts.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::store::{StockLevel, Store};

/// `orderflow stock` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum StockCommand {
    /// Set on-hand and on-order counts from a file: CSV with the header
    /// `sku,on_hand[,on_order]`, or a JSON array of `{"sku", "on_hand",
    /// "on_order"}` (by extension). Nothing is written if any row is bad.
    Import {
        /// The `.csv` or `.json` file.
        file: std::path::PathBuf,
    },
}

/// Runs a `stock` subcommand against `store`.
pub async fn run(command: &StockCommand, store: &Store) -> anyhow::Result<()> {
    match command {
        StockCommand::Import { file } => {
            let levels = read_file(file)?;
            store
                .import_stock(&levels, chrono::Utc::now())
                .await
                .with_context(|| format!("importing {}", file.display()))?;
            for level in &levels {
                println!("  {:<32} on hand {:>8}  on order {:>8}", level.sku, level.on_hand, level.on_order);
            }
            let on_hand: i64 = levels.iter().map(|l| l.on_hand).sum();
            let on_order: i64 = levels.iter().map(|l| l.on_order).sum();
            println!(
                "imported {} SKUs from {}: {on_hand} units on hand, {on_order} on order",
                levels.len(),
                file.display()
            );
            Ok(())
        }
    }
}

/// One row of an import file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    sku: String,
    on_hand: i64,
    /// Empty or absent: nothing on order.
    #[serde(default)]
    on_order: Option<i64>,
}

/// Reads a stock file, CSV or JSON by its extension. Every bad row is
/// reported, each as `file:line: column: problem`.
pub fn read_file(path: &Path) -> anyhow::Result<Vec<StockLevel>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let rows = match extension.as_deref() {
        Some("csv") => parse_csv(path, &text),
        Some("json") => parse_json(path, &text),
        _ => bail!("{}: expected a .csv or .json file", path.display()),
    };
    match rows {
        Ok(rows) => Ok(rows),
        Err(errors) => bail!("{} bad row(s), nothing imported:\n{}", errors.len(), errors.join("\n")),
    }
}

/// A row's place in the file, for messages: its line, or its index in the
/// JSON array.
type Place = String;

fn parse_csv(path: &Path, text: &str) -> Result<Vec<StockLevel>, Vec<String>> {
    let file = path.display();
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(error) => return Err(vec![format!("{file}:1: {error}")]),
    };
    let mut errors = Vec::new();
    let expected = ["sku", "on_hand", "on_order"];
    for (column, name) in headers.iter().enumerate() {
        if !expected.contains(&name) {
            errors.push(format!(
                "{file}:1: column {}: unknown column {name:?}; expected sku,on_hand[,on_order]",
                column + 1
            ));
        }
    }
    for name in ["sku", "on_hand"] {
        if !headers.iter().any(|h| h == name) {
            errors.push(format!("{file}:1: the header lacks column {name:?}; expected sku,on_hand[,on_order]"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                let reason = match error.kind() {
                    csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                        format!("{len} fields, the header has {expected_len}")
                    }
                    _ => error.to_string(),
                };
                errors.push(format!("{file}:{line}: {reason}"));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        match record.deserialize::<Row>(Some(&headers)) {
            Ok(row) => rows.push((format!("{file}:{line}"), row)),
            Err(error) => {
                let column = match error.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => err.field().map(|at| {
                        let at = usize::try_from(at).unwrap_or(usize::MAX);
                        format!(" column {} ({})", at + 1, headers.get(at).unwrap_or("?"))
                    }),
                    _ => None,
                };
                let reason = match error.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => err.kind().to_string(),
                    _ => error.to_string(),
                };
                errors.push(format!("{file}:{line}:{}: {reason}", column.unwrap_or_default()));
            }
        }
    }
    check(rows, errors)
}

fn parse_json(path: &Path, text: &str) -> Result<Vec<StockLevel>, Vec<String>> {
    let file = path.display();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let rows: Vec<Row> = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let inner = error.inner();
        vec![format!("{file}:{}:{}: `{}`: {inner}", inner.line(), inner.column(), error.path())]
    })?;
    let rows = rows.into_iter().enumerate().map(|(index, row)| (format!("{file}: [{index}]"), row)).collect();
    check(rows, Vec::new())
}

/// Checks what serde cannot: an SKU present and given once, no negative counts.
fn check(rows: Vec<(Place, Row)>, mut errors: Vec<String>) -> Result<Vec<StockLevel>, Vec<String>> {
    let mut seen: HashMap<String, Place> = HashMap::new();
    let mut levels = Vec::with_capacity(rows.len());
    for (place, row) in rows {
        if row.sku.is_empty() {
            errors.push(format!("{place}: sku: empty"));
        } else if let Some(first) = seen.get(&row.sku) {
            errors.push(format!("{place}: sku: {:?} again (first at {first})", row.sku));
        } else {
            seen.insert(row.sku.clone(), place.clone());
        }
        let on_order = row.on_order.unwrap_or(0);
        for (field, value) in [("on_hand", row.on_hand), ("on_order", on_order)] {
            if value < 0 {
                errors.push(format!("{place}: {field}: {value} is negative"));
            }
        }
        levels.push(StockLevel { sku: row.sku, on_hand: row.on_hand, frozen: 0, on_order });
    }
    if errors.is_empty() { Ok(levels) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_with_and_without_on_order() {
        let levels = parse_csv(Path::new("s.csv"), "sku,on_hand,on_order\nA-1, 5 ,2\nB-2,0,\n").unwrap();
        assert_eq!(
            levels.iter().map(|l| (l.sku.as_str(), l.on_hand, l.on_order)).collect::<Vec<_>>(),
            [("A-1", 5, 2), ("B-2", 0, 0)]
        );
        let levels = parse_csv(Path::new("s.csv"), "sku,on_hand\nA-1,5\n").unwrap();
        assert_eq!(levels[0].on_order, 0);
    }

    #[test]
    fn every_bad_csv_row_is_named_by_line_and_column() {
        let errors =
            parse_csv(Path::new("s.csv"), "sku,on_hand,on_order\nA-1,five,0\nB,-1,0\nB,1,0\nC,1,2,3\n").unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].starts_with("s.csv:2: column 2 (on_hand): "), "{}", errors[0]);
        assert!(errors.contains(&"s.csv:5: 4 fields, the header has 3".to_owned()), "{errors:#?}");
        assert!(errors.iter().any(|e| e == "s.csv:3: on_hand: -1 is negative"), "{errors:#?}");
        assert!(errors.iter().any(|e| e == "s.csv:4: sku: \"B\" again (first at s.csv:3)"), "{errors:#?}");
        let errors = parse_csv(Path::new("s.csv"), "sku,onhand\n").unwrap_err();
        assert!(errors[0].contains("column 2: unknown column \"onhand\""), "{errors:#?}");
    }

    #[test]
    fn json_rows_and_their_errors() {
        let levels = parse_json(Path::new("s.json"), r#"[{"sku": "A", "on_hand": 3, "on_order": 1}]"#).unwrap();
        assert_eq!((levels[0].on_hand, levels[0].on_order), (3, 1));
        let errors = parse_json(Path::new("s.json"), "[\n{\"sku\": \"A\", \"on_hand\": \"x\"}]").unwrap_err();
        assert!(errors[0].starts_with("s.json:2:") && errors[0].contains("`[0].on_hand`"), "{errors:#?}");
        let errors = parse_json(Path::new("s.json"), r#"[{"sku": "A", "on_hand": -3}]"#).unwrap_err();
        assert_eq!(errors, ["s.json: [0]: on_hand: -3 is negative"]);
    }
}
