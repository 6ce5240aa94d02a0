//! Reading a Douyin answer: `{code, msg, sub_code, sub_msg, data, log_id}`,
//! `code == 10000` meaning success. Broken answers (HTML, empty, cut short,
//! not an object, a success without `data`) are told apart as the same
//! [`Anomaly`] kinds as Taobao's, with the same excerpts.

use serde_json::Value as Json;

use super::error::{AnswerError, ApiError, CODE_SUCCESS};
use crate::platforms::Anomaly;
use crate::platforms::taobao::envelope::{escape_control_characters, excerpt, id, not_json};
use crate::platforms::taobao::error::Malformed;

/// The `data` of a success, or why there is none.
pub fn parse(body: &[u8]) -> Result<Json, AnswerError> {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return Err(Malformed::new(Anomaly::Empty, "empty answer".to_owned()).into());
    }
    let value: Json =
        serde_json::from_str(&escape_control_characters(&text)).map_err(|error| not_json(&text, &error))?;
    let Json::Object(mut map) = value else {
        return Err(Malformed::new(Anomaly::NotJson, format!("not a JSON object: {:?}", excerpt(&text))).into());
    };
    let missing = |what: &str| Malformed::new(Anomaly::MissingBody, format!("{what}: {:?}", excerpt(&text)));
    let Some(code) = map.get("code") else { return Err(missing("no \"code\" in the answer").into()) };
    if id(code) != Some(CODE_SUCCESS) {
        return Err(AnswerError::Api(ApiError::from_json(&Json::Object(map))));
    }
    match map.remove("data") {
        Some(data @ Json::Object(_)) => Ok(data),
        // `"data": null` carries nothing: an empty answer, not a broken one.
        Some(Json::Null) => Ok(Json::Object(Default::default())),
        Some(_) => Err(missing("\"data\" is not an object").into()),
        None => Err(missing("a success without \"data\"").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platforms::ErrorKind;
    use crate::platforms::douyin::error::{CODE_RATE_LIMITED, CODE_TOKEN_INVALID};

    fn anomaly(body: &str) -> Option<Anomaly> {
        match parse(body.as_bytes()) {
            Err(AnswerError::Malformed(malformed)) => Some(malformed.anomaly),
            _ => None,
        }
    }

    #[test]
    fn a_success_returns_its_data() {
        let body = r#"{"code":10000,"msg":"success","data":{"total":1,"shop_order_list":[{"order_id":"4611686018427387905"}]},"log_id":"x"}"#;
        let data = parse(body.as_bytes()).unwrap();
        assert_eq!(data["total"], 1);
        assert_eq!(id(&data["shop_order_list"][0]["order_id"]), Some(4_611_686_018_427_387_905));
        assert_eq!(parse(br#"{"code":"10000","data":null}"#).unwrap(), serde_json::json!({}));
    }

    #[test]
    fn each_error_class_comes_through_the_envelope() {
        let error = |body: &str| match parse(body.as_bytes()) {
            Err(AnswerError::Api(error)) => error,
            other => panic!("expected an API error for {body}, got {other:?}"),
        };
        let limited = error(&format!(
            r#"{{"code":{CODE_RATE_LIMITED},"msg":"limited","sub_code":"isv.app-call-limited","sub_msg":"This ban will last for 12 more seconds","log_id":"L"}}"#
        ));
        assert_eq!(limited.kind(), ErrorKind::RateLimited { ban: std::time::Duration::from_secs(12) });
        assert_eq!(limited.log_id.as_deref(), Some("L"));
        let token = error(&format!(r#"{{"code":{CODE_TOKEN_INVALID},"msg":"access_token已过期","data":null}}"#));
        assert_eq!(token.kind(), ErrorKind::SessionExpired);
        assert_eq!(error(r#"{"code":20000,"sub_code":"isp.service-timeout"}"#).kind(), ErrorKind::Remote);
        assert_eq!(error(r#"{"code":40004,"sub_code":"isv.parameter-invalid:size"}"#).kind(), ErrorKind::BadRequest);
        assert_eq!(error(r#"{"code":"oops"}"#).kind(), ErrorKind::Other);
    }

    #[test]
    fn html_empty_truncated_and_bodiless_answers_are_the_same_anomalies_as_taobao() {
        assert_eq!(anomaly("<html><title>502 Bad Gateway</title></html>"), Some(Anomaly::Html));
        assert_eq!(anomaly(""), Some(Anomaly::Empty));
        assert_eq!(anomaly(" \r\n"), Some(Anomaly::Empty));
        assert_eq!(anomaly(r#"{"code":10000,"data":{"shop_order_list":[{"order_id":"1"#), Some(Anomaly::Truncated));
        assert_eq!(anomaly("Service Unavailable"), Some(Anomaly::NotJson));
        assert_eq!(anomaly("[1]"), Some(Anomaly::NotJson));
        assert_eq!(anomaly(r#"{"msg":"no code"}"#), Some(Anomaly::MissingBody));
        assert_eq!(anomaly(r#"{"code":10000}"#), Some(Anomaly::MissingBody));
        assert_eq!(anomaly(r#"{"code":10000,"data":"x"}"#), Some(Anomaly::MissingBody));
        assert_eq!(anomaly(r#"{"code":10000,"data":{}}"#), None);
    }

    #[test]
    fn raw_control_characters_inside_strings_are_tolerated() {
        let body = "{\"code\":10000,\"data\":{\"buyer_words\":\"a\nb\"}}";
        assert_eq!(parse(body.as_bytes()).unwrap()["buyer_words"], "a\nb");
    }
}
