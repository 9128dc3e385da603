//! Release versions as the SDKs number them (`1.34.41`, `v1.47.11`, `3.458.0`), compared by
//! their numeric components. A suffix (`-beta.1`, `+incompatible`, a Go pseudo-version's
//! timestamp) is ignored: the minimums are plain releases.

use std::cmp::Ordering;

/// The numeric components of `text`, or None when it does not start with a number.
pub fn parse(text: &str) -> Option<Vec<u64>> {
    let text = text.trim().trim_start_matches('v');
    let core = text.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<u64> = core
        .split('.')
        .map_while(|p| p.parse::<u64>().ok())
        .collect();
    (!parts.is_empty()).then_some(parts)
}

/// `a` against `b`, missing components counting as 0; None when either is not a version.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (parse(a)?, parse(b)?);
    let len = a.len().max(b.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    Some(
        (0..len)
            .map(|i| at(&a, i).cmp(&at(&b, i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal),
    )
}

/// Whether `found` is below `minimum` (false when either cannot be read).
pub fn below(found: &str, minimum: &str) -> bool {
    compare(found, minimum) == Some(Ordering::Less)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_not_lexicographic() {
        assert!(below("1.34.9", "1.34.41"));
        assert!(!below("1.34.41", "1.34.41"));
        assert!(!below("1.100.0", "1.34.41"));
        assert!(below("2.999.0", "3.27.0"));
    }

    #[test]
    fn prefixes_and_suffixes() {
        assert!(below("v1.47.10", "v1.47.11"));
        assert!(!below("v1.25.0", "1.25"));
        assert!(below("v0.0.0-20210218202405-ba52d332ba99", "0.1.0"));
        assert!(
            !below("1.13.0b1", "1.13.0"),
            "a suffix glued on is ignored: 1.13.0"
        );
        assert!(!below("not-a-version", "1.0.0"));
        assert_eq!(compare("x", "1"), None);
    }
}
