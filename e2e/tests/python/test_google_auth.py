"""Tier-2 contract: google-auth's own credential flows against the strict GCP emulators.

Run by tests/contract_google_auth.rs, which starts the emulators and passes (never prints):
  GCE_METADATA_HOST, GCE_METADATA_IP      - the metadata server (static resolver: this process
                                           is pod default/gcs-pod as KSA gke-service-account)
  PODIAM_GCS_URL                           - the Cloud Storage front
  PODIAM_CONFIG_<CASE>                     - external_account files (token files beside them)
  PODIAM_PHASE                             - "bound" or "unbound" (the GSA's binding removed)
"""

import json
import os

import google.auth
import google.auth.exceptions
import pytest
import requests
from google.auth import compute_engine, identity_pool
from google.auth.transport.requests import AuthorizedSession, Request

GSA = "gke-service-account@my-project.iam.gserviceaccount.com"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
UNBOUND = os.environ["PODIAM_PHASE"] == "unbound"
bound_only = pytest.mark.skipif(UNBOUND, reason="needs the Workload Identity binding")
unbound_only = pytest.mark.skipif(not UNBOUND, reason="needs the binding removed")


def metadata(path, **headers):
    return requests.get(
        f"http://{os.environ['GCE_METADATA_HOST']}/computeMetadata/v1/{path}",
        headers=headers,
        timeout=10,
    )


def gcs(credentials):
    return AuthorizedSession(credentials), os.environ["PODIAM_GCS_URL"]


def assert_reads_but_cannot_write(credentials):
    session, base = gcs(credentials)
    listed = session.get(f"{base}/storage/v1/b/my-bucket/o")
    assert listed.status_code == 200, listed.text
    assert [item["name"] for item in listed.json()["items"]] == ["hello.txt"]
    media = session.get(f"{base}/storage/v1/b/my-bucket/o/hello.txt", params={"alt": "media"})
    assert media.status_code == 200
    assert media.text == "hello from podiam"
    write = session.post(
        f"{base}/upload/storage/v1/b/my-bucket/o",
        params={"uploadType": "media", "name": "x.txt"},
        data=b"nope",
    )
    assert write.status_code == 403, write.text
    error = write.json()["error"]
    assert error["code"] == 403
    assert error["errors"][0]["reason"] == "forbidden"
    assert "storage.objects.create" in error["message"]


# --- external_account (workload identity federation with a file-sourced OIDC token) ---


@bound_only
def test_external_account_via_adc_impersonates_the_bound_gsa(monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", os.environ["PODIAM_CONFIG_OK"])
    # Keeps default() from asking Cloud Resource Manager for the project.
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    credentials, project = google.auth.default(scopes=SCOPES)
    assert project == "my-project"
    assert credentials.service_account_email == GSA
    credentials.refresh(Request())
    assert credentials.token and credentials.valid
    assert_reads_but_cannot_write(credentials)


def refresh_error(case, expected=google.auth.exceptions.OAuthError):
    """The exception a refresh with PODIAM_CONFIG_<case> raises (STS: OAuthError; IAM
    Credentials: RefreshError), args = (summary, response body)."""
    # from_file, unlike load_credentials_from_file, does not look up the project (a refresh).
    credentials = identity_pool.Credentials.from_file(
        os.environ[f"PODIAM_CONFIG_{case}"], scopes=SCOPES
    )
    with pytest.raises(expected) as refusal:
        credentials.refresh(Request())
    return refusal.value


@bound_only
def test_wrong_audience_is_invalid_grant():
    error = refresh_error("WRONG_AUDIENCE")
    body = json.loads(error.args[1])
    assert body["error"] == "invalid_grant"
    assert "does not match the expected audience" in body["error_description"]


@bound_only
def test_unknown_pool_is_invalid_target():
    body = json.loads(refresh_error("UNKNOWN_POOL").args[1])
    assert body["error"] == "invalid_target"


@bound_only
def test_malformed_audience_is_invalid_request():
    body = json.loads(refresh_error("MALFORMED_AUDIENCE").args[1])
    assert body["error"] == "invalid_request"
    assert body["error_description"].startswith('Invalid value for "audience"')


@bound_only
def test_expired_token_is_invalid_grant():
    body = json.loads(refresh_error("EXPIRED").args[1])
    assert body["error"] == "invalid_grant"
    assert "expired" in body["error_description"]


@bound_only
def test_tampered_token_is_invalid_grant():
    body = json.loads(refresh_error("TAMPERED").args[1])
    assert body["error"] == "invalid_grant"
    assert "signature" in body["error_description"]


@bound_only
def test_gsa_without_binding_is_permission_denied():
    error = refresh_error("UNBOUND_GSA", google.auth.exceptions.RefreshError)
    assert error.args[0] == "Unable to acquire impersonated credentials"
    body = json.loads(error.args[1])["error"]
    assert body["code"] == 403
    assert body["status"] == "PERMISSION_DENIED"
    assert body["details"][0]["reason"] == "IAM_PERMISSION_DENIED"
    assert body["message"] == (
        "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
    )


# --- GKE metadata server ---


def test_missing_flavor_header_is_refused_with_gkes_text():
    answer = metadata("instance/service-accounts/default/email")
    assert answer.status_code == 403
    assert answer.text == 'Missing required header "Metadata-Flavor": "Google"'


def test_email_comes_from_the_annotation_even_without_binding():
    answer = metadata("instance/service-accounts/default/email", **{"Metadata-Flavor": "Google"})
    assert answer.status_code == 200
    assert answer.headers["Metadata-Flavor"] == "Google"
    assert answer.text == GSA


def test_identity_needs_an_audience():
    answer = metadata("instance/service-accounts/default/identity", **{"Metadata-Flavor": "Google"})
    assert answer.status_code == 400


@bound_only
def test_compute_credentials_via_adc(monkeypatch):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    credentials, project = google.auth.default()
    assert isinstance(credentials, compute_engine.Credentials)
    assert project == "my-project"
    credentials.refresh(Request())
    assert credentials.service_account_email == GSA
    assert credentials.token and credentials.valid
    assert_reads_but_cannot_write(credentials)
    identity = metadata(
        "instance/service-accounts/default/identity?audience=https://example.com",
        **{"Metadata-Flavor": "Google"},
    )
    assert identity.status_code == 200
    assert identity.text.count(".") == 2


@unbound_only
def test_unbound_gsa_token_is_refused_with_gkes_text(monkeypatch):
    answer = metadata("instance/service-accounts/default/token", **{"Metadata-Flavor": "Google"})
    assert answer.status_code == 403
    assert answer.text == (
        "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
    )
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    credentials, _ = google.auth.default()
    with pytest.raises(google.auth.exceptions.RefreshError) as refusal:
        credentials.refresh(Request())
    assert "iam.serviceAccounts.getAccessToken" in str(refusal.value)
