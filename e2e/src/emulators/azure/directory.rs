//! The emulated cloud's current contents, shared by the Entra and Blob servers: replaced as a
//! whole when a setup is applied, emptied on reset.

use std::sync::{Arc, Mutex, RwLock};

use super::access_token::IssuedToken;
use super::setup::AzureSetup;

#[derive(Clone, Default)]
pub struct Directory {
    setup: Arc<RwLock<AzureSetup>>,
    issued: Arc<Mutex<Vec<IssuedToken>>>,
}

impl Directory {
    /// A copy of the current setup (small; cloned per request so no lock is held across I/O).
    pub fn snapshot(&self) -> AzureSetup {
        self.setup
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn replace(&self, setup: AzureSetup) {
        *self
            .setup
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = setup;
    }

    /// Changes the current contents in place (Graph writes); `change` sees a consistent copy.
    pub fn update<R>(&self, change: impl FnOnce(&mut AzureSetup) -> R) -> R {
        change(
            &mut self
                .setup
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    pub fn record_issued(&self, token: IssuedToken) {
        self.issued
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(token);
    }

    pub fn issued(&self) -> Vec<IssuedToken> {
        self.issued
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn clear_issued(&self) {
        self.issued
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}
