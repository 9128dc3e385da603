//! `podiam-probe [--mechanism M] [--node aws,azure,gcp] [--timeout SECS] [--metadata-timeout SECS]`
//! Prints one JSON line (see `report.rs`) and exits 0; 2 for arguments it does not know.

use std::time::Duration;

use podiam_probe::dns::Resolver;
use podiam_probe::report::Report;
use podiam_probe::run::{self, Options};
use podiam_probe::target::Target;

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let seconds = |v: String| {
            v.parse::<u64>()
                .ok()
                .filter(|s| (1..=300).contains(s))
                .map(Duration::from_secs)
                .ok_or_else(|| format!("{flag} takes seconds (1-300), not {v:?}"))
        };
        match flag.as_str() {
            "--mechanism" => options.mechanism = Some(value()?),
            "--node" => {
                options.node = value()?
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            "--timeout" => options.timeout = seconds(value()?)?,
            "--metadata-timeout" => options.metadata_timeout = seconds(value()?)?,
            "--version" => return Err(format!("podiam-probe {}", env!("CARGO_PKG_VERSION"))),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(message) => {
            let report = Report {
                podiam_probe: podiam_probe::report::SCHEMA,
                version: env!("CARGO_PKG_VERSION").into(),
                errors: vec![message],
                ..Report::default()
            };
            println!("{}", report.line());
            std::process::exit(2);
        }
    };
    let target = Target::discover();
    let switched = run::match_target_user(&target);
    let mut report = run::probe(target, Resolver::system(), options);
    report.errors.extend(switched);
    println!("{}", report.line());
}
