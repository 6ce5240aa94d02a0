//! What a TOP failure means for the caller: `error_response` codes, HTTP
//! statuses and transport failures, each mapped onto one [`ErrorKind`].
//!
//! TOP answers most failures with HTTP 200 and an `error_response` body, so
//! the body decides first; the HTTP status only speaks when the body is not a
//! TOP error. Messages carry TOP's own code and text but never a request
//! parameter, so no secret, session or signature can end up in a log.

use std::fmt;
use std::time::Duration;

use serde_json::Value as Json;

use crate::platforms::{Anomaly, ErrorKind, PlatformError};

/// How long to stay away after a call-limit answer whose `sub_msg` does not say:
/// long enough that a per-minute quota has reset, short enough that a
/// misparsed hourly ban is only retried a few times an hour.
pub const DEFAULT_BAN: Duration = Duration::from_secs(60);

/// TOP's `error_response`: the platform refused the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The platform-level code (7, 15, 27, …).
    pub code: i64,
    /// The code's English name (`App Call Limited`).
    pub msg: String,
    /// The detailed reason (`isp.top-remote-connection-timeout`), if given.
    pub sub_code: Option<String>,
    /// The detailed reason in words; for code 7 it states the ban's length.
    pub sub_msg: Option<String>,
    /// TOP's id of the request, for support tickets.
    pub request_id: Option<String>,
}

impl ApiError {
    /// Reads an `error_response` object; lenient about codes written as
    /// strings, because gateways in front of TOP are not always exact.
    pub fn from_json(value: &Json) -> Self {
        let text = |key: &str| match value.get(key) {
            Some(Json::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Json::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let code = match value.get("code") {
            Some(Json::Number(n)) => n.as_i64(),
            Some(Json::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        Self {
            // No code at all is still an error: 0 classifies as `Other`.
            code: code.unwrap_or(0),
            msg: text("msg").unwrap_or_default(),
            sub_code: text("sub_code"),
            sub_msg: text("sub_msg"),
            request_id: text("request_id"),
        }
    }

    /// What the caller should do about it.
    pub fn kind(&self) -> ErrorKind {
        classify(self.code, self.sub_code.as_deref(), self.sub_msg.as_deref())
    }

    /// Whether TOP says the record asked for does not exist
    /// (`isv.trade-not-exist` and its kin), which single-record lookups
    /// report as "none" rather than as a failure.
    pub fn is_not_found(&self) -> bool {
        self.sub_code.as_deref().is_some_and(|sub| {
            let sub = sub.to_ascii_lowercase();
            sub.starts_with("isv.")
                && (sub.contains("not-exist") || sub.contains("not-found") || sub.contains("notexist"))
        })
    }

    /// The error for `method`, with this answer's code and texts as message.
    pub fn into_platform_error(self, method: &str) -> PlatformError {
        PlatformError {
            kind: self.kind(),
            method: method.to_owned(),
            message: self.to_string(),
            request_id: self.request_id,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::platforms::write_codes(f, self.code, &self.msg, self.sub_code.as_deref(), self.sub_msg.as_deref())
    }
}

/// An answer that is not what TOP documents (HTML, truncated JSON, a field of
/// the wrong type); the message says what was wrong and quotes a little of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Malformed {
    /// What kind of anomaly it is.
    pub anomaly: Anomaly,
    /// What was wrong, with an excerpt.
    pub message: String,
}

impl Malformed {
    /// An anomaly of `anomaly`'s kind.
    pub fn new(anomaly: Anomaly, message: String) -> Self {
        Self { anomaly, message }
    }

    /// A record field of the wrong type or value.
    pub fn field(message: String) -> Self {
        Self::new(Anomaly::WrongType, message)
    }

    /// The error for `method`.
    pub fn into_platform_error(self, method: &str) -> PlatformError {
        PlatformError {
            kind: ErrorKind::Malformed(self.anomaly),
            method: method.to_owned(),
            message: self.message,
            request_id: None,
        }
    }
}

/// Why an answer could not be used: TOP refused, or it said something we
/// cannot read. Kept apart from [`PlatformError`] so a lookup can still tell
/// "not found" from a real failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// TOP's `error_response`.
    #[error("{0}")]
    Api(ApiError),
    /// An answer of no known shape.
    #[error(transparent)]
    Malformed(#[from] Malformed),
}

impl AnswerError {
    /// The error for `method`.
    pub fn into_platform_error(self, method: &str) -> PlatformError {
        match self {
            Self::Api(error) => error.into_platform_error(method),
            Self::Malformed(error) => error.into_platform_error(method),
        }
    }
}

/// TOP's call-limit codes (its public list of platform errors): 4 User Call
/// Limited, 5 Session Call Limited, 6 Partner Call Limited, 7 App Call
/// Limited, 8 App Call Exceeds Limited Frequency. Each refuses calls for a
/// while; only code 7's `sub_msg` is documented to state how long ("This ban
/// will last for 31 more seconds"), the others are read the same way when
/// they do.
const CALL_LIMITED: [i64; 5] = [4, 5, 6, 7, 8];

/// Maps an `error_response` onto what to do, following the table in
/// `TOP-API.md`: the call limits first (whatever their sub-code, a ban is a
/// ban), then the sub-codes that override their code, then the
/// platform-level codes, then `isv.*` sub-codes (the caller's fault, never
/// retried).
pub fn classify(code: i64, sub_code: Option<&str>, sub_msg: Option<&str>) -> ErrorKind {
    if CALL_LIMITED.contains(&code) {
        return ErrorKind::RateLimited { ban: sub_msg.and_then(ban_length).unwrap_or(DEFAULT_BAN) };
    }
    let sub = sub_code.unwrap_or("").trim().to_ascii_lowercase();
    if sub == "isv.trade-service-rejection" {
        return ErrorKind::Overloaded;
    }
    if sub.starts_with("isp.") {
        return ErrorKind::Remote;
    }
    // Platform-level codes from TOP's public list; the table in TOP-API.md
    // names 11, 25, 26, 27, 40 and 41, the others are their close kin.
    match code {
        // Service Currently Unavailable.
        10 => return ErrorKind::Remote,
        // Insufficient ISV / user / session permissions; forbidden request.
        11 | 12 | 13 | 42 => return ErrorKind::Permission,
        // Missing / invalid signature.
        24 | 25 => return ErrorKind::Signature,
        // Missing / invalid or expired session.
        26 | 27 => return ErrorKind::SessionExpired,
        // Missing or invalid method, format, timestamp, version, arguments or
        // encoding: whatever we sent was wrong.
        21..=23 | 30..=34 | 40 | 41 | 43 | 47 => return ErrorKind::BadRequest,
        _ => {}
    }
    if sub.starts_with("isv.") {
        let argument = ["parameter", "argument", "missing", "invalid"].iter().any(|word| sub.contains(word));
        return if argument { ErrorKind::BadRequest } else { ErrorKind::Other };
    }
    if code == 15 && sub.is_empty() {
        // A remote service error that does not say whose fault it is: the
        // platform's, as code 15 usually is.
        return ErrorKind::Remote;
    }
    ErrorKind::Other
}

/// The ban a code-7 `sub_msg` states ("This ban will last for 31 more
/// seconds"); minutes and hours are understood too, since a daily quota's ban
/// can last hours.
pub fn ban_length(sub_msg: &str) -> Option<Duration> {
    let lower = sub_msg.to_ascii_lowercase();
    let after = &lower[lower.find("last for")? + "last for".len()..];
    let after = after.trim_start();
    let digits_end = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
    let amount: u64 = after[..digits_end].parse().ok()?;
    let unit = after[digits_end..].trim_start().trim_start_matches("more").trim_start();
    let seconds = if unit.starts_with("second") || unit.starts_with("sec") || unit.starts_with('s') {
        amount
    } else if unit.starts_with("minute") || unit.starts_with("min") {
        amount.checked_mul(60)?
    } else if unit.starts_with("hour") || unit.starts_with('h') {
        amount.checked_mul(3600)?
    } else {
        return None;
    };
    Some(Duration::from_secs(seconds.max(1)))
}

/// An HTTP answer other than 2xx whose body was no TOP error: 5xx and 408 are
/// the platform's trouble, 429 a rate limit (its `Retry-After`, when given,
/// is the ban), 401/403 a refusal of the app, anything else a request we
/// should not have sent.
pub fn http_status(method: &str, status: u16, retry_after: Option<Duration>, excerpt: &str) -> PlatformError {
    let kind = match status {
        429 => ErrorKind::RateLimited { ban: retry_after.unwrap_or(DEFAULT_BAN) },
        // A web page instead of the API's JSON: the gateway's trouble, and
        // an anomaly worth counting.
        408 | 500..=599 if excerpt.trim_start().starts_with('<') => ErrorKind::Malformed(Anomaly::Html),
        408 | 500..=599 => ErrorKind::Remote,
        401 | 403 => ErrorKind::Permission,
        400..=499 => ErrorKind::BadRequest,
        // 1xx and 3xx are not answers to a POST that reqwest did not follow.
        _ => ErrorKind::Malformed(Anomaly::Status),
    };
    PlatformError { kind, method: method.to_owned(), message: format!("HTTP {status}: {excerpt:?}"), request_id: None }
}

/// A call that got no answer (connection refused, timeout, broken body): the
/// platform is unreachable from here, which retrying may fix. `detail` must
/// already be free of the URL, whose query holds the session and signature.
pub fn transport(method: &str, detail: &str) -> PlatformError {
    PlatformError { kind: ErrorKind::Remote, method: method.to_owned(), message: detail.to_owned(), request_id: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_in_the_table_maps_to_its_class() {
        let ban = |secs| ErrorKind::RateLimited { ban: Duration::from_secs(secs) };
        let table: &[(i64, Option<&str>, Option<&str>, ErrorKind)] = &[
            (
                7,
                Some("accesscontrol.limited-by-app-access-count"),
                Some("This ban will last for 31 more seconds"),
                ban(31),
            ),
            (
                7,
                Some("accesscontrol.limited-by-api-access-count"),
                Some("This ban will last for 71243 more seconds"),
                ban(71243),
            ),
            (
                7,
                Some("accesscontrol.limited-by-app-access-count"),
                Some("quota used up"),
                ErrorKind::RateLimited { ban: DEFAULT_BAN },
            ),
            (7, None, None, ErrorKind::RateLimited { ban: DEFAULT_BAN }),
            (4, None, Some("This ban will last for 12 more seconds"), ban(12)),
            (4, None, None, ErrorKind::RateLimited { ban: DEFAULT_BAN }),
            (5, None, None, ErrorKind::RateLimited { ban: DEFAULT_BAN }),
            (6, None, None, ErrorKind::RateLimited { ban: DEFAULT_BAN }),
            (8, Some("accesscontrol.limited-by-app-frequency"), None, ErrorKind::RateLimited { ban: DEFAULT_BAN }),
            (8, None, Some("This ban will last for 3 more seconds"), ban(3)),
            (15, Some("isp.top-remote-connection-timeout"), None, ErrorKind::Remote),
            (15, Some("isp.remote-service-timeout"), None, ErrorKind::Remote),
            (15, Some("isp.top-remote-service-unavailable"), None, ErrorKind::Remote),
            (15, Some("isp.anything-else"), None, ErrorKind::Remote),
            (15, None, None, ErrorKind::Remote),
            (15, Some("isv.trade-service-rejection"), None, ErrorKind::Overloaded),
            (11, Some("isv.permission-api-package-limit"), None, ErrorKind::Permission),
            (11, None, None, ErrorKind::Permission),
            (25, None, Some("Invalid signature"), ErrorKind::Signature),
            (26, None, None, ErrorKind::SessionExpired),
            (27, Some("invalid-sessionkey"), None, ErrorKind::SessionExpired),
            (27, None, None, ErrorKind::SessionExpired),
            (40, Some("isv.missing-parameter:fields"), None, ErrorKind::BadRequest),
            (41, Some("isv.invalid-parameter:end_modified"), None, ErrorKind::BadRequest),
            (41, None, None, ErrorKind::BadRequest),
            (15, Some("isv.invalid-parameter"), None, ErrorKind::BadRequest),
            (15, Some("isv.trade-not-exist"), None, ErrorKind::Other),
            (99, None, None, ErrorKind::Other),
        ];
        for (code, sub_code, sub_msg, expected) in table {
            assert_eq!(classify(*code, *sub_code, *sub_msg), *expected, "code {code} {sub_code:?} {sub_msg:?}");
        }
    }

    #[test]
    fn ban_lengths_are_read_from_the_sub_message() {
        assert_eq!(ban_length("This ban will last for 31 more seconds"), Some(Duration::from_secs(31)));
        assert_eq!(ban_length("this ban will last for 2 more hours"), Some(Duration::from_secs(7200)));
        assert_eq!(ban_length("This ban will last for 5 minutes"), Some(Duration::from_secs(300)));
        assert_eq!(ban_length("This ban will last for 0 more seconds"), Some(Duration::from_secs(1)));
        assert_eq!(ban_length("This ban will last for ever"), None);
        assert_eq!(ban_length("ban 31 seconds"), None);
    }

    #[test]
    fn an_error_response_is_read_leniently_and_described_without_parameters() {
        let json = serde_json::json!({
            "code": "27", "msg": "Invalid session", "sub_code": "invalid-sessionkey",
            "sub_msg": "SessionKey非法", "request_id": "abc123"
        });
        let error = ApiError::from_json(&json);
        assert_eq!(error.code, 27);
        assert_eq!(error.kind(), ErrorKind::SessionExpired);
        let platform = error.into_platform_error("taobao.trades.sold.get");
        assert_eq!(platform.message, "code 27 (Invalid session), sub_code invalid-sessionkey (SessionKey非法)");
        assert_eq!(platform.request_id.as_deref(), Some("abc123"));
    }

    #[test]
    fn not_found_is_told_apart() {
        let error = |sub: &str| ApiError::from_json(&serde_json::json!({"code": 15, "sub_code": sub}));
        assert!(error("isv.trade-not-exist").is_not_found());
        assert!(error("isv.refund-not-found").is_not_found());
        assert!(!error("isp.top-remote-connection-timeout").is_not_found());
        assert!(!error("isv.invalid-parameter").is_not_found());
    }

    #[test]
    fn http_statuses_map_to_kinds() {
        let kind = |status, retry| http_status("m", status, retry, "").kind;
        assert_eq!(kind(502, None), ErrorKind::Remote);
        assert_eq!(http_status("m", 502, None, "<html>Bad Gateway</html>").kind, ErrorKind::Malformed(Anomaly::Html));
        assert_eq!(kind(408, None), ErrorKind::Remote);
        assert_eq!(kind(429, Some(Duration::from_secs(5))), ErrorKind::RateLimited { ban: Duration::from_secs(5) });
        assert_eq!(kind(429, None), ErrorKind::RateLimited { ban: DEFAULT_BAN });
        assert_eq!(kind(403, None), ErrorKind::Permission);
        assert_eq!(kind(404, None), ErrorKind::BadRequest);
        assert_eq!(transport("m", "timed out").kind, ErrorKind::Remote);
    }
}
