//! The emulated project's IAM and resources as scenarios set them up: service accounts with
//! their policies, workload identity pools, buckets with their policies. Replaced piecewise by
//! `apply`, emptied by `reset`.

use std::sync::RwLock;

use super::object_store::ObjectStore;
use super::setup::{GcpSetup, GcsBucketSetup, ServiceAccountSetup, WorkloadIdentityPoolSetup};

#[derive(Default)]
pub struct ProjectStore {
    setup: RwLock<GcpSetup>,
    pub objects: ObjectStore,
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
        for account in &setup.service_accounts {
            current
                .service_accounts
                .retain(|a| !a.email.eq_ignore_ascii_case(&account.email));
            current.service_accounts.push(account.clone());
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
