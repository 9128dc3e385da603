//! Where a file a container reads comes from: which volume, which Secret or ConfigMap key, or
//! which projected ServiceAccount token. Lets the static checks judge the file
//! `GOOGLE_APPLICATION_CREDENTIALS` names, and offline verification read a config from `-f`.

use k8s_openapi::api::core::v1::{Container, KeyToPath, PodSpec, Volume};

/// What backs a file in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    Secret {
        name: String,
        key: String,
    },
    ConfigMap {
        name: String,
        key: String,
    },
    /// A projected ServiceAccount token (the kubelet mints and rotates it).
    ServiceAccountToken {
        audience: Option<String>,
        expiration_seconds: Option<i64>,
    },
    /// Another kind of volume (emptyDir, hostPath, CSI, …).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedFile {
    pub volume: String,
    pub mount_path: String,
    pub backing: Backing,
}

/// The file name inside the volume for `path`, if a mount of `container` covers it.
fn relative<'a>(container: &'a Container, path: &'a str) -> Option<(&'a str, String)> {
    container.volume_mounts.iter().flatten().find_map(|m| {
        let mount = m.mount_path.trim_end_matches('/');
        match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) if path == mount => Some((m.name.as_str(), sub.to_string())),
            Some(_) => None,
            None => path
                .strip_prefix(mount)
                .and_then(|r| r.strip_prefix('/'))
                .filter(|r| !r.is_empty())
                .map(|r| (m.name.as_str(), r.to_string())),
        }
    })
}

/// The key a `items` list maps to file `rel`, or `rel` itself when there is no list.
fn key_for(items: Option<&Vec<KeyToPath>>, rel: &str) -> Option<String> {
    match items {
        Some(items) if !items.is_empty() => {
            items.iter().find(|i| i.path == rel).map(|i| i.key.clone())
        }
        _ => Some(rel.to_string()),
    }
}

fn backing(volume: &Volume, rel: &str) -> Backing {
    if let Some(s) = &volume.secret {
        return match key_for(s.items.as_ref(), rel) {
            Some(key) => Backing::Secret {
                name: s.secret_name.clone().unwrap_or_default(),
                key,
            },
            None => Backing::Other,
        };
    }
    if let Some(c) = &volume.config_map {
        return match key_for(c.items.as_ref(), rel) {
            Some(key) => Backing::ConfigMap {
                name: c.name.clone(),
                key,
            },
            None => Backing::Other,
        };
    }
    if let Some(p) = &volume.projected {
        for source in p.sources.iter().flatten() {
            if let Some(t) = &source.service_account_token
                && t.path == rel
            {
                return Backing::ServiceAccountToken {
                    audience: t.audience.clone(),
                    expiration_seconds: t.expiration_seconds,
                };
            }
            if let Some(s) = &source.secret
                && let Some(key) = key_for(s.items.as_ref(), rel)
                && (s.items.is_some() || rel == key)
            {
                return Backing::Secret {
                    name: s.name.clone(),
                    key,
                };
            }
            if let Some(c) = &source.config_map
                && let Some(key) = key_for(c.items.as_ref(), rel)
                && (c.items.is_some() || rel == key)
            {
                return Backing::ConfigMap {
                    name: c.name.clone(),
                    key,
                };
            }
        }
    }
    Backing::Other
}

/// The volume behind `path` in `container`; None when no mount covers it (an image file).
pub fn resolve(spec: &PodSpec, container: &Container, path: &str) -> Option<MountedFile> {
    let (volume_name, rel) = relative(container, path)?;
    let mount_path = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == volume_name)
        .map(|m| m.mount_path.clone())
        .unwrap_or_default();
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == volume_name)?;
    Some(MountedFile {
        volume: volume_name.to_string(),
        mount_path,
        backing: backing(volume, &rel),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> PodSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn resolves_config_maps_secrets_and_tokens() {
        let spec = spec(
            r#"
containers:
  - name: app
    volumeMounts:
      - {name: gcp-config, mountPath: /etc/gcp}
      - {name: key, mountPath: /var/secrets/google/key.json, subPath: key.json}
      - {name: token, mountPath: /var/run/service-account}
volumes:
  - name: gcp-config
    configMap: {name: wif-config, items: [{key: credential-configuration.json, path: config.json}]}
  - name: key
    secret: {secretName: gcp-key}
  - name: token
    projected:
      sources:
        - serviceAccountToken: {audience: my-aud, expirationSeconds: 3600, path: token}
"#,
        );
        let c = &spec.containers[0];
        assert_eq!(
            resolve(&spec, c, "/etc/gcp/config.json").unwrap().backing,
            Backing::ConfigMap {
                name: "wif-config".into(),
                key: "credential-configuration.json".into()
            }
        );
        assert_eq!(
            resolve(&spec, c, "/var/secrets/google/key.json")
                .unwrap()
                .backing,
            Backing::Secret {
                name: "gcp-key".into(),
                key: "key.json".into()
            }
        );
        assert_eq!(
            resolve(&spec, c, "/var/run/service-account/token")
                .unwrap()
                .backing,
            Backing::ServiceAccountToken {
                audience: Some("my-aud".into()),
                expiration_seconds: Some(3600)
            }
        );
        assert!(resolve(&spec, c, "/opt/creds.json").is_none());
    }
}
