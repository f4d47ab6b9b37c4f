//! Type coercion of a string that `${env...}` substitution changed, with OGX's rules
//! (`_convert_string_to_proper_type` in `src/ogx/core/stack.py`): `""` → null, `true`/`false` in
//! any case → bool, then Python `int()`, then Python `float()`, else the string is kept.
//!
//! It never fails: anything that is not recognised stays a string. Two deliberate differences
//! from Python, because a JSON document cannot hold these values:
//! - a float that is not finite (`inf`, `-Infinity`, `nan`, `1e400`) stays a **string**;
//! - an integer outside `i64`/`u64` stays a **string** (Python would keep a big int).
//!
//! Python's `int()`/`float()` also accept non-ASCII decimal digits (`"٥"`); this does not.

use serde_json::{Number, Value};

/// Turns the result of a substitution into the JSON value OGX would produce.
pub fn coerce(value: &str) -> Value {
    if value.is_empty() {
        return Value::Null;
    }
    let lowered = value.to_lowercase();
    if lowered == "true" {
        return Value::Bool(true);
    }
    if lowered == "false" {
        return Value::Bool(false);
    }
    match python_int(value) {
        PythonInt::Fits(n) => return Value::Number(n),
        PythonInt::TooBig => return Value::String(value.to_owned()),
        PythonInt::NotAnInt => {}
    }
    match python_float(value) {
        Some(f) if f.is_finite() => Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_owned())),
        _ => Value::String(value.to_owned()),
    }
}

/// What Python's `int(s)` makes of a string.
#[derive(Debug, PartialEq)]
pub enum PythonInt {
    /// A valid integer that fits an `i64` or `u64`.
    Fits(Number),
    /// A valid integer that JSON numbers (as `serde_json` holds them) cannot carry.
    TooBig,
    /// `int(s)` would raise `ValueError`.
    NotAnInt,
}

/// Python `int(s)` in base 10: surrounding whitespace, one optional sign, ASCII digits with
/// single underscores between digits. Leading zeros are allowed (`int("007") == 7`).
pub fn python_int(s: &str) -> PythonInt {
    let t = s.trim();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if !is_digit_part(digits) {
        return PythonInt::NotAnInt;
    }
    let plain: String = digits.chars().filter(|c| *c != '_').collect();
    let signed = if negative { format!("-{plain}") } else { plain };
    if let Ok(i) = signed.parse::<i64>() {
        return PythonInt::Fits(Number::from(i));
    }
    if let Ok(u) = signed.parse::<u64>() {
        return PythonInt::Fits(Number::from(u));
    }
    PythonInt::TooBig
}

/// Python `float(s)`: surrounding whitespace, optional sign, then `inf`/`infinity`/`nan` (any
/// case) or a decimal with optional fraction and exponent; underscores only between digits.
/// Returns the value, which may be infinite or NaN; `None` where Python raises `ValueError`.
pub fn python_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let (sign, body) = match t.as_bytes().first() {
        Some(b'-') => (-1.0, &t[1..]),
        Some(b'+') => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => return Some(sign * f64::INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let mantissa_ok = match frac_part {
        None => is_digit_part(int_part),
        Some(frac) => {
            (int_part.is_empty() || is_digit_part(int_part))
                && (frac.is_empty() || is_digit_part(frac))
                && !(int_part.is_empty() && frac.is_empty())
        }
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            is_digit_part(digits)
        }
    };
    if !mantissa_ok || !exponent_ok {
        return None;
    }
    let plain: String = body.chars().filter(|c| *c != '_').collect();
    plain.parse::<f64>().ok().map(|f| sign * f)
}

/// ASCII digits, at least one, with single underscores only between two digits (PEP 515).
fn is_digit_part(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b[0].is_ascii_digit() || !b[b.len() - 1].is_ascii_digit() {
        return false;
    }
    b.windows(2).all(|w| w[0] != b'_' || w[1] != b'_')
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One row per rule: input string, expected JSON value after coercion.
    #[test]
    fn coercion_table() {
        let rows: &[(&str, Value)] = &[
            ("", Value::Null),
            ("true", json!(true)),
            ("TRUE", json!(true)),
            ("False", json!(false)),
            (" true", json!(" true")),
            ("3600", json!(3600)),
            (" 42 ", json!(42)),
            ("\t-7\n", json!(-7)),
            ("+5", json!(5)),
            ("007", json!(7)),
            ("1_000", json!(1000)),
            ("1__000", json!("1__000")),
            ("_1000", json!("_1000")),
            ("1000_", json!("1000_")),
            ("18446744073709551615", json!(18446744073709551615u64)),
            ("99999999999999999999999", json!("99999999999999999999999")),
            ("1.5", json!(1.5)),
            ("1e3", json!(1000.0)),
            ("1E-2", json!(0.01)),
            ("1.", json!(1.0)),
            (".5", json!(0.5)),
            ("1.e5", json!(100000.0)),
            ("1_000.5", json!(1000.5)),
            ("1e1_0", json!(1e10)),
            (" -2.5 ", json!(-2.5)),
            (".", json!(".")),
            ("e5", json!("e5")),
            ("1_e5", json!("1_e5")),
            ("1.5_", json!("1.5_")),
            ("inf", json!("inf")),
            ("-Infinity", json!("-Infinity")),
            ("nan", json!("nan")),
            ("1e400", json!("1e400")),
            ("0x10", json!("0x10")),
            ("us-west-2", json!("us-west-2")),
            (
                "http://127.0.0.1:8000/v1",
                json!("http://127.0.0.1:8000/v1"),
            ),
        ];
        for (input, expected) in rows {
            assert_eq!(&coerce(input), expected, "coerce({input:?})");
        }
    }

    #[test]
    fn python_float_keeps_non_finite_values_for_callers_that_want_them() {
        assert_eq!(python_float("inf"), Some(f64::INFINITY));
        assert_eq!(python_float("-INF"), Some(f64::NEG_INFINITY));
        assert!(python_float("nan").is_some_and(f64::is_nan));
        assert_eq!(python_float("abc"), None);
    }
}
