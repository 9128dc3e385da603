//! The few Go `strconv` functions the upstream webhooks call, with Go's error wording: a
//! rejection message the stand-ins send must read exactly as the real webhook's.
//!
//! The stand-ins' own small version (the plugin has its own parser elsewhere; emulators and
//! the plugin share no code).

use std::fmt;

/// Go's `*strconv.NumError` as printed: `strconv.ParseInt: parsing "1h": invalid syntax`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("strconv.{func}: parsing {}: {kind}", quote(.input))]
pub struct NumError {
    pub func: &'static str,
    pub input: String,
    pub kind: NumErrorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumErrorKind {
    Syntax,
    Range,
}

impl fmt::Display for NumErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Syntax => "invalid syntax",
            Self::Range => "value out of range",
        })
    }
}

/// `strconv.ParseInt(s, 10, bit_size)`: an optional `+`/`-`, then decimal digits only (no
/// spaces, no underscores with an explicit base), within a signed `bit_size`-bit integer.
pub fn parse_int(s: &str, bit_size: u32) -> Result<i64, NumError> {
    let error = |kind| NumError {
        func: "ParseInt",
        input: s.to_owned(),
        kind,
    };
    let bit_size = bit_size.clamp(1, 64);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(error(NumErrorKind::Syntax));
    }
    // ParseUint's scan: a non-digit is a syntax error, exceeding 2^bit_size - 1 a range
    // error, whichever comes first.
    let max_unsigned = if bit_size == 64 {
        u64::MAX
    } else {
        (1u64 << bit_size) - 1
    };
    let mut n: u64 = 0;
    for c in digits.bytes() {
        if !c.is_ascii_digit() {
            return Err(error(NumErrorKind::Syntax));
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
            .filter(|n| *n <= max_unsigned)
            .ok_or_else(|| error(NumErrorKind::Range))?;
    }
    let cutoff = 1u64 << (bit_size - 1);
    match negative {
        false if n >= cutoff => Err(error(NumErrorKind::Range)),
        true if n > cutoff => Err(error(NumErrorKind::Range)),
        // n ≤ 2^63 here, so the cast only wraps for -2^63 itself, which is what it should be.
        true => Ok((n as i64).wrapping_neg()),
        false => Ok(n as i64),
    }
}

/// `strconv.ParseBool`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `strconv.Quote`, with Rust's `char::is_control` standing in for Go's `unicode.IsPrint`
/// (they agree on everything an annotation value plausibly holds).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() && (c as u32) < 0x10000 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\U{:08x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(s: &str, bits: u32) -> String {
        parse_int(s, bits).unwrap_err().to_string()
    }

    #[test]
    fn accepts_what_go_accepts() {
        assert_eq!(parse_int("3600", 64), Ok(3600));
        assert_eq!(parse_int("+3600", 64), Ok(3600));
        assert_eq!(parse_int("-7", 64), Ok(-7));
        assert_eq!(parse_int("0003", 32), Ok(3));
        assert_eq!(parse_int("2147483647", 32), Ok(i64::from(i32::MAX)));
        assert_eq!(parse_int("-2147483648", 32), Ok(i64::from(i32::MIN)));
        assert_eq!(parse_int("-9223372036854775808", 64), Ok(i64::MIN));
    }

    #[test]
    fn syntax_errors_read_as_go_prints_them() {
        assert_eq!(
            message("1h", 64),
            r#"strconv.ParseInt: parsing "1h": invalid syntax"#
        );
        assert_eq!(
            message("abc", 32),
            r#"strconv.ParseInt: parsing "abc": invalid syntax"#
        );
        for bad in ["", "+", "-", " 3600", "3600 ", "1_000", "0x10", "3.5"] {
            assert_eq!(
                parse_int(bad, 64).unwrap_err().kind,
                NumErrorKind::Syntax,
                "{bad:?}"
            );
        }
        assert_eq!(
            message("a\"b\n", 64),
            r#"strconv.ParseInt: parsing "a\"b\n": invalid syntax"#
        );
    }

    #[test]
    fn range_errors_depend_on_the_bit_size() {
        assert_eq!(
            message("2147483648", 32),
            r#"strconv.ParseInt: parsing "2147483648": value out of range"#
        );
        assert_eq!(parse_int("2147483648", 64), Ok(2_147_483_648));
        assert_eq!(
            parse_int("9223372036854775808", 64).unwrap_err().kind,
            NumErrorKind::Range
        );
        // Go's scan stops at the overflow before it sees the letter.
        assert_eq!(
            parse_int("99999999999999999999x", 64).unwrap_err().kind,
            NumErrorKind::Range
        );
    }

    #[test]
    fn parse_bool_is_go_s_list() {
        for yes in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(yes), Some(true), "{yes}");
        }
        for no in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(no), Some(false), "{no}");
        }
        for neither in ["yes", "tRUE", " true", ""] {
            assert_eq!(parse_bool(neither), None, "{neither}");
        }
    }
}
