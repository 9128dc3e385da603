//! Blob contents held in memory, per account and container: what the Blob front lists and
//! serves. Rebuilt from the setup on every apply.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::setup::AzureSetup;

/// One stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub content: Vec<u8>,
    /// Unix seconds of the last write.
    pub last_modified: i64,
    pub etag: String,
}

type Containers = BTreeMap<String, BTreeMap<String, StoredBlob>>;

#[derive(Clone, Default)]
pub struct BlobStore {
    accounts: Arc<Mutex<BTreeMap<String, Containers>>>,
}

impl BlobStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Containers>> {
        self.accounts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces everything with the accounts, containers and blobs of `setup`.
    pub fn load(&self, setup: &AzureSetup, now: i64) {
        let mut accounts = BTreeMap::new();
        for account in &setup.storage_accounts {
            let mut containers = BTreeMap::new();
            for container in &account.containers {
                let blobs = container
                    .blobs
                    .iter()
                    .map(|(name, text)| (name.clone(), stored(text.as_bytes().to_vec(), now)))
                    .collect();
                containers.insert(container.name.clone(), blobs);
            }
            accounts.insert(account.name.clone(), containers);
        }
        *self.lock() = accounts;
    }

    pub fn has_account(&self, account: &str) -> bool {
        self.lock().contains_key(account)
    }

    /// The blobs of a container, by name; `None` when the container does not exist.
    pub fn list(&self, account: &str, container: &str) -> Option<BTreeMap<String, StoredBlob>> {
        self.lock().get(account)?.get(container).cloned()
    }

    /// `None` when the container does not exist; `Some(None)` when the blob does not.
    pub fn get(&self, account: &str, container: &str, blob: &str) -> Option<Option<StoredBlob>> {
        Some(self.lock().get(account)?.get(container)?.get(blob).cloned())
    }

    /// Writes a blob; `false` when the container does not exist.
    pub fn put(
        &self,
        account: &str,
        container: &str,
        blob: &str,
        content: Vec<u8>,
        now: i64,
    ) -> bool {
        let mut accounts = self.lock();
        match accounts.get_mut(account).and_then(|a| a.get_mut(container)) {
            Some(blobs) => {
                blobs.insert(blob.to_owned(), stored(content, now));
                true
            }
            None => false,
        }
    }
}

fn stored(content: Vec<u8>, now: i64) -> StoredBlob {
    let etag = format!(
        "\"0x8DC{:012X}\"",
        now as u64 ^ (content.len() as u64) << 20
    );
    StoredBlob {
        content,
        last_modified: now,
        etag,
    }
}
