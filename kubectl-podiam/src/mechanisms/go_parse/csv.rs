//! The first record of Go's `encoding/csv` Reader with its defaults (comma `,`, no lazy quotes,
//! no trimming), as amazon-eks-pod-identity-webhook reads `eks.amazonaws.com/skip-containers`:
//! `csv.NewReader(strings.NewReader(value)).Read()`; on an error it skips no container.
//!
//! Go's rules kept here: white space is part of a field; a `"` inside a non-quoted field is an
//! error (bare quote); a quoted field must end at a quote followed by `,` or the line's end
//! (`""` is a quote); an unterminated quoted field is an error; quoted fields may span lines;
//! blank lines before the record are skipped; `\r\n` becomes `\n`; a `\r` before the end of
//! input is dropped; empty input is `EOF`. Columns are 1-based byte positions, as Go reports.

/// Go's error for the value, rendered as Go renders it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("EOF")]
    Eof,
    #[error("parse error on line {line}, column {column}: bare \" in non-quoted-field")]
    BareQuote { line: usize, column: usize },
    #[error(
        "parse error on line {line}, column {column}: extraneous or missing \" in quoted-field"
    )]
    Quote { line: usize, column: usize },
}

/// Lines as Go's `readLine` answers them: with their `\n`, `\r\n` normalised.
struct Lines<'a> {
    rest: &'a str,
    read: usize,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Option<String> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match self.rest.find('\n') {
            Some(i) => self.rest.split_at(i + 1),
            None => (self.rest, ""),
        };
        self.rest = rest;
        self.read += 1;
        let mut line = line.to_string();
        if line.ends_with("\r\n") {
            line.truncate(line.len() - 2);
            line.push('\n');
        } else if !line.ends_with('\n') && line.ends_with('\r') {
            line.pop();
        }
        Some(line)
    }
}

fn newline_len(s: &str) -> usize {
    usize::from(s.ends_with('\n'))
}

pub fn first_record(input: &str) -> Result<Vec<String>, CsvError> {
    let mut lines = Lines {
        rest: input,
        read: 0,
    };
    let first = loop {
        match lines.next_line() {
            None => return Err(CsvError::Eof),
            Some(l) if l == "\n" => continue,
            Some(l) => break l,
        }
    };
    let mut line: &str = &first;
    // Owns the continuation lines of a multi-line quoted field.
    let mut held: String;
    let mut pos_line = lines.read;
    let mut col = 1usize;
    let mut fields = Vec::new();
    'field: loop {
        if !line.starts_with('"') {
            let comma = line.find(',');
            let field = match comma {
                Some(i) => &line[..i],
                None => &line[..line.len() - newline_len(line)],
            };
            if let Some(j) = field.find('"') {
                return Err(CsvError::BareQuote {
                    line: lines.read,
                    column: col + j,
                });
            }
            fields.push(field.to_string());
            match comma {
                Some(i) => {
                    line = &line[i + 1..];
                    col += i + 1;
                    continue 'field;
                }
                None => break 'field,
            }
        }
        line = &line[1..];
        col += 1;
        let mut value = String::new();
        loop {
            if let Some(i) = line.find('"') {
                value.push_str(&line[..i]);
                line = &line[i + 1..];
                col += i + 1;
                if line.starts_with('"') {
                    value.push('"');
                    line = &line[1..];
                    col += 1;
                } else if line.starts_with(',') {
                    line = &line[1..];
                    col += 1;
                    fields.push(value);
                    continue 'field;
                } else if newline_len(line) == line.len() {
                    fields.push(value);
                    break 'field;
                } else {
                    return Err(CsvError::Quote {
                        line: lines.read,
                        column: col - 1,
                    });
                }
            } else if !line.is_empty() {
                value.push_str(line);
                col += line.len();
                held = lines.next_line().unwrap_or_default();
                line = &held;
                if !line.is_empty() {
                    pos_line += 1;
                    col = 1;
                }
            } else {
                return Err(CsvError::Quote {
                    line: pos_line,
                    column: col,
                });
            }
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers of Go 1.26's `csv.NewReader(strings.NewReader(in)).Read()` (run outside the
    /// project, 2026-12): fields, or the error text.
    const GO: &[(&str, Result<&[&str], &str>)] = &[
        ("app", Ok(&["app"])),
        ("app,side", Ok(&["app", "side"])),
        ("app, side car", Ok(&["app", " side car"])),
        (
            "app, \"side car\"",
            Err("parse error on line 1, column 6: bare \" in non-quoted-field"),
        ),
        ("\"app\",\"side car\"", Ok(&["app", "side car"])),
        ("\"a\"\"b\",c", Ok(&["a\"b", "c"])),
        (
            "\"unterminated",
            Err("parse error on line 1, column 14: extraneous or missing \" in quoted-field"),
        ),
        (
            "a\"b",
            Err("parse error on line 1, column 2: bare \" in non-quoted-field"),
        ),
        ("", Err("EOF")),
        ("\n\napp,b", Ok(&["app", "b"])),
        ("a,b\nc,d", Ok(&["a", "b"])),
        ("a,b\r\n", Ok(&["a", "b"])),
        (
            "\"a\"b",
            Err("parse error on line 1, column 3: extraneous or missing \" in quoted-field"),
        ),
        (
            "\"a\" ,b",
            Err("parse error on line 1, column 3: extraneous or missing \" in quoted-field"),
        ),
        (
            " \"a\"",
            Err("parse error on line 1, column 2: bare \" in non-quoted-field"),
        ),
        ("a,,b", Ok(&["a", "", "b"])),
        (",", Ok(&["", ""])),
        ("a,b,", Ok(&["a", "b", ""])),
        ("\"a,b\",c", Ok(&["a,b", "c"])),
        ("\"multi\nline\",x", Ok(&["multi\nline", "x"])),
        ("a\rb", Ok(&["a\rb"])),
        ("a,b\r", Ok(&["a", "b"])),
    ];

    #[test]
    fn first_record_agrees_with_go() {
        for (input, want) in GO {
            let got = first_record(input).map_err(|e| e.to_string());
            let want = want
                .map(|f| f.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map_err(str::to_string);
            assert_eq!(got, want, "input {input:?}");
        }
    }
}
