//! Scenario manifests name the seed's images; the local cluster has no registry, so they are
//! mapped to the images the harness builds: the clouds' CLI images (which all ship curl and a
//! CA bundle) to the curl image, busybox to busybox-static.

/// Image names as written in the seed guide → the locally built image that stands in.
pub const IMAGE_MAP: &[(&str, &str)] = &[
    ("amazonlinux", LOCAL_CURL),
    ("google/cloud-sdk", LOCAL_CURL),
    ("mcr.microsoft.com/azure-cli", LOCAL_CURL),
    ("busybox", LOCAL_BUSYBOX),
    ("distroless", LOCAL_DISTROLESS),
];

pub const LOCAL_BUSYBOX: &str = "podiam.local/busybox:latest";
pub const LOCAL_CURL: &str = "podiam.local/curl:latest";
pub const LOCAL_DISTROLESS: &str = "podiam.local/distroless:latest";

/// The local image for `image` (tag and digest ignored), or `image` unchanged.
pub fn map_image(image: &str) -> String {
    let name = image.split('@').next().unwrap_or(image);
    let name = match name.rsplit_once(':') {
        Some((n, tag)) if !tag.contains('/') => n,
        _ => name,
    };
    IMAGE_MAP
        .iter()
        .find(|(seed, _)| *seed == name)
        .map_or_else(|| image.to_string(), |(_, local)| local.to_string())
}

/// Rewrites every container image in a pod spec or workload template, in place.
pub fn map_images(object: &mut serde_json::Value) {
    match object {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if matches!(
                    key.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                ) && let Some(list) = value.as_array_mut()
                {
                    for c in list {
                        if let Some(img) = c.get("image").and_then(|i| i.as_str()) {
                            let mapped = map_image(img);
                            c["image"] = serde_json::Value::String(mapped);
                            c["imagePullPolicy"] = serde_json::Value::String("Never".into());
                        }
                    }
                } else {
                    map_images(value);
                }
            }
        }
        serde_json::Value::Array(list) => list.iter_mut().for_each(map_images),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_seed_images() {
        assert_eq!(map_image("amazonlinux"), LOCAL_CURL);
        assert_eq!(map_image("amazonlinux:2023"), LOCAL_CURL);
        assert_eq!(map_image("mcr.microsoft.com/azure-cli:latest"), LOCAL_CURL);
        assert_eq!(map_image("busybox:1.36"), LOCAL_BUSYBOX);
        assert_eq!(
            map_image("registry.example:5000/app"),
            "registry.example:5000/app"
        );
        let mut deploy = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "google/cloud-sdk"}]}}}});
        map_images(&mut deploy);
        assert_eq!(
            deploy["spec"]["template"]["spec"]["containers"][0]["image"],
            LOCAL_CURL
        );
        assert_eq!(
            deploy["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Never"
        );
    }
}
