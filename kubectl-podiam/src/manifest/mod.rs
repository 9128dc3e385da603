//! Offline input: manifests from files, directories or stdin, turned into pods to judge.

pub mod documents;
pub mod subjects;
pub mod unknown_fields;
