"""Contract: botocore's container credential provider against the Pod Identity Agent emulator.

Run by tests/contract_boto3_pod_identity.rs, which starts the emulators and the agent on a
loopback port (botocore allows plain http only to loopback, 169.254.170.2, 169.254.170.23 and
fd00:ec2::23) and passes, never printing them:
  AWS_ENDPOINT_URL                      - the gate (STS for GetCallerIdentity)
  PODIAM_AGENT_URL                      - http://127.0.0.1:PORT/v1/credentials
  PODIAM_AGENT_URL_NOT_ALLOWED          - the same agent by a non-loopback address
  PODIAM_TOKEN_FILE_<CASE>              - token files for each case
"""

import os

import boto3
import botocore
import pytest
from botocore.exceptions import CredentialRetrievalError

ACCOUNT = "123456789012"


def caller(monkeypatch, token_case, url_env="PODIAM_AGENT_URL"):
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", os.environ[url_env])
    monkeypatch.setenv(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", os.environ[f"PODIAM_TOKEN_FILE_{token_case}"]
    )
    session = boto3.Session(region_name="us-east-1")
    assert session.get_credentials().method == "container-role"
    return session.client("sts").get_caller_identity()


def test_container_provider_yields_the_associated_role(monkeypatch):
    identity = caller(monkeypatch, "OK")
    assert identity["Account"] == ACCOUNT
    assert identity["Arn"].startswith(
        f"arn:aws:sts::{ACCOUNT}:assumed-role/pod-role/eks-podiam-e2e-reader-pod-"
    )


@pytest.mark.parametrize(
    "case, status, exception",
    [
        ("NO_ASSOCIATION", "404", "ResourceNotFoundException"),
        ("WRONG_AUDIENCE", "400", "InvalidTokenException"),
        ("EXPIRED", "400", "ExpiredTokenException"),
        ("TRUST_WRONG", "400", "AccessDeniedException"),
    ],
)
def test_agent_errors_reach_botocore_with_eks_auth_exception(monkeypatch, case, status, exception):
    with pytest.raises(CredentialRetrievalError) as refusal:
        caller(monkeypatch, case)
    message = str(refusal.value)
    assert f"Received non 200 response {status} from container metadata" in message, message
    assert f"({exception})" in message, message


def test_empty_token_file_is_refused_by_the_agent(monkeypatch):
    with pytest.raises(CredentialRetrievalError) as refusal:
        caller(monkeypatch, "EMPTY")
    assert "Service account token cannot be empty" in str(refusal.value)


def test_botocore_refuses_plain_http_to_a_non_allowed_host(monkeypatch):
    with pytest.raises(ValueError) as refusal:
        caller(monkeypatch, "OK", url_env="PODIAM_AGENT_URL_NOT_ALLOWED")
    assert "Unsupported host" in str(refusal.value)
