//! The subset of CEL (Common Expression Language) that workload identity providers' attribute
//! mappings and conditions use: field access (`assertion.sub`, `assertion['kubernetes.io']`),
//! string, number, bool and list literals, `==`, `!=`, `!`, `&&`, `||`, `in` (list element or
//! map key), and the string methods `startsWith`, `endsWith`, `contains`. Anything else is a
//! parse error, so a scenario cannot rely on a construct the emulator would misjudge.
//! The emulator's own code; the plugin never evaluates these.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CelError {
    #[error("cannot parse {expression:?}: {reason}")]
    Parse { expression: String, reason: String },
    #[error("{0}")]
    Evaluation(String),
}

/// A parsed expression, ready to evaluate against any environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    root: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Literal(Value),
    List(Vec<Expr>),
    Ident(String),
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Method(Box<Expr>, String, Vec<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Equals(Box<Expr>, Box<Expr>),
    NotEquals(Box<Expr>, Box<Expr>),
    In(Box<Expr>, Box<Expr>),
}

const METHODS: &[&str] = &["startsWith", "endsWith", "contains"];

impl Program {
    pub fn parse(expression: &str) -> Result<Self, CelError> {
        let fail = |reason: String| CelError::Parse {
            expression: expression.to_owned(),
            reason,
        };
        let tokens = tokenize(expression).map_err(fail)?;
        let mut parser = Parser { tokens, at: 0 };
        let root = parser.or().map_err(fail)?;
        match parser.tokens.get(parser.at) {
            None => Ok(Self { root }),
            Some(token) => Err(fail(format!("unexpected {token:?}"))),
        }
    }

    /// The expression's value with `variables` (e.g. `assertion` → the token's claims).
    pub fn evaluate(&self, variables: &BTreeMap<&str, Value>) -> Result<Value, CelError> {
        eval(&self.root, variables)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Number(Value),
    Symbol(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string".to_owned()),
                    Some('\\') => {
                        value.push(*chars.get(i + 1).ok_or("unterminated string")?);
                        i += 2;
                    }
                    Some(q) if *q == c => {
                        i += 1;
                        break;
                    }
                    Some(other) => {
                        value.push(*other);
                        i += 1;
                    }
                }
            }
            tokens.push(Token::Str(value));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let literal: String = chars[start..i].iter().collect();
            let number = serde_json::from_str::<Value>(&literal)
                .ok()
                .filter(Value::is_number)
                .ok_or_else(|| format!("bad number {literal}"))?;
            tokens.push(Token::Number(number));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let symbol = ["==", "!=", "&&", "||"]
                .into_iter()
                .find(|s| *s == two)
                .or_else(|| {
                    [".", "[", "]", "(", ")", ",", "!"]
                        .into_iter()
                        .find(|s| s.starts_with(c))
                })
                .ok_or_else(|| format!("unsupported character {c:?}"))?;
            i += symbol.len();
            tokens.push(Token::Symbol(symbol));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_symbol(&self, symbol: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Symbol(s)) if *s == symbol)
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        let found = self.peek_symbol(symbol);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<(), String> {
        if self.eat_symbol(symbol) {
            Ok(())
        } else {
            Err(format!(
                "expected {symbol:?}, found {:?}",
                self.tokens.get(self.at)
            ))
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.eat_symbol("||") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.relation()?;
        while self.eat_symbol("&&") {
            left = Expr::And(Box::new(left), Box::new(self.relation()?));
        }
        Ok(left)
    }

    fn relation(&mut self) -> Result<Expr, String> {
        let left = self.unary()?;
        if self.eat_symbol("==") {
            return Ok(Expr::Equals(Box::new(left), Box::new(self.unary()?)));
        }
        if self.eat_symbol("!=") {
            return Ok(Expr::NotEquals(Box::new(left), Box::new(self.unary()?)));
        }
        if matches!(self.tokens.get(self.at), Some(Token::Ident(word)) if word == "in") {
            self.at += 1;
            return Ok(Expr::In(Box::new(left), Box::new(self.unary()?)));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat_symbol("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut expr = self.primary()?;
        loop {
            if self.eat_symbol(".") {
                let Some(Token::Ident(name)) = self.tokens.get(self.at).cloned() else {
                    return Err("expected a field or method name after '.'".to_owned());
                };
                self.at += 1;
                if self.eat_symbol("(") {
                    if !METHODS.contains(&name.as_str()) {
                        return Err(format!("unsupported function {name}"));
                    }
                    let mut args = Vec::new();
                    if !self.eat_symbol(")") {
                        loop {
                            args.push(self.or()?);
                            if self.eat_symbol(")") {
                                break;
                            }
                            self.expect_symbol(",")?;
                        }
                    }
                    expr = Expr::Method(Box::new(expr), name, args);
                } else {
                    expr = Expr::Member(Box::new(expr), name);
                }
            } else if self.eat_symbol("[") {
                let index = self.or()?;
                self.expect_symbol("]")?;
                expr = Expr::Index(Box::new(expr), Box::new(index));
            } else {
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or("unexpected end of expression")?;
        self.at += 1;
        match token {
            Token::Str(s) => Ok(Expr::Literal(Value::String(s))),
            Token::Number(n) => Ok(Expr::Literal(n)),
            Token::Ident(word) => Ok(match word.as_str() {
                "true" => Expr::Literal(Value::Bool(true)),
                "false" => Expr::Literal(Value::Bool(false)),
                "null" => Expr::Literal(Value::Null),
                "in" => return Err("unexpected 'in'".to_owned()),
                _ => Expr::Ident(word),
            }),
            Token::Symbol("(") => {
                let inner = self.or()?;
                self.expect_symbol(")")?;
                Ok(inner)
            }
            Token::Symbol("[") => {
                let mut items = Vec::new();
                if !self.eat_symbol("]") {
                    loop {
                        items.push(self.or()?);
                        if self.eat_symbol("]") {
                            break;
                        }
                        self.expect_symbol(",")?;
                    }
                }
                Ok(Expr::List(items))
            }
            Token::Symbol(other) => Err(format!("unexpected {other:?}")),
        }
    }
}

fn eval(expr: &Expr, variables: &BTreeMap<&str, Value>) -> Result<Value, CelError> {
    let error = |message: String| CelError::Evaluation(message);
    match expr {
        Expr::Literal(value) => Ok(value.clone()),
        Expr::List(items) => items
            .iter()
            .map(|item| eval(item, variables))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Expr::Ident(name) => variables
            .get(name.as_str())
            .cloned()
            .ok_or_else(|| error(format!("undeclared reference to '{name}'"))),
        Expr::Member(target, field) => field_of(eval(target, variables)?, field),
        Expr::Index(target, index) => match (eval(target, variables)?, eval(index, variables)?) {
            (map @ Value::Object(_), Value::String(key)) => field_of(map, &key),
            (Value::Array(list), Value::Number(n)) => n
                .as_u64()
                .and_then(|i| list.get(usize::try_from(i).ok()?).cloned())
                .ok_or_else(|| error(format!("index {n} out of range"))),
            (target, index) => Err(error(format!("cannot index {target} with {index}"))),
        },
        Expr::Method(target, name, args) => {
            let target = eval(target, variables)?;
            let args = args
                .iter()
                .map(|a| eval(a, variables))
                .collect::<Result<Vec<_>, _>>()?;
            let (Value::String(text), [Value::String(arg)]) = (&target, args.as_slice()) else {
                return Err(error(format!(
                    "no matching overload for {name} on {target}"
                )));
            };
            Ok(Value::Bool(match name.as_str() {
                "startsWith" => text.starts_with(arg.as_str()),
                "endsWith" => text.ends_with(arg.as_str()),
                _ => text.contains(arg.as_str()),
            }))
        }
        Expr::Not(inner) => Ok(Value::Bool(!boolean(eval(inner, variables)?)?)),
        // CEL's commutative logic: a false (for &&) or true (for ||) operand decides, even
        // when the other operand is an error.
        Expr::And(left, right) => {
            let left = eval(left, variables).and_then(boolean);
            if left == Ok(false) {
                return Ok(Value::Bool(false));
            }
            let right = eval(right, variables).and_then(boolean);
            if right == Ok(false) {
                return Ok(Value::Bool(false));
            }
            Ok(Value::Bool(left? && right?))
        }
        Expr::Or(left, right) => {
            let left = eval(left, variables).and_then(boolean);
            if left == Ok(true) {
                return Ok(Value::Bool(true));
            }
            let right = eval(right, variables).and_then(boolean);
            if right == Ok(true) {
                return Ok(Value::Bool(true));
            }
            Ok(Value::Bool(left? || right?))
        }
        Expr::Equals(left, right) => Ok(Value::Bool(
            eval(left, variables)? == eval(right, variables)?,
        )),
        Expr::NotEquals(left, right) => Ok(Value::Bool(
            eval(left, variables)? != eval(right, variables)?,
        )),
        Expr::In(item, collection) => {
            let item = eval(item, variables)?;
            match eval(collection, variables)? {
                Value::Array(list) => Ok(Value::Bool(list.contains(&item))),
                Value::Object(map) => match item {
                    Value::String(key) => Ok(Value::Bool(map.contains_key(&key))),
                    other => Err(error(format!("map keys are strings, not {other}"))),
                },
                other => Err(error(format!("'in' needs a list or a map, not {other}"))),
            }
        }
    }
}

fn field_of(target: Value, field: &str) -> Result<Value, CelError> {
    match target {
        Value::Object(mut map) => map
            .remove(field)
            .ok_or_else(|| CelError::Evaluation(format!("no such key: {field}"))),
        other => Err(CelError::Evaluation(format!(
            "cannot select '{field}' from {other}"
        ))),
    }
}

fn boolean(value: Value) -> Result<bool, CelError> {
    value
        .as_bool()
        .ok_or_else(|| CelError::Evaluation(format!("expected a bool, found {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(expression: &str) -> Result<Value, CelError> {
        let assertion = json!({
            "sub": "system:serviceaccount:apps:reader",
            "aud": ["https://iam.googleapis.com/x"],
            "kubernetes.io": {"namespace": "apps", "serviceaccount": {"name": "reader"}},
        });
        Program::parse(expression)?.evaluate(&BTreeMap::from([("assertion", assertion)]))
    }

    #[test]
    fn the_forms_providers_use() {
        let yes = [
            "assertion.sub == 'system:serviceaccount:apps:reader'",
            "assertion['kubernetes.io']['namespace'] == \"apps\"",
            "assertion['kubernetes.io'].serviceaccount.name == 'reader'",
            "assertion.sub.startsWith('system:serviceaccount:apps:')",
            "assertion.sub.endsWith(':reader') && !assertion.sub.contains('admin')",
            "assertion['kubernetes.io'].namespace in ['apps', 'batch']",
            "'https://iam.googleapis.com/x' in assertion.aud",
            "'namespace' in assertion['kubernetes.io']",
            "assertion.sub == 'x' || assertion.sub != 'x'",
            "(assertion.sub == 'x' || true) && assertion.aud[0].startsWith('https://')",
        ];
        for expression in yes {
            assert_eq!(run(expression), Ok(json!(true)), "{expression}");
        }
        let no = [
            "assertion.sub == 'system:serviceaccount:apps:writer'",
            "assertion['kubernetes.io']['namespace'] in ['batch']",
            "assertion.sub.startsWith('system:serviceaccount:batch:')",
            "!(assertion.sub == 'system:serviceaccount:apps:reader')",
        ];
        for expression in no {
            assert_eq!(run(expression), Ok(json!(false)), "{expression}");
        }
        assert_eq!(
            run("assertion.sub"),
            Ok(json!("system:serviceaccount:apps:reader"))
        );
    }

    #[test]
    fn missing_keys_are_errors_unless_logic_decides_anyway() {
        assert!(matches!(
            run("assertion.nope == 'x'"),
            Err(CelError::Evaluation(_))
        ));
        assert_eq!(run("false && assertion.nope == 'x'"), Ok(json!(false)));
        assert_eq!(run("assertion.nope == 'x' || true"), Ok(json!(true)));
        assert!(run("assertion.nope == 'x' || false").is_err());
        assert!(run("google.subject == 'x'").is_err(), "undeclared");
    }

    #[test]
    fn unsupported_syntax_is_a_parse_error() {
        for bad in [
            "assertion.sub.matches('x')",
            "size(assertion.aud) > 0",
            "assertion.sub == ",
            "assertion.sub == 'x",
            "assertion.sub = 'x'",
            "a b",
        ] {
            assert!(
                matches!(Program::parse(bad), Err(CelError::Parse { .. })),
                "{bad}"
            );
        }
    }
}
