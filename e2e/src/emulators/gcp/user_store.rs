//! Google accounts signed in with `gcloud auth application-default login`: each holds an OAuth
//! client (id, secret) and a refresh token, which the token endpoint trades for access tokens.
//! The harness registers them and writes the `authorized_user` files that point at the emulator.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One signed-in account.
#[derive(Debug, Clone)]
pub struct UserGrant {
    pub email: String,
    pub client_id: String,
    pub client_secret: String,
}

/// The `authorized_user` file's secret fields, as gcloud writes them.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
}

#[derive(Default)]
pub struct UserStore {
    by_refresh_token: Mutex<HashMap<String, UserGrant>>,
}

impl UserStore {
    /// Signs `email` in with a new client and refresh token.
    pub fn sign_in(&self, email: &str) -> Result<UserCredentials> {
        let credentials = UserCredentials {
            client_id: format!("{}.apps.googleusercontent.com", random("podiam-")?),
            client_secret: random("GOCSPX-")?,
            refresh_token: random("1//podiam-")?,
        };
        use crate::emulators::issued_secrets::{SecretKind, record};
        record(SecretKind::GoogleClientSecret, &credentials.client_secret);
        record(SecretKind::GoogleRefreshToken, &credentials.refresh_token);
        self.lock().insert(
            credentials.refresh_token.clone(),
            UserGrant {
                email: email.to_owned(),
                client_id: credentials.client_id.clone(),
                client_secret: credentials.client_secret.clone(),
            },
        );
        Ok(credentials)
    }

    pub fn by_refresh_token(&self, refresh_token: &str) -> Option<UserGrant> {
        self.lock().get(refresh_token).cloned()
    }

    /// Whether any signed-in account uses this OAuth client.
    pub fn knows_client(&self, client_id: &str) -> bool {
        self.lock().values().any(|g| g.client_id == client_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, UserGrant>> {
        self.by_refresh_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

fn random(prefix: &str) -> Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).context("reading random bytes for an OAuth credential")?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}
