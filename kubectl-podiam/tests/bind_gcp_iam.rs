//! The plugin's GKE binding write (`bind::gcp_iam_policy::apply`) against the emulated IAM API,
//! with the operator token google-cloud-auth mints from the emulators' `authorized_user` file:
//! concurrent binders all land (read-modify-write with the etag, retried on 409 ABORTED), a
//! re-run changes nothing, and a caller without the role gets a message naming the role to ask
//! for. No cluster needed.

use podiam::bind::gcp_iam_policy::{self, GcpIamOperation, GcpOperator};
use podiam::exchange::{gcp_adc, gcp_iam, gcp_sts};
use podiam_e2e::emulators::gcp::{GcpEmulatorOptions, GcpEmulators, GcpSetup};
use podiam_e2e::setup::SetupVariables;
use std::time::Duration;

const GSA: &str = "gke-service-account@my-project.iam.gserviceaccount.com";
const ROLE: &str = "roles/iam.workloadIdentityUser";
const WRITERS: usize = 6;

fn member(i: usize) -> String {
    format!("serviceAccount:my-project.svc.id.goog[team-{i}/app]")
}

async fn operator_session(emulators: &GcpEmulators, credentials: &std::path::Path) -> GcpOperator {
    // The only test in this binary: no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("GOOGLE_APPLICATION_CREDENTIALS", credentials) };
    let token = gcp_adc::operator_token(Duration::from_secs(20))
        .await
        .expect("google-cloud-auth refreshes at the file's token_uri");
    GcpOperator {
        http: gcp_sts::http_client(Duration::from_secs(20)),
        iam_endpoint: gcp_iam::endpoint(Some(emulators.iam_url())),
        token,
    }
}

fn add(i: usize) -> GcpIamOperation {
    GcpIamOperation::AddPolicyMember {
        email: GSA.to_owned(),
        role: ROLE.to_owned(),
        member: member(i),
    }
}

#[tokio::test]
async fn concurrent_binders_all_land_and_a_rerun_is_a_no_op() {
    let emulators = GcpEmulators::start(GcpEmulatorOptions::default())
        .await
        .expect("GCP emulators start");
    let setup: GcpSetup = serde_json::from_value(serde_json::json!({
        "serviceAccounts": [{"email": GSA, "iamPolicy": {"bindings": [
            {"role": "roles/iam.serviceAccountTokenCreator", "members": ["user:release-bot@example.com"]}
        ]}}]
    }))
    .expect("setup");
    emulators
        .apply(
            &setup,
            &SetupVariables {
                issuer: String::new(),
                account_id: String::new(),
            },
        )
        .expect("apply");
    let operator = operator_session(&emulators, emulators.operator_credentials_file()).await;

    let operations: Vec<GcpIamOperation> = (0..WRITERS).map(add).collect();
    let results = futures::future::join_all(
        operations
            .iter()
            .map(|op| gcp_iam_policy::apply(&operator, op)),
    )
    .await;
    for result in &results {
        assert!(result.is_ok(), "{result:?}");
    }
    let record = emulators
        .record(&format!("service-account/{GSA}"))
        .expect("record");
    let bindings = record["iamPolicy"]["bindings"]
        .as_array()
        .expect("bindings");
    let wi = bindings
        .iter()
        .find(|b| b["role"] == ROLE)
        .expect("the workloadIdentityUser binding");
    for i in 0..WRITERS {
        assert!(
            wi["members"]
                .as_array()
                .is_some_and(|m| m.iter().any(|x| x == &serde_json::json!(member(i)))),
            "member {i} lost: {record}"
        );
    }
    assert!(
        bindings
            .iter()
            .any(|b| b["role"] == "roles/iam.serviceAccountTokenCreator"),
        "the other binding was dropped: {record}"
    );
    let log = emulators.request_log();
    let aborted = log.iter().filter(|e| e.outcome == "ABORTED").count();
    let written = log
        .iter()
        .filter(|e| e.action.starts_with("iam:setIamPolicy") && e.outcome == "200")
        .count();
    assert_eq!(written, WRITERS, "one successful write per binder: {log:?}");
    eprintln!("{aborted} stale-etag answers were retried");

    // A re-run reads, finds the member, and writes nothing (the etag stays).
    let etag = record["etag"].clone();
    gcp_iam_policy::apply(&operator, &add(0))
        .await
        .expect("re-run");
    let again = emulators
        .record(&format!("service-account/{GSA}"))
        .expect("record");
    assert_eq!(again["etag"], etag);

    // A Google account without a role on the project or the GSA.
    let stranger = emulators
        .user_credentials_file("stranger@example.com")
        .expect("stranger");
    let stranger = operator_session(&emulators, &stranger).await;
    let denied = gcp_iam_policy::apply(&stranger, &add(99))
        .await
        .expect_err("no permission")
        .to_string();
    assert!(denied.contains("PERMISSION_DENIED"), "{denied}");
    assert!(
        denied.contains("iam.serviceAccounts.getIamPolicy"),
        "{denied}"
    );
    assert!(denied.contains("roles/iam.serviceAccountAdmin"), "{denied}");
    assert!(
        !denied.contains("ya29."),
        "a token in the message: {denied}"
    );
}
