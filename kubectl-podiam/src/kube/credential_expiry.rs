//! Whether the kubeconfig's credentials have expired, said without them: a token that is a
//! JWT past its `exp`, or a client certificate past its notAfter. Read when connecting, shown
//! only if the apiserver answers 401 (kubectl says only "You must be logged in").

use base64::Engine;
use kube::config::AuthInfo;
use secrecy::ExposeSecret;

use crate::error::duration_text;
use crate::token_claims;

/// E.g. "its client certificate expired 3d ago", or None when nothing is known to be expired.
pub fn expired(auth: &AuthInfo, now: i64) -> Option<String> {
    if let Some(token) = &auth.token
        && let Ok(claims) = token_claims::decode(token.expose_secret().as_bytes())
        && let Some(exp) = claims.exp
        && exp < now
    {
        return Some(format!(
            "its token expired {} ago",
            duration_text(now - exp)
        ));
    }
    let pem = match (&auth.client_certificate_data, &auth.client_certificate) {
        (Some(data), _) => base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()?,
        (None, Some(path)) => std::fs::read(path).ok()?,
        (None, None) => return None,
    };
    let not_after = not_after(&String::from_utf8_lossy(&pem))?;
    (not_after < now).then(|| {
        format!(
            "its client certificate expired {} ago",
            duration_text(now - not_after)
        )
    })
}

/// The notAfter of the first certificate of a PEM bundle, in seconds since the epoch.
fn not_after(pem: &str) -> Option<i64> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serial,
    // signature, issuer, validity SEQUENCE { notBefore, notAfter }, ... }, ... }
    let (_, certificate, _) = tlv(&der)?;
    let (_, mut tbs, _) = tlv(certificate)?;
    if tbs.first() == Some(&0xA0) {
        tbs = tlv(tbs)?.2;
    }
    for _ in 0..3 {
        tbs = tlv(tbs)?.2;
    }
    let (_, validity, _) = tlv(tbs)?;
    let (_, _, rest) = tlv(validity)?;
    let (tag, time, _) = tlv(rest)?;
    epoch(tag, std::str::from_utf8(time).ok()?)
}

/// One DER element: its tag, its contents and what follows it.
fn tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, tag 0x18).
fn epoch(tag: u8, text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day) = (field(0)?, field(2)?);
    let seconds = field(4)? * 3600 + field(6)? * 60 + field(8)?;
    Some(days_from_civil(year, month, day) * 86400 + seconds)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(not_after: (i32, u8, u8)) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["deployer".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn reads_not_after_of_utc_and_generalized_times() {
        // 2020-09-13 is day 18518 since the epoch.
        assert_eq!(not_after(&certificate((2020, 9, 13))), Some(18518 * 86400));
        // Past 2049 a certificate carries a GeneralizedTime.
        assert_eq!(
            not_after(&certificate((2060, 1, 1))),
            Some(days_from_civil(2060, 1, 1) * 86400)
        );
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(not_after("not a certificate"), None);
        assert_eq!(
            not_after("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
            None
        );
    }

    #[test]
    fn names_an_expired_client_certificate_not_a_valid_one() {
        let data = |pem: String| base64::engine::general_purpose::STANDARD.encode(pem);
        let now = days_from_civil(2020, 9, 16) * 86400;
        let auth = AuthInfo {
            client_certificate_data: Some(data(certificate((2020, 9, 13)))),
            ..Default::default()
        };
        assert_eq!(
            expired(&auth, now).as_deref(),
            Some("its client certificate expired 3d ago")
        );
        let auth = AuthInfo {
            client_certificate_data: Some(data(certificate((2030, 1, 1)))),
            ..Default::default()
        };
        assert_eq!(expired(&auth, now), None);
        assert_eq!(expired(&AuthInfo::default(), now), None);
    }
}
