//! Who holds a token, and which IAM policy members name them. The emulators' own reading of
//! Google's member syntax; nothing here is shared with the plugin.

/// The identity behind an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A Google account signed in with gcloud (`authorized_user` credentials): the operator.
    User(String),
    /// A Google service account (after impersonation, or a GSA token from the metadata server).
    ServiceAccount(String),
    /// A federated identity from a workload identity pool.
    Federated {
        /// `projects/NUM/locations/global/workloadIdentityPools/POOL`
        pool_resource: String,
        /// `google.subject` (the token's `sub`; `ns/NS/sa/KSA` in GKE's pool).
        subject: String,
    },
}

impl Principal {
    pub fn federated(project_number: &str, pool: &str, subject: &str) -> Self {
        Self::Federated {
            pool_resource: format!(
                "projects/{project_number}/locations/global/workloadIdentityPools/{pool}"
            ),
            subject: subject.to_owned(),
        }
    }

    /// A Kubernetes ServiceAccount of a GKE cluster as a principal of `PROJECT.svc.id.goog`.
    pub fn gke_service_account(
        project_number: &str,
        workload_pool: &str,
        namespace: &str,
        service_account: &str,
    ) -> Self {
        Self::federated(
            project_number,
            workload_pool,
            &format!("ns/{namespace}/sa/{service_account}"),
        )
    }

    /// How Google writes it in errors and logs: the email, or `principal://…`.
    pub fn display(&self) -> String {
        match self {
            Self::User(email) | Self::ServiceAccount(email) => email.clone(),
            Self::Federated {
                pool_resource,
                subject,
            } => format!("principal://iam.googleapis.com/{pool_resource}/subject/{subject}"),
        }
    }

    /// Whether an IAM policy member names this principal.
    pub fn is_named_by(&self, member: &str) -> bool {
        if member == "allUsers" || member == "allAuthenticatedUsers" {
            return true;
        }
        match self {
            Self::User(email) => member
                .strip_prefix("user:")
                .is_some_and(|named| named.eq_ignore_ascii_case(email)),
            Self::ServiceAccount(email) => member
                .strip_prefix("serviceAccount:")
                .is_some_and(|named| named.eq_ignore_ascii_case(email)),
            Self::Federated {
                pool_resource,
                subject,
            } => {
                if member == self.display() {
                    return true;
                }
                if let Some(set) = member.strip_prefix("principalSet://iam.googleapis.com/") {
                    return set == format!("{pool_resource}/*")
                        || gke_namespace_of(subject).is_some_and(|namespace| {
                            set == format!("{pool_resource}/namespace/{namespace}")
                        });
                }
                // Legacy GKE syntax: serviceAccount:PROJECT.svc.id.goog[NS/KSA].
                if let Some(rest) = member.strip_prefix("serviceAccount:")
                    && let Some((pool, bracketed)) = rest.split_once('[')
                    && let Some(namespaced) = bracketed.strip_suffix(']')
                    && let Some((namespace, service_account)) = namespaced.split_once('/')
                {
                    return pool_resource.ends_with(&format!("/workloadIdentityPools/{pool}"))
                        && *subject == format!("ns/{namespace}/sa/{service_account}");
                }
                false
            }
        }
    }
}

/// A stable numeric id per account, like Google's 21-digit unique ids (the `sub` and `azp` of
/// its ID tokens, the `azp` and `aud` of tokeninfo for its access tokens).
pub fn unique_id(email: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(email.as_bytes());
    format!(
        "1{:020}",
        u64::from_be_bytes(digest[..8].try_into().unwrap_or_default()) % 10u64.pow(19)
    )
}

fn gke_namespace_of(subject: &str) -> Option<&str> {
    let rest = subject.strip_prefix("ns/")?;
    let (namespace, _) = rest.split_once("/sa/")?;
    Some(namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gke_member_forms() {
        let p =
            Principal::gke_service_account("1234567890", "my-project.svc.id.goog", "ns1", "ksa");
        assert!(p.is_named_by("serviceAccount:my-project.svc.id.goog[ns1/ksa]"));
        assert!(!p.is_named_by("serviceAccount:my-project.svc.id.goog[ns2/ksa]"));
        assert!(!p.is_named_by("serviceAccount:other.svc.id.goog[ns1/ksa]"));
        assert!(p.is_named_by(
            "principal://iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/my-project.svc.id.goog/subject/ns/ns1/sa/ksa"
        ));
        assert!(p.is_named_by(
            "principalSet://iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/my-project.svc.id.goog/namespace/ns1"
        ));
        assert!(!p.is_named_by(
            "principalSet://iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/my-project.svc.id.goog/namespace/ns2"
        ));
    }

    #[test]
    fn service_account_members() {
        let p = Principal::ServiceAccount("a@p.iam.gserviceaccount.com".to_owned());
        assert!(p.is_named_by("serviceAccount:a@p.iam.gserviceaccount.com"));
        assert!(!p.is_named_by("serviceAccount:b@p.iam.gserviceaccount.com"));
        assert!(!p.is_named_by("user:a@p.iam.gserviceaccount.com"));
    }

    #[test]
    fn user_members() {
        let p = Principal::User("admin@example.com".to_owned());
        assert!(p.is_named_by("user:Admin@example.com"));
        assert!(!p.is_named_by("serviceAccount:admin@example.com"));
        assert!(!p.is_named_by("user:other@example.com"));
    }
}
