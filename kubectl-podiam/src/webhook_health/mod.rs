//! The identity webhook a live pod depends on (EKS pod identity webhook for IRSA and Pod
//! Identity, Azure workload identity webhook for AKS): its MutatingWebhookConfiguration is
//! registered, its failurePolicy, its Service has ready endpoints (EndpointSlices), and an
//! unmutated pod created while it could not mutate is named. Live only: a manifest says
//! nothing about the cluster's webhooks. Reads need `list` on
//! mutatingwebhookconfigurations (cluster-wide) and endpointslices (the webhook's namespace);
//! without them the checks skip, naming the permission.

pub mod assess;
pub mod known;
pub mod read;

use crate::evidence::Probe;
use crate::model::{Check, MechanismId};
use crate::options::VerifyOptions;
use crate::subject::{Origin, PodSubject};

use known::Webhook;
use read::Target;

pub async fn checks(
    pod: &PodSubject,
    mechanism: MechanismId,
    probe: &Probe,
    options: &VerifyOptions,
) -> Vec<Check> {
    let Probe::Live { client, .. } = probe else {
        return Vec::new();
    };
    if pod.origin != Origin::Live {
        return Vec::new();
    }
    let Some(webhook) = Webhook::needed_by(pod, mechanism) else {
        return Vec::new();
    };
    let registration = read::configurations(client, &options.answers)
        .await
        .map(|all| read::find(&all, webhook));
    let endpoints = match &registration {
        Ok(Some(r)) => match &r.target {
            Target::Service { namespace, name } => {
                Some(read::endpoints(client, &options.answers, namespace, name).await)
            }
            Target::Url(_) => None,
        },
        _ => None,
    };
    assess::checks(&assess::Evidence {
        webhook,
        pod: pod.describe(),
        mutated: webhook.mutated(pod),
        pod_created: pod.meta.creation_timestamp.as_ref().map(|t| t.0),
        registration,
        endpoints,
    })
}
