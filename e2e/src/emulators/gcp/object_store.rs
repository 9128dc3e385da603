//! The GCS data itself: an in-memory object store behind the authorizing front (objects are
//! small test fixtures; a real GCS emulator would add a process and nothing the checks need).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::token_store::rfc3339_seconds;

#[derive(Debug, Clone)]
pub struct StoredObject {
    pub data: Vec<u8>,
    pub content_type: String,
    pub generation: u64,
    pub created: SystemTime,
}

#[derive(Default)]
pub struct ObjectStore {
    buckets: Mutex<BTreeMap<String, BTreeMap<String, StoredObject>>>,
    next_generation: Mutex<u64>,
}

impl ObjectStore {
    pub fn create_bucket(&self, bucket: &str) {
        self.lock().entry(bucket.to_owned()).or_default();
    }

    pub fn put(&self, bucket: &str, name: &str, data: Vec<u8>, content_type: &str) -> StoredObject {
        let generation = {
            let mut next = self
                .next_generation
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *next += 1;
            1_700_000_000_000_000 + *next
        };
        let object = StoredObject {
            data,
            content_type: content_type.to_owned(),
            generation,
            created: SystemTime::now(),
        };
        self.lock()
            .entry(bucket.to_owned())
            .or_default()
            .insert(name.to_owned(), object.clone());
        object
    }

    pub fn get(&self, bucket: &str, name: &str) -> Option<StoredObject> {
        self.lock().get(bucket)?.get(name).cloned()
    }

    pub fn delete(&self, bucket: &str, name: &str) -> bool {
        self.lock()
            .get_mut(bucket)
            .is_some_and(|objects| objects.remove(name).is_some())
    }

    /// Objects whose names start with `prefix`, by name.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, StoredObject)> {
        self.lock()
            .get(bucket)
            .map(|objects| {
                objects
                    .iter()
                    .filter(|(name, _)| name.starts_with(prefix))
                    .map(|(name, object)| (name.clone(), object.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<String, StoredObject>>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The JSON API's `storage#object` resource.
pub fn object_resource(base_url: &str, bucket: &str, name: &str, object: &StoredObject) -> Value {
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    let created = rfc3339_seconds(object.created);
    json!({
        "kind": "storage#object",
        "id": format!("{bucket}/{name}/{}", object.generation),
        "selfLink": format!("{base_url}/storage/v1/b/{bucket}/o/{encoded}"),
        "mediaLink": format!("{base_url}/download/storage/v1/b/{bucket}/o/{encoded}?generation={}&alt=media", object.generation),
        "name": name,
        "bucket": bucket,
        "generation": object.generation.to_string(),
        "metageneration": "1",
        "contentType": object.content_type,
        "storageClass": "STANDARD",
        "size": object.data.len().to_string(),
        "timeCreated": created,
        "updated": created,
    })
}
