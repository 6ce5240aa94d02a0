//! Reading a TOP answer body: the envelope around it, and the small
//! leniencies real answers need.
//!
//! A success is `{"<method without taobao., dots as _>_response": {...}}`, a
//! refusal `{"error_response": {...}}`. Real answers sometimes hold raw
//! control characters inside strings (which JSON forbids and serde_json
//! refuses), write ids as strings, or leave an empty list out altogether;
//! gateways in front of TOP sometimes answer with an HTML page. Ids are read
//! as integers, never through `f64`, because a `tid` can exceed 2^53.

use std::borrow::Cow;

use serde_json::Value as Json;

use super::error::{AnswerError, ApiError, Malformed};
use crate::platforms::Anomaly;

/// The longest excerpt of an answer quoted in an error message: enough to
/// recognise an HTML page or where JSON broke off, short enough for a log line.
pub const EXCERPT_CHARS: usize = 200;

/// The key the success body sits under: `taobao.trades.sold.get` →
/// `trades_sold_get_response`.
pub fn root_key(method: &str) -> String {
    let name = method.strip_prefix("taobao.").unwrap_or(method);
    format!("{}_response", name.replace('.', "_"))
}

/// The success body of `method`'s answer, or why there is none.
pub fn parse(method: &str, body: &[u8]) -> Result<Json, AnswerError> {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return Err(Malformed::new(Anomaly::Empty, "empty answer".to_owned()).into());
    }
    let escaped = escape_control_characters(&text);
    let value: Json = serde_json::from_str(&escaped).map_err(|error| not_json(&text, &error))?;
    let Json::Object(mut map) = value else {
        return Err(Malformed::new(Anomaly::NotJson, format!("not a JSON object: {:?}", excerpt(&text))).into());
    };
    if let Some(error) = map.get("error_response") {
        check_error_response(error, &text)?;
        return Err(AnswerError::Api(ApiError::from_json(error)));
    }
    let root = root_key(method);
    let missing = |what: String| Malformed::new(Anomaly::MissingBody, format!("{what}: {:?}", excerpt(&text)));
    match map.remove(&root) {
        Some(body @ Json::Object(_)) => Ok(body),
        // `{"x_response": null}` or `[]` carries nothing: an empty answer
        // rather than a broken one.
        Some(Json::Null) => Ok(Json::Object(Default::default())),
        Some(Json::Array(items)) if items.is_empty() => Ok(Json::Object(Default::default())),
        Some(_) => Err(missing(format!("\"{root}\" is not an object")).into()),
        None => Err(missing(format!("no \"{root}\" in the answer")).into()),
    }
}

/// The texts of an `error_response` (TOP documents them all as strings).
const ERROR_TEXTS: [&str; 4] = ["msg", "sub_code", "sub_msg", "request_id"];

/// Whether an `error_response` has TOP's shape: an object whose `code` is a
/// number (or its digits, as gateways in front of TOP write it) and whose
/// texts are strings. Anything else is no refusal TOP sent, and is reported
/// as a malformed answer quoting it, not as a refusal of code 0.
fn check_error_response(error: &Json, text: &str) -> Result<(), Malformed> {
    let wrong = |what: String| Malformed::field(format!("error_response {what}: {:?}", excerpt(text)));
    let Json::Object(fields) = error else {
        return Err(wrong("is not an object".to_owned()));
    };
    match fields.get("code") {
        Some(Json::Number(number)) if number.is_i64() => {}
        Some(Json::String(code)) if code.trim().parse::<i64>().is_ok() => {}
        Some(_) => return Err(wrong("has a code that is not a number".to_owned())),
        None => return Err(wrong("has no code".to_owned())),
    }
    for key in ERROR_TEXTS {
        if !matches!(fields.get(key), None | Some(Json::Null | Json::String(_))) {
            return Err(wrong(format!("has a {key} that is not text")));
        }
    }
    Ok(())
}

/// Why `text` did not parse, told apart the way an operator would: a web
/// page, JSON cut short, or something else.
pub fn not_json(text: &str, error: &serde_json::Error) -> Malformed {
    let start = text.trim_start();
    let anomaly = if start.starts_with('<') {
        Anomaly::Html
    } else if error.is_eof() {
        Anomaly::Truncated
    } else {
        Anomaly::NotJson
    };
    let what = match anomaly {
        Anomaly::Html => "an HTML page, not JSON".to_owned(),
        Anomaly::Truncated => format!("JSON cut short ({error})"),
        _ => format!("not JSON ({error})"),
    };
    Malformed::new(anomaly, format!("{what}: {:?}", excerpt(text)))
}

/// `text` with raw control characters inside JSON strings written as
/// `\u00XX` escapes, leaving whitespace between tokens alone; borrowed when
/// there is nothing to escape, which is nearly always.
pub fn escape_control_characters(text: &str) -> Cow<'_, str> {
    let needs = {
        let mut in_string = false;
        let mut escaped = false;
        text.bytes().any(|byte| step(byte, &mut in_string, &mut escaped))
    };
    if !needs {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    for ch in text.chars() {
        // Control characters are all ASCII, so a char-wise walk sees the same
        // structure as the byte-wise one above.
        let byte = if ch.is_ascii() { ch as u8 } else { b'a' };
        if step(byte, &mut in_string, &mut escaped) {
            out.push_str(&format!("\\u{:04x}", ch as u32));
        } else {
            out.push(ch);
        }
    }
    Cow::Owned(out)
}

/// Advances the string-tracking state over one byte; true when the byte is a
/// control character inside a string (and so must be escaped).
fn step(byte: u8, in_string: &mut bool, escaped: &mut bool) -> bool {
    if !*in_string {
        if byte == b'"' {
            *in_string = true;
        }
        return false;
    }
    if byte < 0x20 {
        // A raw control character also ends any escape it follows; `\` then a
        // raw newline then reads as a backslash and the escape's text, which
        // is as near as broken input gets.
        *escaped = false;
        return true;
    }
    if *escaped {
        *escaped = false;
    } else if byte == b'\\' {
        *escaped = true;
    } else if byte == b'"' {
        *in_string = false;
    }
    false
}

/// At most [`EXCERPT_CHARS`] characters of an answer (a cut one ends in
/// `…`), for error messages.
pub fn excerpt(text: &str) -> String {
    let trimmed = text.trim();
    if trimmed.chars().nth(EXCERPT_CHARS).is_none() {
        return trimmed.to_owned();
    }
    let mut cut: String = trimmed.chars().take(EXCERPT_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// The records of a TOP list: `{"trades": {"trade": [...]}}` holds them under
/// `outer` then `inner`. An absent list, `null`, `{}` or `""` is empty; a
/// bare array, or a single object where one would expect an array of one, is
/// taken as it comes.
pub fn list<'a>(parent: &'a Json, outer: &str, inner: &str) -> Vec<&'a Json> {
    let Some(container) = parent.get(outer) else {
        return Vec::new();
    };
    let items = match container {
        Json::Array(_) => container,
        Json::Object(map) => match map.get(inner) {
            Some(items) => items,
            None => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    match items {
        Json::Array(items) => items.iter().collect(),
        Json::Object(_) => vec![items],
        _ => Vec::new(),
    }
}

/// The records of a page's list, as [`list`] reads them, or why the list is
/// unreadable: a container or a record list of text, a number or a flag
/// (the list as its JSON text, say) is a mistyped answer, never an empty page.
pub fn page_records<'a>(parent: &'a Json, outer: &str, inner: &str) -> Result<Vec<&'a Json>, Malformed> {
    let container = parent.get(outer);
    let items = container.and_then(|container| container.get(inner));
    for (what, value) in [(outer.to_owned(), container), (format!("{outer}.{inner}"), items)] {
        if let Some(value @ (Json::String(_) | Json::Number(_) | Json::Bool(_))) = value {
            return Err(Malformed::field(format!("{what} is not a list: {}", excerpt(&value.to_string()))));
        }
    }
    Ok(list(parent, outer, inner))
}

/// The record of a single-record answer (`trade`, `refund`): `None` when
/// absent, `null` or `{}` (nothing found); anything but an object is a
/// mistyped answer.
pub fn single_record<'a>(body: &'a Json, key: &str) -> Result<Option<&'a Json>, Malformed> {
    match body.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Object(map)) if map.is_empty() => Ok(None),
        Some(record @ Json::Object(_)) => Ok(Some(record)),
        Some(other) => Err(Malformed::field(format!("{key} is not an object: {}", excerpt(&other.to_string())))),
    }
}

/// An id written as an integer or as a string of digits. Integers never pass
/// through `f64` (serde_json keeps them exact); a number with a fraction or
/// beyond `i64` is not an id.
pub fn id(value: &Json) -> Option<i64> {
    match value {
        Json::Number(number) => number.as_i64(),
        Json::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A field that must be text; numbers are accepted as their digits (TOP
/// writes `sku_id` as either). Absent, `null` and `""` are `None`.
pub fn text(parent: &Json, key: &str) -> Option<String> {
    match parent.get(key)? {
        Json::String(text) if text.is_empty() => None,
        Json::String(text) => Some(text.clone()),
        Json::Number(number) => Some(number.to_string()),
        Json::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Whether `parent[key]` is absent or carries nothing (`null`, `""`).
pub fn is_blank(parent: &Json, key: &str) -> bool {
    match parent.get(key) {
        None | Some(Json::Null) => true,
        Some(Json::String(text)) => text.trim().is_empty(),
        _ => false,
    }
}

/// A count or flag TOP writes as a number, a string of digits, or a boolean.
pub fn integer(value: &Json) -> Option<i64> {
    match value {
        Json::Bool(flag) => Some(i64::from(*flag)),
        other => id(other),
    }
}

/// A boolean TOP writes as `true`, `"true"`, or 0/1.
pub fn boolean(value: &Json) -> Option<bool> {
    match value {
        Json::Bool(flag) => Some(*flag),
        Json::String(text) => match text.trim() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Json::Number(number) => number.as_i64().map(|n| n != 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platforms::ErrorKind;

    const METHOD: &str = "taobao.trades.sold.get";

    fn malformed(body: &str) -> String {
        match parse(METHOD, body.as_bytes()) {
            Err(AnswerError::Malformed(Malformed { message, .. })) => message,
            other => panic!("expected malformed for {body:?}, got {other:?}"),
        }
    }

    #[test]
    fn the_root_key_comes_from_the_method() {
        assert_eq!(root_key("taobao.trades.sold.get"), "trades_sold_get_response");
        assert_eq!(root_key("taobao.trades.sold.increment.get"), "trades_sold_increment_get_response");
        assert_eq!(root_key("taobao.tmc.messages.consume"), "tmc_messages_consume_response");
    }

    #[test]
    fn a_success_body_is_returned_from_under_its_root() {
        let body = r#"{"trades_sold_get_response":{"total_results":1,"trades":{"trade":[{"tid":1}]}}}"#;
        let value = parse(METHOD, body.as_bytes()).unwrap();
        assert_eq!(value["total_results"], 1);
        assert_eq!(list(&value, "trades", "trade").len(), 1);
    }

    #[test]
    fn an_error_response_becomes_a_typed_error() {
        let body = r#"{"error_response":{"code":7,"msg":"App Call Limited","sub_code":"accesscontrol.limited-by-app-access-count","sub_msg":"This ban will last for 31 more seconds","request_id":"r1"}}"#;
        let Err(AnswerError::Api(error)) = parse(METHOD, body.as_bytes()) else { panic!("expected an API error") };
        assert_eq!(error.kind(), ErrorKind::RateLimited { ban: std::time::Duration::from_secs(31) });
        assert_eq!(error.request_id.as_deref(), Some("r1"));
    }

    #[test]
    fn an_error_response_of_the_wrong_types_is_malformed_not_a_code() {
        for (body, what) in [
            (r#"{"error_response":{"code":{"value":7},"msg":"App Call Limited"}}"#, "code that is not a number"),
            (r#"{"error_response":{"code":7,"sub_code":5}}"#, "sub_code that is not text"),
            (r#"{"error_response":{"code":"seven","msg":"x"}}"#, "code that is not a number"),
            (r#"{"error_response":{"code":1.5}}"#, "code that is not a number"),
            (r#"{"error_response":{"msg":"no code"}}"#, "has no code"),
            (r#"{"error_response":{"code":15,"msg":["a"]}}"#, "msg that is not text"),
            (r#"{"error_response":"busy"}"#, "is not an object"),
        ] {
            let Err(AnswerError::Malformed(malformed)) = parse(METHOD, body.as_bytes()) else {
                panic!("{body} is not malformed")
            };
            assert_eq!(malformed.anomaly, Anomaly::WrongType, "{body}");
            assert!(
                malformed.message.starts_with("error_response ") && malformed.message.contains(what),
                "{body}: {}",
                malformed.message
            );
        }
        let string_code = r#"{"error_response":{"code":"27","msg":"Invalid session","sub_msg":null}}"#;
        let Err(AnswerError::Api(error)) = parse(METHOD, string_code.as_bytes()) else { panic!("a refusal expected") };
        assert_eq!(error.code, 27);
    }

    #[test]
    fn raw_control_characters_inside_strings_are_tolerated() {
        let body = "{\"trades_sold_get_response\":{\n\t\"trades\":{\"trade\":[{\"tid\":1,\"buyer_message\":\"line1\nline2\ttab\u{1}\\\"q\\\\\"}]}}}";
        assert!(serde_json::from_str::<Json>(body).is_err(), "serde_json alone refuses this");
        let value = parse(METHOD, body.as_bytes()).unwrap();
        let trade = list(&value, "trades", "trade")[0];
        assert_eq!(trade["buyer_message"], "line1\nline2\ttab\u{1}\"q\\");
        assert!(matches!(escape_control_characters("{\"a\": \"b\"}\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn ids_above_2_pow_53_stay_exact() {
        let body = r#"{"trades_sold_get_response":{"trades":{"trade":[{"tid":4611686018427387905,"oid":"4611686018427387907"}]}}}"#;
        let value = parse(METHOD, body.as_bytes()).unwrap();
        let trade = list(&value, "trades", "trade")[0];
        assert_eq!(id(&trade["tid"]), Some(4_611_686_018_427_387_905));
        assert_eq!(id(&trade["oid"]), Some(4_611_686_018_427_387_907));
        assert_eq!(id(&serde_json::json!(9007199254740993_i64)), Some(9_007_199_254_740_993));
        assert_eq!(id(&serde_json::json!(1.5)), None);
        assert_eq!(id(&serde_json::json!("12a")), None);
    }

    #[test]
    fn an_absent_or_empty_list_is_empty() {
        for body in [
            r#"{"trades_sold_get_response":{"total_results":0}}"#,
            r#"{"trades_sold_get_response":{"trades":{}}}"#,
            r#"{"trades_sold_get_response":{"trades":null}}"#,
            r#"{"trades_sold_get_response":{"trades":{"trade":[]}}}"#,
            r#"{"trades_sold_get_response":{}}"#,
        ] {
            let value = parse(METHOD, body.as_bytes()).unwrap();
            assert!(list(&value, "trades", "trade").is_empty(), "{body}");
        }
        let bare = serde_json::json!({"trades": [{"tid": 1}, {"tid": 2}]});
        assert_eq!(list(&bare, "trades", "trade").len(), 2);
        let single = serde_json::json!({"trades": {"trade": {"tid": 1}}});
        assert_eq!(list(&single, "trades", "trade").len(), 1);
    }

    #[test]
    fn a_list_or_a_record_of_the_wrong_type_is_malformed_not_empty() {
        let text = serde_json::json!({"trades": {"trade": "[{\"tid\":1}]"}});
        let error = page_records(&text, "trades", "trade").unwrap_err();
        assert_eq!(error.anomaly, Anomaly::WrongType);
        assert!(error.message.starts_with("trades.trade is not a list"), "{}", error.message);
        assert!(page_records(&serde_json::json!({"trades": 5}), "trades", "trade").is_err());
        for fine in [
            serde_json::json!({}),
            serde_json::json!({"trades": null}),
            serde_json::json!({"trades": {"trade": [{"tid": 1}]}}),
        ] {
            assert_eq!(page_records(&fine, "trades", "trade").unwrap(), list(&fine, "trades", "trade"));
        }
        assert!(single_record(&serde_json::json!({"trade": "{}"}), "trade").is_err());
        assert_eq!(single_record(&serde_json::json!({"trade": {}}), "trade").unwrap(), None);
        assert_eq!(single_record(&serde_json::json!({}), "trade").unwrap(), None);
        let body = serde_json::json!({"trade": {"tid": 1}});
        assert_eq!(single_record(&body, "trade").unwrap(), Some(&body["trade"]));
    }

    #[test]
    fn html_empty_truncated_and_rootless_answers_are_malformed_with_a_short_excerpt() {
        let html = format!("<html><head><title>502 Bad Gateway</title></head><body>{}</body></html>", "x".repeat(500));
        let message = malformed(&html);
        assert!(message.contains("502 Bad Gateway"), "{message}");
        assert!(message.chars().count() < EXCERPT_CHARS + 100, "{message}");
        assert_eq!(malformed(""), "empty answer");
        assert_eq!(malformed("  \n"), "empty answer");
        assert!(malformed(r#"{"trades_sold_get_response":{"trades":{"trade":[{"tid":1"#).contains("JSON cut short"));
        let rootless = malformed(r#"{"trades_sold_increment_get_response":{}}"#);
        assert!(rootless.contains("no \"trades_sold_get_response\""), "{rootless}");
        assert!(malformed("[1,2]").contains("not a JSON object"));
        assert!(malformed(r#"{"trades_sold_get_response":"x"}"#).contains("is not an object"));
    }

    #[test]
    fn each_broken_answer_is_told_apart_as_its_anomaly() {
        let anomaly = |body: &str| match parse(METHOD, body.as_bytes()) {
            Err(AnswerError::Malformed(malformed)) => Some(malformed.anomaly),
            _ => None,
        };
        assert_eq!(anomaly("\r\n <!DOCTYPE html><html>502</html>"), Some(Anomaly::Html));
        assert_eq!(anomaly(""), Some(Anomaly::Empty));
        assert_eq!(anomaly(r#"{"trades_sold_get_response":{"trades":"#), Some(Anomaly::Truncated));
        assert_eq!(anomaly("Service Unavailable"), Some(Anomaly::NotJson));
        assert_eq!(anomaly("42"), Some(Anomaly::NotJson));
        assert_eq!(anomaly(r#"{"request_id":"x"}"#), Some(Anomaly::MissingBody));
        assert_eq!(anomaly(r#"{"trades_sold_get_response":{}}"#), None);
    }

    #[test]
    fn excerpts_are_cut_at_200_characters() {
        let long = "é".repeat(300);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt(" short "), "short");
    }

    #[test]
    fn text_and_flags_are_read_leniently() {
        let value = serde_json::json!({"a": "x", "b": 12, "c": "", "d": null, "e": "true", "f": 0});
        assert_eq!(text(&value, "a").as_deref(), Some("x"));
        assert_eq!(text(&value, "b").as_deref(), Some("12"));
        assert_eq!(text(&value, "c"), None);
        assert_eq!(text(&value, "d"), None);
        assert_eq!(text(&value, "z"), None);
        assert!(is_blank(&value, "c") && is_blank(&value, "d") && is_blank(&value, "z") && !is_blank(&value, "a"));
        assert_eq!(boolean(&value["e"]), Some(true));
        assert_eq!(boolean(&value["f"]), Some(false));
        assert_eq!(integer(&value["b"]), Some(12));
    }
}
