//! `podiam` step: the built plugin as a user runs it, with the cluster's kubeconfig and the
//! emulators' endpoints in its environment; exit code and JSON assertions.

use anyhow::{Context, Result, bail};

use super::RunContext;
use crate::scenario::assertion::Captures;
use crate::scenario::schema::PodiamStep;

/// `${NAMESPACE}` and `${POD:SELECTOR}` (first pod matching the selector).
async fn expand(ctx: &RunContext<'_>, namespace: &str, arg: &str) -> Result<String> {
    let arg = arg.replace("${NAMESPACE}", namespace);
    let Some(selector) = arg.strip_prefix("${POD:").and_then(|s| s.strip_suffix('}')) else {
        return Ok(arg);
    };
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(ctx.client.clone(), namespace);
    let pod = super::wait::find_pod(&api, None, Some(selector))
        .await?
        .with_context(|| format!("no pod matches {selector}"))?;
    Ok(pod.metadata.name.unwrap_or_default())
}

pub async fn run(
    ctx: &RunContext<'_>,
    namespace: &str,
    step: &PodiamStep,
    captures: &mut Captures,
) -> Result<()> {
    let mut args = Vec::new();
    for arg in &step.args {
        args.push(expand(ctx, namespace, arg).await?);
    }
    let mut command = super::plugin_command::plugin_command(
        &ctx.plugin,
        &ctx.kubeconfig,
        ctx.aws,
        ctx.azure,
        &args,
    );
    if let Some(gcp) = ctx.gcp {
        super::plugin_command::add_gcp_env(&mut command, gcp);
    }
    command
        .args(&ctx.plugin_args)
        .args(&args)
        .args(super::plugin_command::host_side_args(&args, ctx.azure))
        .args(["-n", namespace, "-o", "json"])
        .kill_on_drop(true);
    let started = std::time::Instant::now();
    let running = command.output();
    let output = match step.within_seconds {
        Some(limit) => tokio::time::timeout(std::time::Duration::from_secs(limit), running)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "kubectl podiam {}: still running after {limit}s (withinSeconds)",
                    args.join(" ")
                )
            })?,
        None => running.await,
    }
    .with_context(|| format!("running {}", ctx.plugin.display()))?;
    tracing::info!(
        "kubectl podiam {}: {} ms",
        args.join(" "),
        started.elapsed().as_millis()
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Nothing the pod showed as a secret (or forged) comes back out.
    let leaked: Vec<&String> = step
        .output_excludes
        .iter()
        .filter(|text| stdout.contains(text.as_str()) || stderr.contains(text.as_str()))
        .collect();
    if !leaked.is_empty() {
        bail!(
            "kubectl podiam {}: its output contains {} text(s) it must never print (outputExcludes: {:?}…)",
            args.join(" "),
            leaked.len(),
            leaked
                .iter()
                .map(|t| t.chars().take(12).collect::<String>())
                .collect::<Vec<_>>()
        );
    }
    // Whatever the step asserts, the operator's secrets never reach the plugin's output.
    if operator_secrets(ctx)
        .iter()
        .any(|secret| stdout.contains(secret.as_str()) || stderr.contains(secret.as_str()))
    {
        bail!(
            "kubectl podiam {}: an operator secret (AWS secret key, Azure client secret or Google refresh token) appears in its output",
            args.join(" ")
        );
    }
    let code = output.status.code().unwrap_or(-1);
    if code != step.exit_code {
        bail!(
            "kubectl podiam {}: exit code {code}, expected {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            args.join(" "),
            step.exit_code
        );
    }
    let missing: Vec<&String> = step
        .stderr_contains
        .iter()
        .filter(|text| !stderr.contains(text.as_str()))
        .collect();
    if !missing.is_empty() {
        bail!(
            "kubectl podiam {}: stderr lacks {missing:?}\nstderr:\n{stderr}",
            args.join(" ")
        );
    }
    if step.assertions.is_empty() && step.capture.is_none() {
        return Ok(());
    }
    let report: serde_json::Value = serde_json::from_str(&stdout).with_context(|| {
        format!(
            "kubectl podiam {}: stdout is not JSON; stderr: {stderr}",
            args.join(" ")
        )
    })?;
    let failures: Vec<String> = step
        .assertions
        .iter()
        .filter_map(|a| a.check_with(&report, captures).err())
        .collect();
    if !failures.is_empty() {
        bail!(
            "kubectl podiam {}: {}\nreport:\n{}",
            args.join(" "),
            failures.join("\n"),
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    if let Some(name) = &step.capture {
        captures.insert(name.clone(), report);
    }
    Ok(())
}

/// The secrets of the operator credentials the plugin is given (see `plugin_command`).
fn operator_secrets(ctx: &RunContext<'_>) -> Vec<String> {
    let mut secrets = vec![
        ctx.aws.admin_credentials().1,
        ctx.aws.bind_operator_credentials().1,
        ctx.azure.operator_credentials().1.to_owned(),
    ];
    if let Some(gcp) = ctx.gcp
        && let Ok(text) = std::fs::read_to_string(gcp.operator_credentials_file())
        && let Ok(file) = serde_json::from_str::<serde_json::Value>(&text)
    {
        for field in ["refresh_token", "client_secret"] {
            if let Some(value) = file[field].as_str() {
                secrets.push(value.to_owned());
            }
        }
    }
    secrets.retain(|s| s.len() >= 8);
    secrets
}
