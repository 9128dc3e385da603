"""Tier-2 contract: google-auth's application default credentials (an authorized_user file, as
`gcloud auth application-default login` writes it) against the emulated OAuth token endpoint,
then the IAM API's service-account policy methods through google-auth's AuthorizedSession.

Run by tests/contract_google_iam_policy.rs, which starts the emulators and passes (never prints):
  GOOGLE_APPLICATION_CREDENTIALS  - the project owner's authorized_user file (token_uri: emulator)
  PODIAM_EDITOR_ADC               - roles/editor on the project (may read policies, not set them)
  PODIAM_STRANGER_ADC             - no role at all
  PODIAM_IAM_URL                  - the IAM API base URL
  PODIAM_TOKEN_URI                - the emulated OAuth token endpoint (the files' token_uri)
google-auth pins Google's token endpoint for authorized_user files (`from_authorized_user_info`
ignores the file's token_uri), so the tests point it at the emulator with `with_token_uri`;
google-cloud-auth (the plugin's) honours the file's token_uri itself.
The tests run in file order: the first reads the setup's policy before others change it.
"""

import json
import os

import google.auth
import google.auth.exceptions
import pytest
import requests
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import credentials as user_credentials

GSA = "gke-service-account@my-project.iam.gserviceaccount.com"
ROLE = "roles/iam.workloadIdentityUser"
MEMBER = "serviceAccount:my-project.svc.id.goog[default/gke-service-account]"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
IAM = os.environ["PODIAM_IAM_URL"]
TOKEN_URI = os.environ["PODIAM_TOKEN_URI"]
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
CONCURRENT = (
    "There were concurrent policy changes. "
    "Please retry the whole read-modify-write with exponential backoff."
)


def url(email, method):
    return f"{IAM}/v1/projects/-/serviceAccounts/{email}:{method}"


def session_from(path=None):
    if path is None:
        credentials, _ = google.auth.default(scopes=SCOPES)
    else:
        credentials = user_credentials.Credentials.from_authorized_user_file(path, scopes=SCOPES)
    return AuthorizedSession(credentials.with_token_uri(TOKEN_URI))


def get_policy(session, email=GSA):
    return session.post(url(email, "getIamPolicy"), json={"options": {"requestedPolicyVersion": 3}})


def error_of(response):
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "status"}, error
    assert error["code"] == response.status_code
    return error


def test_adc_finds_the_authorized_user_file_and_refreshes_with_its_refresh_token():
    credentials, _ = google.auth.default(scopes=SCOPES)
    assert isinstance(credentials, user_credentials.Credentials)
    with open(os.environ["GOOGLE_APPLICATION_CREDENTIALS"]) as f:
        assert json.load(f)["token_uri"] == TOKEN_URI
    assert credentials.token_uri == GOOGLE_TOKEN_URI, "google-auth pins Google's endpoint"
    credentials = credentials.with_token_uri(TOKEN_URI)
    credentials.refresh(Request())
    assert credentials.token and credentials.valid


def test_get_policy_returns_bindings_and_an_etag():
    response = get_policy(session_from())
    assert response.status_code == 200, response.text
    policy = response.json()
    assert policy["etag"]
    assert policy["bindings"] == [
        {"role": "roles/iam.serviceAccountTokenCreator", "members": ["user:release-bot@example.com"]}
    ]


def test_read_modify_write_adds_a_member_and_changes_the_etag():
    session = session_from()
    policy = get_policy(session).json()
    policy.setdefault("bindings", []).append({"role": ROLE, "members": [MEMBER]})
    written = session.post(url(GSA, "setIamPolicy"), json={"policy": policy})
    assert written.status_code == 200, written.text
    assert written.json()["etag"] != policy["etag"]
    again = get_policy(session).json()
    assert {"role": ROLE, "members": [MEMBER]} in again["bindings"]
    assert again["etag"] == written.json()["etag"]


def test_a_stale_etag_is_409_aborted():
    session = session_from()
    first = get_policy(session).json()
    ok = session.post(url(GSA, "setIamPolicy"), json={"policy": first})
    assert ok.status_code == 200, ok.text
    stale = session.post(url(GSA, "setIamPolicy"), json={"policy": first})
    assert stale.status_code == 409, stale.text
    error = error_of(stale)
    assert error["status"] == "ABORTED"
    assert error["message"] == CONCURRENT


def test_an_unknown_account_is_404_for_the_owner():
    response = get_policy(session_from(), "missing-account@my-project.iam.gserviceaccount.com")
    assert response.status_code == 404, response.text
    assert error_of(response)["status"] == "NOT_FOUND"


def test_a_caller_without_a_role_is_403_even_for_an_unknown_account():
    session = session_from(os.environ["PODIAM_STRANGER_ADC"])
    for email in (GSA, "missing-account@my-project.iam.gserviceaccount.com"):
        response = get_policy(session, email)
        assert response.status_code == 403, response.text
        error = error_of(response)
        assert error["status"] == "PERMISSION_DENIED"
        assert error["message"] == (
            "Permission 'iam.serviceAccounts.getIamPolicy' denied on resource (or it may not exist)."
        )


def test_an_editor_reads_but_cannot_set():
    session = session_from(os.environ["PODIAM_EDITOR_ADC"])
    policy = get_policy(session)
    assert policy.status_code == 200, policy.text
    denied = session.post(url(GSA, "setIamPolicy"), json={"policy": policy.json()})
    assert denied.status_code == 403, denied.text
    assert "iam.serviceAccounts.setIamPolicy" in error_of(denied)["message"]


def test_a_member_of_a_pool_that_does_not_exist_is_invalid():
    session = session_from()
    policy = get_policy(session).json()
    policy.setdefault("bindings", []).append(
        {"role": ROLE, "members": ["serviceAccount:other-project.svc.id.goog[default/x]"]}
    )
    response = session.post(url(GSA, "setIamPolicy"), json={"policy": policy})
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["status"] == "INVALID_ARGUMENT"
    assert "Identity Pool does not exist (other-project.svc.id.goog)" in error["message"]


def test_no_token_is_401():
    response = requests.post(url(GSA, "getIamPolicy"), json={}, timeout=10)
    assert response.status_code == 401
    assert error_of(response)["status"] == "UNAUTHENTICATED"


def test_a_wrong_refresh_token_is_invalid_grant():
    with open(os.environ["GOOGLE_APPLICATION_CREDENTIALS"]) as f:
        info = json.load(f)
    info["refresh_token"] = "1//not-issued-here"
    credentials = user_credentials.Credentials.from_authorized_user_info(info, scopes=SCOPES)
    credentials = credentials.with_token_uri(TOKEN_URI)
    with pytest.raises(google.auth.exceptions.RefreshError, match="invalid_grant"):
        credentials.refresh(Request())
