//! Diagnostics collected when a scenario fails: pod state, events, logs, emulator requests.

use std::fmt::Write;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams};

use super::RunContext;
use crate::emulators::RequestLogEntry;
use crate::scenario::CatchItem;

pub async fn collect(items: &[CatchItem], ctx: &RunContext<'_>, namespace: &str) -> String {
    let mut out = String::new();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    for item in items {
        match item {
            CatchItem::Describe { pod } => {
                let _ = writeln!(out, "--- pod {namespace}/{pod}");
                match pods.get_opt(pod).await {
                    Ok(Some(p)) => {
                        let _ = writeln!(
                            out,
                            "spec: {}",
                            serde_json::to_string(&p.spec).unwrap_or_default()
                        );
                        let _ = writeln!(
                            out,
                            "status: {}",
                            serde_json::to_string(&p.status).unwrap_or_default()
                        );
                    }
                    Ok(None) => out.push_str("(absent)\n"),
                    Err(e) => {
                        let _ = writeln!(out, "(error: {e})");
                    }
                }
            }
            CatchItem::Events {} => {
                let _ = writeln!(out, "--- events in {namespace}");
                let events: Api<Event> = Api::namespaced(ctx.client.clone(), namespace);
                if let Ok(list) = events.list(&ListParams::default()).await {
                    for e in list.items {
                        let _ = writeln!(
                            out,
                            "{} {} {}: {}",
                            e.type_.unwrap_or_default(),
                            e.involved_object.name.unwrap_or_default(),
                            e.reason.unwrap_or_default(),
                            e.message.unwrap_or_default()
                        );
                    }
                }
            }
            CatchItem::Logs { pod } => {
                let _ = writeln!(out, "--- logs of {namespace}/{pod}");
                match pods
                    .logs(
                        pod,
                        &LogParams {
                            tail_lines: Some(50),
                            ..Default::default()
                        },
                    )
                    .await
                {
                    Ok(l) => out.push_str(&l),
                    Err(e) => {
                        let _ = writeln!(out, "(error: {e})");
                    }
                }
            }
            CatchItem::EmulatorLog {} => {
                // `TIME #ID arrived|answered ns=NAMESPACE METHOD PATH ACTION -> OUTCOME in N ms`:
                // an arrival without its answer is a request still in progress (or stuck).
                let _ = writeln!(out, "--- AWS emulator requests ({})", ctx.aws.gate_url());
                write_entries(&mut out, &ctx.aws.request_events());
                if let Some(gcp) = ctx.gcp {
                    let _ = writeln!(out, "--- GCP emulator requests");
                    write_entries(&mut out, &gcp.request_log());
                }
                if let Some(agent) = ctx.pod_identity_agent {
                    let _ = writeln!(out, "--- Pod Identity Agent requests");
                    write_entries(&mut out, &agent.request_events());
                }
                if let Some(front) = ctx.cloud_front {
                    let _ = writeln!(out, "--- cloud front requests from {namespace}");
                    for entry in front
                        .request_log()
                        .into_iter()
                        .filter(|e| e.namespace.as_deref() == Some(namespace))
                    {
                        let _ = writeln!(out, "{entry:?}");
                    }
                }
                let _ = writeln!(out, "--- Azure emulator requests (Entra, Blob)");
                write_entries(&mut out, &ctx.azure.request_log());
            }
        }
    }
    out
}

fn write_entries(out: &mut String, entries: &[RequestLogEntry]) {
    for entry in entries {
        let _ = writeln!(out, "{entry}");
    }
}
