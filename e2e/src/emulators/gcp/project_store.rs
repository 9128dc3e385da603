//! The emulated project's IAM and resources as scenarios set them up: service accounts with
//! their policies, workload identity pools, buckets with their policies. Replaced piecewise by
//! `apply`, emptied by `reset`. Each service account's policy carries an etag, new after every
//! change, so a read-modify-write that raced another change is refused (`setIamPolicy`).

use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::object_store::ObjectStore;
use super::setup::{
    GcpSetup, GcsBucketSetup, IamBindingSetup, IamPolicySetup, ServiceAccountSetup,
    WorkloadIdentityPoolSetup,
};

/// Google's etag of a policy that has never had a binding.
const EMPTY_POLICY_ETAG: &str = "ACAB";

#[derive(Default)]
pub struct ProjectStore {
    setup: RwLock<GcpSetup>,
    /// Lower-case email → the etag of the account's current policy.
    etags: RwLock<HashMap<String, String>>,
    pub objects: ObjectStore,
}

/// Why a policy was not replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetPolicyError {
    NoSuchAccount,
    /// The request's etag is not the current one.
    StaleEtag,
}

impl ProjectStore {
    /// Adds `setup`'s resources (replacing ones of the same name) and takes its project,
    /// node service account and start-up delay.
    pub fn apply(&self, setup: &GcpSetup) {
        let mut current = self.setup.write().unwrap_or_else(|p| p.into_inner());
        current.project_id = setup.project_id.clone();
        current.project_number = setup.project_number.clone();
        current.node_service_account = setup.node_service_account.clone();
        current.metadata_startup_delay_seconds = setup.metadata_startup_delay_seconds;
        current.project_iam_policy = setup.project_iam_policy.clone();
        let mut etags = self.etags.write().unwrap_or_else(|p| p.into_inner());
        for account in &setup.service_accounts {
            current
                .service_accounts
                .retain(|a| !a.email.eq_ignore_ascii_case(&account.email));
            current.service_accounts.push(account.clone());
            let etag = if account.iam_policy.bindings.is_empty() {
                EMPTY_POLICY_ETAG.to_owned()
            } else {
                new_etag()
            };
            etags.insert(account.email.to_ascii_lowercase(), etag);
        }
        for pool in &setup.workload_identity_pools {
            current
                .workload_identity_pools
                .retain(|p| !(p.pool == pool.pool && p.provider == pool.provider));
            current.workload_identity_pools.push(pool.clone());
        }
        for bucket in &setup.buckets {
            current.buckets.retain(|b| b.name != bucket.name);
            current.buckets.push(bucket.clone());
            self.objects.create_bucket(&bucket.name);
            for (name, text) in &bucket.objects {
                self.objects
                    .put(&bucket.name, name, text.clone().into_bytes(), "text/plain");
            }
        }
    }

    pub fn reset(&self) {
        *self.setup.write().unwrap_or_else(|p| p.into_inner()) = GcpSetup::default();
        self.etags
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.objects.clear();
    }

    /// A copy of the current project (cheap: setups are small).
    pub fn snapshot(&self) -> GcpSetup {
        self.setup.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn service_account(&self, email: &str) -> Option<ServiceAccountSetup> {
        self.snapshot()
            .service_accounts
            .into_iter()
            .find(|a| a.email.eq_ignore_ascii_case(email))
    }

    /// The account's policy and its etag.
    pub fn policy(&self, email: &str) -> Option<(IamPolicySetup, String)> {
        let account = self.service_account(email)?;
        Some((account.iam_policy, self.etag(email)))
    }

    /// The etag of the account's current policy.
    pub fn etag(&self, email: &str) -> String {
        self.etags
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&email.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| EMPTY_POLICY_ETAG.to_owned())
    }

    /// Replaces the account's bindings when `expected_etag` (if given) is still current;
    /// returns the new etag. Both locks are held, so two writers cannot both win.
    pub fn set_policy(
        &self,
        email: &str,
        bindings: Vec<IamBindingSetup>,
        expected_etag: Option<&str>,
    ) -> Result<String, SetPolicyError> {
        let mut current = self.setup.write().unwrap_or_else(|p| p.into_inner());
        let mut etags = self.etags.write().unwrap_or_else(|p| p.into_inner());
        let account = current
            .service_accounts
            .iter_mut()
            .find(|a| a.email.eq_ignore_ascii_case(email))
            .ok_or(SetPolicyError::NoSuchAccount)?;
        let key = email.to_ascii_lowercase();
        let etag = etags
            .get(&key)
            .cloned()
            .unwrap_or_else(|| EMPTY_POLICY_ETAG.to_owned());
        if expected_etag.is_some_and(|expected| expected != etag) {
            return Err(SetPolicyError::StaleEtag);
        }
        account.iam_policy.bindings = bindings;
        let fresh = new_etag();
        etags.insert(key, fresh.clone());
        Ok(fresh)
    }

    pub fn provider(&self, pool: &str, provider: &str) -> Option<WorkloadIdentityPoolSetup> {
        self.snapshot()
            .workload_identity_pools
            .into_iter()
            .find(|p| p.pool == pool && p.provider == provider)
    }

    pub fn bucket(&self, name: &str) -> Option<GcsBucketSetup> {
        self.snapshot().buckets.into_iter().find(|b| b.name == name)
    }
}

/// 8 random bytes in base64, like Google's `BwX…` etags.
fn new_etag() -> String {
    let mut bytes = [0u8; 8];
    // An all-zero etag on a failed read would still differ from the previous random one.
    let _ = getrandom::fill(&mut bytes);
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMAIL: &str = "gsa@my-project.iam.gserviceaccount.com";

    fn store() -> ProjectStore {
        let store = ProjectStore::default();
        let setup: GcpSetup = serde_json::from_value(serde_json::json!({
            "serviceAccounts": [{"email": EMAIL}]
        }))
        .expect("setup");
        store.apply(&setup);
        store
    }

    #[test]
    fn a_stale_etag_is_refused_and_every_change_gets_a_new_one() {
        let store = store();
        let (policy, first) = store.policy(EMAIL).expect("account");
        assert!(policy.bindings.is_empty());
        assert_eq!(first, EMPTY_POLICY_ETAG);
        let binding = IamBindingSetup {
            role: "roles/iam.workloadIdentityUser".to_owned(),
            members: vec!["serviceAccount:my-project.svc.id.goog[ns/ksa]".to_owned()],
        };
        let second = store
            .set_policy(EMAIL, vec![binding.clone()], Some(&first))
            .expect("current etag");
        assert_ne!(second, first);
        assert_eq!(
            store.set_policy(EMAIL, Vec::new(), Some(&first)),
            Err(SetPolicyError::StaleEtag)
        );
        assert_eq!(store.policy(EMAIL).expect("account").0.bindings, [binding]);
        let third = store.set_policy(EMAIL, Vec::new(), None).expect("no etag");
        assert_ne!(third, second);
        assert_eq!(
            store.set_policy(
                "nobody@my-project.iam.gserviceaccount.com",
                Vec::new(),
                None
            ),
            Err(SetPolicyError::NoSuchAccount)
        );
    }
}
