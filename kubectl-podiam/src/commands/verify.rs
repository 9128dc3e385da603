use crate::cli::{GlobalFlags, VerifyArgs};
use crate::error::{Error, Result};
use std::io::IsTerminal;
use std::path::Path;

use crate::containers;
use crate::evidence::{OfflineToken, Probe};
use crate::fleet::{self, Fleet, Scope};
use crate::kube::{client, pods};
use crate::manifest::{documents, subjects};
use crate::model::ReportItem;
use crate::network_policy::ManifestNetworkPolicies;
use crate::options::{AccessExpectation, VerifyOptions};
use crate::rbac::ManifestRbac;

pub fn options(global: &GlobalFlags, args: &VerifyArgs) -> Result<VerifyOptions> {
    let mut access = Vec::new();
    for spec in &args.can {
        access.push(AccessExpectation::parse(spec, true)?);
    }
    for spec in &args.cannot {
        access.push(AccessExpectation::parse(spec, false)?);
    }
    if let Some(role) = &args.expect_role {
        use crate::exchange::aws_sts::{account, role_name};
        if role_name(role).is_none() || account(role).is_none() {
            return Err(Error::Usage(format!(
                "--expect-role {role:?}: expected an IAM role ARN, e.g. arn:aws:iam::123456789012:role/NAME"
            )));
        }
    }
    Ok(VerifyOptions {
        expect_role: args.expect_role.clone(),
        expect_gsa: args.cloud.expect_gsa.clone(),
        access,
        aws: super::aws_target(global, &args.cloud),
        expect_client_id: args.cloud.expect_client_id.clone(),
        azure: super::azure_target(global, &args.cloud),
        eks_cluster_name: super::eks_cluster_name(global, &args.cloud),
        rbac: super::rbac_options(global),
        gcp: super::gcp_target(global, &args.cloud),
        probe: crate::ephemeral::ProbeSettings::from_flags(&args.probe),
        allow_skip: args.allow_skip,
        assume_roles: args.assume_roles.clone(),
        ..Default::default()
    })
}

/// Many pods (`-A`, `-l`, or no POD and no `-f`): the report carries a summary.
pub fn is_fleet(args: &VerifyArgs) -> bool {
    args.filename.is_none()
        && (args.pod.is_none() || args.all_namespaces || args.selector.is_some())
}

pub async fn run(global: &GlobalFlags, args: &VerifyArgs) -> Result<Vec<ReportItem>> {
    let options = options(global, args)?;
    if let Some(path) = &args.filename {
        if args.pod.is_some() {
            return Err(Error::Usage("give either POD or -f, not both".into()));
        }
        let docs = documents::load(path)?;
        // Warned, not refused: see manifest::unknown_fields.
        for warning in crate::manifest::unknown_fields::warnings(&docs) {
            eprintln!("warning: {warning}");
        }
        let namespace = global.namespace.as_deref().unwrap_or("default");
        let subjects = subjects::subjects(&docs, namespace, args.container.as_deref())?;
        let mut options = options;
        options.rbac.manifests = ManifestRbac::from_documents(&docs, namespace)?;
        options.manifest_network_policies =
            Some(ManifestNetworkPolicies::from_documents(&docs, namespace)?);
        if subjects.is_empty() {
            return Err(Error::Input {
                path: path.clone(),
                message: "no Pod or workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) found".into(),
            });
        }
        if path.as_os_str() == "-" && args.token_file.as_deref() == Some(Path::new("-")) {
            return Err(Error::Usage(
                "-f - and --token-file - cannot both read stdin".into(),
            ));
        }
        let token = match &args.token_file {
            Some(p) => Some(OfflineToken::read(p)?),
            None => None,
        };
        let probe = Probe::Offline { token };
        let mut items = Vec::new();
        for s in &subjects {
            items.extend(
                containers::judge_pod(s, args.container.as_deref(), &probe, &options).await,
            );
        }
        return Ok(items);
    }
    if is_fleet(args) && args.probe.probe != crate::ephemeral::ProbeMode::Exec {
        return Err(Error::Usage(
            "--probe=ephemeral|auto adds a container that cannot be removed to each pod: name one pod".into(),
        ));
    }
    let conn = client::connect(&super::connection_flags(global)).await?;
    let Some(pod_name) = args.pod.as_deref().filter(|_| !is_fleet(args)) else {
        let scope = Scope::new(
            args.all_namespaces,
            &conn.namespace,
            args.selector.as_deref(),
        )?;
        let fleet = Fleet {
            client: &conn.client,
            timeout: conn.timeout,
            container: args.container.as_deref(),
            options: &options,
            concurrency: usize::from(args.concurrency),
            progress: fleet::show_progress(
                global.output,
                std::io::stderr().is_terminal(),
                std::io::stdout().is_terminal(),
                std::env::var_os("CI").is_some_and(|v| !v.is_empty()),
            ),
        };
        return fleet.verify(&scope).await;
    };
    let pod = pods::get_pod(&conn.client, &conn.namespace, pod_name).await?;
    let subject = pods::subject(
        &conn.client,
        pod,
        args.container.as_deref(),
        &options.answers,
    )
    .await?;
    let probe = Probe::Live {
        client: conn.client.clone(),
        timeout: conn.timeout,
    };
    Ok(containers::judge_pod(&subject, args.container.as_deref(), &probe, &options).await)
}
