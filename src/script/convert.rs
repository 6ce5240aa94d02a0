//! JSON <-> Rhai value conversion.
//!
//! Order ids (`tid`) exceed 2^53, so integers never pass through `f64`:
//! anything that fits `i64` stays an integer, and the few `u64` values above
//! `i64::MAX` become strings rather than silently losing digits.

use rhai::{Array, Dynamic, Map as RhaiMap};
use serde_json::{Map, Number, Value};

use super::{ScriptError, ScriptErrorKind, type_label};

/// Deeper nesting than this cannot come from a record (serde_json stops at 128
/// while parsing), so it means something pathological and is refused instead
/// of risking the stack.
const MAX_DEPTH: usize = 256;

/// Converts a JSON value into a Rhai value.
///
/// Objects become object maps, arrays arrays, `null` becomes `()`. Integers
/// that fit `i64` stay integers; larger unsigned ones become strings so no digit
/// is lost; other numbers become floats.
pub fn json_to_dynamic(value: &Value) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => number_to_dynamic(n),
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(items) => Dynamic::from_array(items.iter().map(json_to_dynamic).collect()),
        Value::Object(fields) => Dynamic::from_map(fields_to_map(fields)),
    }
}

/// Converts a record's fields into a Rhai object map.
pub fn fields_to_map(fields: &Map<String, Value>) -> RhaiMap {
    fields.iter().map(|(k, v)| (k.as_str().into(), json_to_dynamic(v))).collect()
}

fn number_to_dynamic(n: &Number) -> Dynamic {
    if let Some(i) = n.as_i64() {
        Dynamic::from_int(i)
    } else if let Some(u) = n.as_u64() {
        // Only reached for u64 > i64::MAX: a float would round it.
        Dynamic::from(u.to_string())
    } else {
        n.as_f64().map_or(Dynamic::UNIT, Dynamic::from_float)
    }
}

/// Converts a Rhai value back into JSON.
///
/// Non-finite floats (NaN, infinity) have no JSON form and become `null`;
/// characters become one-character strings and BLOBs arrays of bytes. Values
/// that have no JSON meaning (function pointers, timestamps, ranges, …) are a
/// runtime error naming the type.
pub fn dynamic_to_json(value: &Dynamic) -> Result<Value, ScriptError> {
    to_json(value, 0)
}

/// Converts a Rhai object map into record fields (keys in the map's order).
pub fn map_to_fields(map: &RhaiMap) -> Result<Map<String, Value>, ScriptError> {
    map_to_json(map, 0)
}

fn map_to_json(map: &RhaiMap, depth: usize) -> Result<Map<String, Value>, ScriptError> {
    map.iter().map(|(k, v)| Ok((k.to_string(), to_json(v, depth + 1)?))).collect()
}

fn to_json(value: &Dynamic, depth: usize) -> Result<Value, ScriptError> {
    if depth > MAX_DEPTH {
        return Err(ScriptError::new(
            ScriptErrorKind::SizeLimit,
            format!("value is nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    // Values captured by closures are shared; read through the lock.
    if value.is_shared() {
        return to_json(&value.flatten_clone(), depth);
    }
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::Number(i.into()));
    }
    if let Ok(f) = value.as_float() {
        return Ok(Number::from_f64(f).map_or(Value::Null, Value::Number));
    }
    if let Ok(c) = value.as_char() {
        return Ok(Value::String(c.to_string()));
    }
    if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        return Ok(Value::String(s.to_string()));
    }
    if let Some(items) = value.read_lock::<Array>() {
        return items.iter().map(|v| to_json(v, depth + 1)).collect::<Result<Vec<_>, _>>().map(Value::Array);
    }
    if let Some(blob) = value.read_lock::<rhai::Blob>() {
        return Ok(Value::Array(blob.iter().map(|b| Value::from(*b)).collect()));
    }
    if let Some(map) = value.read_lock::<RhaiMap>() {
        return map_to_json(&map, depth).map(Value::Object);
    }
    Err(ScriptError::new(ScriptErrorKind::Runtime, format!("a {} cannot be stored in a record", type_label(value))))
}

/// Total array elements, map entries and string bytes in `value`, counted
/// the way Rhai counts them for its size limits (nested data included).
pub(crate) fn data_sizes(value: &Dynamic) -> (usize, usize, usize) {
    if value.is_shared() {
        return data_sizes(&value.flatten_clone());
    }
    if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        return (0, 0, s.len());
    }
    if let Some(blob) = value.read_lock::<rhai::Blob>() {
        return (blob.len(), 0, 0);
    }
    let mut total = (0, 0, 0);
    let mut add = |(a, m, s): (usize, usize, usize)| {
        total.0 += a;
        total.1 += m;
        total.2 += s;
    };
    if let Some(items) = value.read_lock::<Array>() {
        for item in items.iter() {
            add((1, 0, 0));
            add(data_sizes(item));
        }
    } else if let Some(map) = value.read_lock::<RhaiMap>() {
        for item in map.values() {
            add((0, 1, 0));
            add(data_sizes(item));
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn round_trip(value: Value) -> Value {
        dynamic_to_json(&json_to_dynamic(&value)).unwrap()
    }

    #[test]
    fn large_order_ids_survive_a_round_trip_unchanged() {
        let value = json!({
            "tid": 4611686018427387905_i64,
            "max": i64::MAX,
            "min": i64::MIN,
            "payment": 1200.5,
            "paid": true,
            "buyer": {"nick": "张三", "tags": ["a", "b"]},
            "memo": null,
            "lines": [{"sku": 1}, {"sku": 2}]
        });
        assert_eq!(round_trip(value.clone()), value);
        assert_eq!(round_trip(value)["tid"].as_i64(), Some(4611686018427387905));
    }

    #[test]
    fn integers_stay_integers_inside_rhai() {
        let d = json_to_dynamic(&json!(4611686018427387905_i64));
        assert_eq!(d.as_int(), Ok(4611686018427387905));
        assert!(json_to_dynamic(&json!(1.5)).is_float());
    }

    #[test]
    fn u64_above_i64_max_becomes_an_exact_string() {
        let big = u64::MAX;
        let d = json_to_dynamic(&json!(big));
        assert_eq!(d.into_string().unwrap(), big.to_string());
    }

    #[test]
    fn non_finite_floats_become_null() {
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(dynamic_to_json(&Dynamic::from_float(f)).unwrap(), Value::Null);
        }
    }

    #[test]
    fn chars_and_blobs_have_json_forms() {
        assert_eq!(dynamic_to_json(&Dynamic::from('x')).unwrap(), json!("x"));
        let blob: rhai::Blob = vec![1, 255];
        assert_eq!(dynamic_to_json(&Dynamic::from_blob(blob)).unwrap(), json!([1, 255]));
    }

    #[test]
    fn values_without_json_meaning_are_an_error_naming_the_type() {
        let f = Dynamic::from(rhai::FnPtr::new("f").unwrap());
        let err = dynamic_to_json(&f).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Runtime);
        assert!(err.message.contains("function pointer"), "{err}");
    }

    #[test]
    fn data_sizes_count_nested_data() {
        let d = json_to_dynamic(&json!({"a": [1, 2, {"b": "xyz"}], "c": "ab"}));
        assert_eq!(data_sizes(&d), (3, 3, 5));
    }

    #[test]
    fn fields_keep_their_values_through_a_map() {
        let fields = json!({"b": 1, "a": [true, null]});
        let Value::Object(fields) = fields else { unreachable!() };
        let map = fields_to_map(&fields);
        let back = map_to_fields(&map).unwrap();
        assert_eq!(Value::Object(back), Value::Object(fields));
    }
}
