//! TOP's clock: `yyyy-MM-dd HH:mm:ss` in GMT+8, whatever the caller's zone.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};

const FORMAT: &str = "%Y-%m-%d %H:%M:%S";

fn beijing() -> FixedOffset {
    // 8 hours is within FixedOffset's ±24 h range.
    FixedOffset::east_opt(8 * 3600).expect("GMT+8 is a valid offset")
}

/// `instant` as TOP writes times.
pub fn format(instant: DateTime<Utc>) -> String {
    instant.with_timezone(&beijing()).format(FORMAT).to_string()
}

/// A TOP time string as an instant; `None` when it is not one.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), FORMAT).ok()?;
    beijing().from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_and_read_in_gmt_plus_8() {
        let instant = Utc.with_ymd_and_hms(2026, 11, 23, 20, 30, 5).single().expect("valid");
        assert_eq!(format(instant), "2026-11-24 04:30:05");
        assert_eq!(parse("2026-11-24 04:30:05"), Some(instant));
        assert_eq!(parse("2026-11-24T04:30:05"), None);
        assert_eq!(parse("<html>"), None);
    }
}
