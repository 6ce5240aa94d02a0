//! What a Douyin failure means for the caller: the envelope's `code` and
//! `sub_code`, mapped onto the same [`ErrorKind`]s as Taobao's.
//!
//! Only `code == 10000` (success) is confirmed by the documentation. The
//! other codes below are assumed from what public clients handle; the
//! classifier therefore reads the `sub_code` first (`isp.*` is the platform's
//! fault, as on TOP) and the code only after, so a code guessed wrong still
//! lands in the right class when the sub-code says it. The simulator answers
//! with these same constants.

use std::fmt;

use serde_json::Value as Json;

use crate::platforms::taobao::error::{DEFAULT_BAN, Malformed, ban_length};
use crate::platforms::{ErrorKind, PlatformError};

/// Success.
pub const CODE_SUCCESS: i64 = 10000;
/// The platform's own trouble (assumed): retry with backoff.
pub const CODE_SERVICE_UNAVAILABLE: i64 = 20000;
/// The app lacks the permission (assumed).
pub const CODE_PERMISSION: i64 = 30001;
/// The `access_token` is invalid or expired (assumed): the seller must
/// authorise again.
pub const CODE_TOKEN_INVALID: i64 = 30002;
/// The signature does not match (assumed).
pub const CODE_SIGNATURE: i64 = 40003;
/// A parameter is missing or invalid (assumed).
pub const CODE_BAD_PARAMETER: i64 = 40004;
/// A business rule refused the call, e.g. an unknown order (assumed).
pub const CODE_BUSINESS: i64 = 50002;
/// The app is over its quota (assumed).
pub const CODE_RATE_LIMITED: i64 = 90000;

/// The sub-code of a refusal because the query is too heavy (assumed; TOP's
/// `isv.trade-service-rejection`): shrink the window and wait.
pub const SUB_OVERLOADED: &str = "isv.query-too-heavy";
/// The sub-code of an unknown order or after-sale (assumed).
pub const SUB_NOT_FOUND: &str = "isv.business-failed:record-not-exist";

/// A Douyin envelope whose `code` is not 10000: the platform refused the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The envelope's `code`.
    pub code: i64,
    /// Its message.
    pub msg: String,
    /// The detailed reason, if given.
    pub sub_code: Option<String>,
    /// The detailed reason in words; for a rate limit it may state the ban.
    pub sub_msg: Option<String>,
    /// Douyin's id of the request (`log_id`), for support tickets.
    pub log_id: Option<String>,
}

impl ApiError {
    /// Reads an envelope whose code is not success; lenient about codes
    /// written as strings.
    pub fn from_json(value: &Json) -> Self {
        let text = |key: &str| match value.get(key) {
            Some(Json::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Json::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        Self {
            code: value.get("code").and_then(crate::platforms::taobao::envelope::id).unwrap_or(0),
            msg: text("msg").unwrap_or_default(),
            sub_code: text("sub_code"),
            sub_msg: text("sub_msg"),
            log_id: text("log_id"),
        }
    }

    /// What the caller should do about it.
    pub fn kind(&self) -> ErrorKind {
        classify(self.code, self.sub_code.as_deref(), self.sub_msg.as_deref())
    }

    /// Whether Douyin says the record asked for does not exist, which
    /// single-record lookups report as "none".
    pub fn is_not_found(&self) -> bool {
        self.sub_code.as_deref().is_some_and(|sub| {
            let sub = sub.to_ascii_lowercase();
            sub.starts_with("isv.") && (sub.contains("not-exist") || sub.contains("not-found"))
        })
    }

    /// The error for `method`, with this answer's code and texts as message.
    pub fn into_platform_error(self, method: &str) -> PlatformError {
        PlatformError {
            kind: self.kind(),
            method: method.to_owned(),
            message: self.to_string(),
            request_id: self.log_id,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::platforms::write_codes(f, self.code, &self.msg, self.sub_code.as_deref(), self.sub_msg.as_deref())
    }
}

/// Why an answer could not be used: Douyin refused, or it said something we
/// cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// An envelope with a code other than 10000.
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

    /// The class, for metrics.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Api(error) => error.kind(),
            Self::Malformed(malformed) => ErrorKind::Malformed(malformed.anomaly),
        }
    }
}

/// Maps a refusal onto what to do: a rate limit first (a ban is a ban), then
/// the sub-codes that say whose fault it is, then the codes.
pub fn classify(code: i64, sub_code: Option<&str>, sub_msg: Option<&str>) -> ErrorKind {
    let sub = sub_code.unwrap_or("").trim().to_ascii_lowercase();
    // Which words a real limit's sub-code holds is assumed (docs/platforms.md):
    // TOP's kin (`accesscontrol.limited-by-app-access-count`, `...-frequency`)
    // and the usual ones.
    let limited = ["call-limited", "rate-limit", "limited-by", "frequency"].iter().any(|word| sub.contains(word));
    if code == CODE_RATE_LIMITED || limited {
        return ErrorKind::RateLimited { ban: sub_msg.and_then(ban_length).unwrap_or(DEFAULT_BAN) };
    }
    if sub == SUB_OVERLOADED {
        return ErrorKind::Overloaded;
    }
    if sub.starts_with("isp.") {
        return ErrorKind::Remote;
    }
    if sub.contains("access-token") {
        return ErrorKind::SessionExpired;
    }
    match code {
        CODE_SERVICE_UNAVAILABLE => ErrorKind::Remote,
        CODE_PERMISSION => ErrorKind::Permission,
        CODE_TOKEN_INVALID => ErrorKind::SessionExpired,
        CODE_SIGNATURE => ErrorKind::Signature,
        CODE_BAD_PARAMETER => ErrorKind::BadRequest,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_code_maps_to_the_same_class_as_its_taobao_kin() {
        let table: &[(i64, Option<&str>, Option<&str>, ErrorKind)] = &[
            (
                CODE_RATE_LIMITED,
                Some("isv.app-call-limited"),
                Some("This ban will last for 31 more seconds"),
                ErrorKind::RateLimited { ban: Duration::from_secs(31) },
            ),
            (CODE_RATE_LIMITED, None, None, ErrorKind::RateLimited { ban: DEFAULT_BAN }),
            (
                CODE_BUSINESS,
                Some("isv.call-frequency-exceeded"),
                Some("This ban will last for 5 more seconds"),
                ErrorKind::RateLimited { ban: Duration::from_secs(5) },
            ),
            (CODE_SERVICE_UNAVAILABLE, Some("isp.service-timeout"), None, ErrorKind::Remote),
            (CODE_BUSINESS, Some("isp.remote-connection-timeout"), None, ErrorKind::Remote),
            (CODE_SERVICE_UNAVAILABLE, Some(SUB_OVERLOADED), None, ErrorKind::Overloaded),
            (CODE_TOKEN_INVALID, Some("isv.access-token-expired"), None, ErrorKind::SessionExpired),
            (CODE_TOKEN_INVALID, None, None, ErrorKind::SessionExpired),
            (CODE_SIGNATURE, Some("isv.sign-invalid"), None, ErrorKind::Signature),
            (CODE_PERMISSION, Some("isv.permission-denied"), None, ErrorKind::Permission),
            (CODE_BAD_PARAMETER, Some("isv.parameter-invalid:page"), None, ErrorKind::BadRequest),
            (CODE_BUSINESS, Some(SUB_NOT_FOUND), None, ErrorKind::Other),
        ];
        for (code, sub_code, sub_msg, kind) in table {
            assert_eq!(classify(*code, *sub_code, *sub_msg), *kind, "{code} {sub_code:?}");
        }
        assert!(ErrorKind::SessionExpired.label() == classify(CODE_TOKEN_INVALID, None, None).label());
    }

    #[test]
    fn not_found_is_told_apart_and_log_id_is_kept() {
        let error = ApiError::from_json(&serde_json::json!({
            "code": "50002", "msg": "业务处理失败", "sub_code": SUB_NOT_FOUND, "log_id": "L1"
        }));
        assert_eq!(error.code, CODE_BUSINESS);
        assert!(error.is_not_found());
        let platform = error.into_platform_error("order.orderDetail");
        assert_eq!(platform.request_id.as_deref(), Some("L1"));
        assert!(platform.message.contains("code 50002"), "{}", platform.message);
    }
}
