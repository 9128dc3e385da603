//! Cloud answers the plugin reads: STS XML (`aws_sts_answer::parse`), Entra JSON errors,
//! Google JSON errors (`gcp_sts::error_of`), the metadata server's token and text answers and
//! the in-pod clients' output around them. A hostile or broken endpoint controls all of it:
//! typed errors, no panic, no body quoted beyond the documented excerpt.

use std::time::Duration;

use proptest::prelude::*;

use podiam::exchange::CloudError;
use podiam::exchange::azure_entra::EntraErrorBody;
use podiam::exchange::gcp_metadata::{self, HttpClient};
use podiam::exchange::{aws_sts_answer, gcp_sts};

use super::support::{hostile_text, raw_bytes, runner, within};

const CI_CASES: u32 = 300;
const BOUND: Duration = Duration::from_secs(2);

fn xml_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">",
            "</AssumeRoleWithWebIdentityResponse>", "<AssumeRoleWithWebIdentityResult>",
            "</AssumeRoleWithWebIdentityResult>", "<Credentials>", "</Credentials>",
            "<AccessKeyId>ASIA</AccessKeyId>", "<SecretAccessKey>s</SecretAccessKey>",
            "<SessionToken>t</SessionToken>", "<Expiration>2030-01-01T00:00:00Z</Expiration>",
            "<Expiration>not-a-date</Expiration>", "<Expiration>9999-99-99T99:99:99Z</Expiration>",
            "<AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/r/s</Arn><AssumedRoleId>A:s</AssumedRoleId></AssumedRoleUser>",
            "<SubjectFromWebIdentityToken>system:serviceaccount:a:b</SubjectFromWebIdentityToken>",
            "<ErrorResponse>", "</ErrorResponse>", "<Error>", "</Error>", "<Code>AccessDenied</Code>",
            "<Message>Not authorized</Message>", "<Type>Sender</Type>", "<![CDATA[x]]>", "&amp;",
            "&unknown;", "<!DOCTYPE x [<!ENTITY a \"b\">]>", "<?xml version=\"1.0\"?>", "<", ">", "</",
        ])
        .prop_map(str::to_string),
        1 => "[ -~]{0,12}",
    ]
}

fn sts_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(xml_piece(), 0..30).prop_map(|v| v.concat().into_bytes()),
        1 => raw_bytes(256),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(200u16),
        Just(400),
        Just(403),
        Just(500),
        Just(503),
        100u16..600,
        any::<u16>()
    ]
}

#[test]
fn sts_answers() {
    runner(CI_CASES)
        .run(&(status(), sts_body()), |(status, body)| {
            let parsed = within(BOUND, "sts parse", || aws_sts_answer::parse(status, &body))?;
            match parsed {
                Ok(_) => prop_assert!(
                    (200..300).contains(&status),
                    "a credential from HTTP {}",
                    status
                ),
                Err(CloudError::Rejected { code, message }) => {
                    prop_assert!(
                        !code.is_empty() || !message.is_empty(),
                        "an error naming nothing"
                    );
                    // Credentials in a body are never echoed.
                    prop_assert!(
                        !message.contains("<SecretAccessKey>")
                            && !message.contains("<SessionToken>"),
                        "{}",
                        message
                    );
                }
                Err(other) => prop_assert!(false, "unexpected error kind {other:?}"),
            }
            Ok(())
        })
        .expect("STS answers are read or refused with CloudError");
}

fn json_body() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => prop::sample::select(vec![
            "{", "}", "[", "]", ",", ":", "\"error\"", "\"error_description\"", "\"error_codes\"",
            "\"status\"", "\"message\"", "\"code\"", "\"access_token\"", "\"expires_in\"",
            "\"token_type\"", "\"Bearer\"", "\"AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: 'https://x'.\"",
            "\"AADSTS\"", "\"AADSTS99999999999999999999999\"", "\"PERMISSION_DENIED\"", "\"invalid_grant\"",
            "123", "-1", "1e999", "null", "true", "\"\\ud800\"", "\"é\"", "[70021]", "[1e3]",
        ])
        .prop_map(str::to_string),
        1 => "[ -~]{0,12}",
    ];
    prop_oneof![
        4 => prop::collection::vec(piece, 0..30).prop_map(|v| v.concat()),
        1 => hostile_text(),
    ]
}

#[test]
fn entra_and_google_errors() {
    runner(CI_CASES)
        .run(&(status(), json_body()), |(status, body)| {
            let entra = within(BOUND, "entra parse", || {
                EntraErrorBody::parse(status, body.as_bytes())
            })?;
            let code = within(BOUND, "entra code", || entra.code())?;
            prop_assert!(!code.is_empty(), "an Entra error with no code");
            for label in [
                "Assertion Issuer",
                "Assertion Subject",
                "Assertion Audience",
                "'",
            ] {
                let _ = within(BOUND, "entra quoted", || entra.quoted(label))?;
            }
            prop_assert!(entra.error_description.chars().count() <= body.chars().count().max(300));
            let (code, message) =
                within(BOUND, "google error", || gcp_sts::error_of(status, &body))?;
            prop_assert!(
                !code.is_empty() || status == 0,
                "a Google error with no code"
            );
            prop_assert!(
                message.chars().count() <= body.chars().count(),
                "a message longer than the body"
            );
            Ok(())
        })
        .expect("error bodies are read without panic");
}

#[test]
fn metadata_answers_and_client_output() {
    let client = prop::sample::select(vec![
        HttpClient::Wget,
        HttpClient::Curl,
        HttpClient::Python3,
    ]);
    let stderr = prop_oneof![
        hostile_text(),
        "(wget: server returned error: HTTP/1.1 [0-9]{0,5} [A-Za-z]{0,8}|curl: \\([0-9]{1,3}\\) [ -~]{0,20})",
    ];
    runner(CI_CASES)
        .run(
            &(client, raw_bytes(300), stderr, any::<bool>(), json_body()),
            |(client, stdout, stderr, ok, token)| {
                let answer = within(BOUND, "client output", || client.read(stdout, &stderr, ok))?;
                if let Ok(answer) = &answer {
                    let _ = within(BOUND, "classify", || gcp_metadata::classify(answer))?;
                }
                match within(BOUND, "token", || {
                    gcp_metadata::parse_token(token.as_bytes())
                })? {
                    Ok(t) => prop_assert!(!t.token.trim().is_empty()),
                    Err(e) => prop_assert!(e.contains("token"), "{}", e),
                }
                if let Err(e) =
                    within(BOUND, "text", || gcp_metadata::parse_text(token.as_bytes()))?
                {
                    prop_assert!(
                        e.len() < 2 * 512 + 100,
                        "the message quotes a whole body: {} chars",
                        e.len()
                    );
                }
                Ok(())
            },
        )
        .expect("metadata answers are read without panic");
}
