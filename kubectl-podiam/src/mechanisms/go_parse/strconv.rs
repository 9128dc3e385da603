//! `strconv.ParseInt(s, 10, bits)` and `strconv.ParseBool(s)`, with Go's error text (the
//! Azure webhook returns it verbatim in its CREATE rejection).

use std::num::IntErrorKind;

/// Go's `*strconv.NumError`, rendered as Go renders it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumError {
    #[error("strconv.{func}: parsing {input:?}: invalid syntax")]
    Syntax { func: &'static str, input: String },
    #[error("strconv.{func}: parsing {input:?}: value out of range")]
    Range { func: &'static str, input: String },
}

/// Base 10, optional `+`/`-`, ASCII digits only: no spaces, no underscores, no prefixes (Go
/// allows those only with base 0). Rust's integer parsing accepts exactly this set.
pub fn parse_int(s: &str, bits: u32) -> Result<i64, NumError> {
    let parsed = if bits == 32 {
        s.parse::<i32>().map(i64::from)
    } else {
        s.parse::<i64>()
    };
    parsed.map_err(|e| match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => NumError::Range {
            func: "ParseInt",
            input: s.to_string(),
        },
        _ => NumError::Syntax {
            func: "ParseInt",
            input: s.to_string(),
        },
    })
}

/// Exactly `1 t T TRUE true True` and `0 f F FALSE false False`.
pub fn parse_bool(s: &str) -> Result<bool, NumError> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(NumError::Syntax {
            func: "ParseBool",
            input: s.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers of Go 1.26's strconv for these inputs (run outside the project, 2026-12).
    #[test]
    fn parse_int_agrees_with_go() {
        let ok: &[(&str, i64)] = &[("3600", 3600), ("+3600", 3600), ("-5", -5), ("007", 7)];
        for (input, want) in ok {
            assert_eq!(parse_int(input, 64), Ok(*want), "{input:?}");
        }
        for input in [
            " 3600", "3600 ", "1h", "", "0x10", "1_000", "+", "-", "\u{663}",
        ] {
            assert_eq!(
                parse_int(input, 64).unwrap_err().to_string(),
                format!("strconv.ParseInt: parsing {input:?}: invalid syntax")
            );
        }
        assert_eq!(
            parse_int("9223372036854775808", 64)
                .unwrap_err()
                .to_string(),
            "strconv.ParseInt: parsing \"9223372036854775808\": value out of range"
        );
        assert_eq!(parse_int("8000", 32), Ok(8000));
        assert!(matches!(
            parse_int("2147483648", 32),
            Err(NumError::Range { .. })
        ));
        assert_eq!(
            parse_int("abc", 32).unwrap_err().to_string(),
            "strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
    }

    #[test]
    fn parse_bool_accepts_go_spellings_only() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["tRue", "yes", "", " true", "on"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }
}
