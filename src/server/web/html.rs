//! The page shell and the small formatting helpers every page uses. Every
//! piece of text from the store, the catalog or a flow goes through
//! [`escape`].

use std::fmt::Write;

use chrono::{DateTime, Utc};

/// Seconds between automatic reloads of a page.
pub const REFRESH_SECS: u32 = 15;

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em 2em;color:#222;background:#fafafa}\
header{display:flex;gap:1.5em;align-items:baseline;border-bottom:1px solid #ccc;margin-bottom:1em}\
header h1{font-size:1.3em;margin:.6em 0}\
h2{font-size:1.1em;margin:1.4em 0 .4em}\
table{border-collapse:collapse;background:#fff;margin-bottom:.5em}\
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
.none{color:#777;font-style:italic}\
.errors{color:#a00;white-space:pre-wrap}\
.status-succeeded{color:#176b1d}.status-failed{color:#a00}.status-partial,.status-paused{color:#a66a00}\
.status-running{color:#0b57a4}.status-cancelled{color:#666}\
svg.graph{background:#fff;border:1px solid #ddd;margin:.3em 0}\
svg.graph text{font:12px system-ui,sans-serif;fill:#222}svg.graph text.id{font-weight:600}\
svg.graph text.type{fill:#555}\
svg.graph .node rect{fill:#fff;stroke:#667;stroke-width:1.2}\
svg.graph .status-succeeded rect{fill:#eef8ee;stroke:#2a7d2e}\
svg.graph .status-failed rect{fill:#fdeaea;stroke:#b00}\
svg.graph .status-skipped rect,svg.graph .status-paused rect{fill:#fff5e0;stroke:#b07400}\
svg.graph .status-cancelled rect{fill:#f0f0f0;stroke:#888}\
svg.graph .status-not_run rect{stroke-dasharray:4 3}\
svg.graph .edge path{fill:none;stroke:#778;stroke-width:1.4}\
svg.graph .edge.conditional path{stroke-dasharray:5 4}\
svg.graph marker path{fill:#778}";

/// A whole page: `title`, a navigation header and `body` (already escaped
/// HTML). Reloads itself every [`REFRESH_SECS`] seconds.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · orderflow</title><style>{STYLE}</style></head><body>\
         <header><h1>orderflow</h1><nav><a href=\"/\">overview</a> · <a href=\"/metrics\">metrics</a></nav>\
         <span class=\"none\">page as of {}</span></header><main>{body}</main></body></html>",
        escape(title),
        time(Some(Utc::now())),
    )
}

/// `text` with `& < > " '` replaced by entities: safe in element text and in
/// quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `segment` percent-encoded for a URL path: everything but unreserved
/// characters, so a flow named `a/b?c` still links to its own page.
pub fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A time to the second in UTC, or a dash.
pub fn time(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_else(|| "—".to_owned())
}

/// How long from `start` to `end`, or a dash when either is missing.
pub fn duration(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> String {
    match (start, end) {
        (Some(start), Some(end)) => seconds((end - start).num_milliseconds() as f64 / 1000.0),
        _ => "—".to_owned(),
    }
}

/// A span of seconds as people read it: `0.042 s`, `12.5 s`, `3 min 20 s`,
/// `2 h 5 min`.
pub fn seconds(secs: f64) -> String {
    let whole = secs.round() as i64;
    if secs.abs() < 10.0 {
        format!("{secs:.3} s")
    } else if secs.abs() < 60.0 {
        format!("{secs:.1} s")
    } else if whole.abs() < 3600 {
        format!("{} min {} s", whole / 60, (whole % 60).abs())
    } else {
        format!("{} h {} min", whole / 3600, ((whole % 3600) / 60).abs())
    }
}

/// A `<table>` with `headers` and `rows` (cells already escaped HTML), or
/// `empty` in a paragraph when there are no rows. `id` names the table for
/// tests and styles.
pub fn table(id: &str, headers: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"none\" id=\"{id}\">{}</p>", escape(empty));
    }
    let mut out = format!("<table id=\"{id}\"><thead><tr>");
    for header in headers {
        let _ = write!(out, "<th>{}</th>", escape(header));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str(cell);
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// A table cell holding `text`, escaped.
pub fn cell(text: &str) -> String {
    format!("<td>{}</td>", escape(text))
}

/// A right-aligned cell for a number.
pub fn num(value: impl std::fmt::Display) -> String {
    format!("<td class=\"num\">{}</td>", escape(&value.to_string()))
}

/// A cell holding already escaped HTML (a link, a list).
pub fn raw(html: String) -> String {
    format!("<td>{html}</td>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_both_quotes() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn path_segments_keep_unreserved_characters_only() {
        assert_eq!(path_segment("taobao-incremental_2.x~"), "taobao-incremental_2.x~");
        assert_eq!(path_segment("a/b?c d"), "a%2Fb%3Fc%20d");
        assert_eq!(path_segment("店"), "%E5%BA%97");
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(seconds(0.0421), "0.042 s");
        assert_eq!(seconds(12.54), "12.5 s");
        assert_eq!(seconds(200.0), "3 min 20 s");
        assert_eq!(seconds(7500.0), "2 h 5 min");
    }
}
