//! The Go-parse reimplementations the webhook models use on annotation and label values a
//! user (or a hostile manifest) writes: `strconv.ParseInt/ParseBool` and `encoding/csv`.

use std::num::IntErrorKind;

use proptest::prelude::*;

use podiam::mechanisms::go_parse::csv::{CsvError, first_record};
use podiam::mechanisms::go_parse::strconv::{NumError, parse_bool, parse_int};

use super::support::{hostile_text, runner};

const CI_CASES: u32 = 400;

fn overflow(kind: &IntErrorKind) -> bool {
    matches!(kind, IntErrorKind::PosOverflow | IntErrorKind::NegOverflow)
}

#[test]
fn strconv_never_panics_and_names_the_input() {
    let input = prop_oneof!["[+-]?[0-9]{0,25}", hostile_text()];
    runner(CI_CASES)
        .run(
            &(input, prop::sample::select(vec![32u32, 64])),
            |(s, bits)| {
                match parse_int(&s, bits) {
                    // A wider parser is the reference: same syntax, no overflow at 64 bits.
                    Ok(n) => {
                        prop_assert_eq!(s.parse::<i128>().ok(), Some(i128::from(n)), "{:?}", s)
                    }
                    Err(NumError::Range { input, .. }) => {
                        prop_assert_eq!(&input, &s);
                        let fits = |n: i128| {
                            if bits == 32 {
                                i32::try_from(n).is_ok()
                            } else {
                                i64::try_from(n).is_ok()
                            }
                        };
                        prop_assert!(
                            s.parse::<i128>()
                                .map_or_else(|e| overflow(e.kind()), |n| !fits(n)),
                            "{:?}",
                            s
                        );
                    }
                    Err(NumError::Syntax { input, .. }) => {
                        prop_assert_eq!(&input, &s);
                        prop_assert!(
                            s.parse::<i128>().is_err_and(|e| !overflow(e.kind())),
                            "{:?}",
                            s
                        );
                    }
                }
                match parse_bool(&s) {
                    Ok(_) => prop_assert!(
                        [
                            "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false",
                            "False"
                        ]
                        .contains(&s.as_str())
                    ),
                    Err(e) => prop_assert!(
                        e.to_string().starts_with("strconv.ParseBool: parsing "),
                        "{}",
                        e
                    ),
                }
                Ok(())
            },
        )
        .expect("strconv models never panic");
}

#[test]
fn csv_round_trips_quoted_fields_and_never_panics() {
    let fields = prop::collection::vec("[ -~\n]{0,10}", 1..6);
    runner(CI_CASES)
        .run(&(fields, hostile_text()), |(fields, garbage)| {
            // Go's writer quotes every field; the reader must give the fields back.
            let quoted: Vec<String> = fields
                .iter()
                .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
                .collect();
            let line = quoted.join(",");
            prop_assert_eq!(first_record(&line), Ok(fields.clone()), "{:?}", line);
            if let Err(e) = first_record(&garbage) {
                let shown = e.to_string();
                prop_assert!(
                    matches!(e, CsvError::Eof) || shown.starts_with("parse error on line "),
                    "{}",
                    shown
                );
            }
            Ok(())
        })
        .expect("the csv model round-trips and never panics");
}
