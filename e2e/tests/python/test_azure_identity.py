"""Contract: azure-identity and azure-storage-blob against the strict Entra and Blob emulators.

Run by tests/contract_azure_identity.rs, which starts an OIDC issuer and the Azure emulators,
mints the assertions and passes (never prints) them:
  AZURE_AUTHORITY_HOST, REQUESTS_CA_BUNDLE                 - the Entra emulator and its CA
  PODIAM_TENANT_ID, PODIAM_CLIENT_ID, PODIAM_*_CLIENT_ID   - the applications of the setup
  PODIAM_TOKEN_FILE                                        - a valid projected-token file
  PODIAM_ASSERTION_<CASE>                                  - assertions for the refusals
  PODIAM_BLOB_ACCOUNT_URL                                  - https://127.0.0.1:PORT/ACCOUNT
"""

import base64
import json
import os

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientAssertionCredential, WorkloadIdentityCredential
from azure.storage.blob import ContainerClient

STORAGE_SCOPE = "https://storage.azure.com/.default"


def claims_of(access_token):
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def assertion_credential(case, client_env="PODIAM_CLIENT_ID", tenant=None):
    # A callable, so the assertion never sits in a file.
    return ClientAssertionCredential(
        tenant_id=tenant or os.environ["PODIAM_TENANT_ID"],
        client_id=os.environ[client_env],
        func=lambda: os.environ[f"PODIAM_ASSERTION_{case}"],
    )


def refusal(credential):
    with pytest.raises(ClientAuthenticationError) as raised:
        credential.get_token(STORAGE_SCOPE)
    return str(raised.value)


def test_workload_identity_credential_gets_a_token_naming_the_app():
    credential = WorkloadIdentityCredential(
        tenant_id=os.environ["PODIAM_TENANT_ID"],
        client_id=os.environ["PODIAM_CLIENT_ID"],
        token_file_path=os.environ["PODIAM_TOKEN_FILE"],
    )
    token = credential.get_token(STORAGE_SCOPE)
    claims = claims_of(token.token)
    assert claims["appid"] == os.environ["PODIAM_CLIENT_ID"]
    assert claims["azp"] == os.environ["PODIAM_CLIENT_ID"]
    assert claims["tid"] == os.environ["PODIAM_TENANT_ID"]
    assert claims["aud"] == "https://storage.azure.com"
    assert claims["iss"] == f"https://sts.windows.net/{os.environ['PODIAM_TENANT_ID']}/"
    assert claims["oid"] and claims["oid"] != claims["appid"]
    assert token.expires_on > claims["iat"]


def test_client_assertion_credential_gets_a_token():
    token = assertion_credential("VALID").get_token(STORAGE_SCOPE)
    assert claims_of(token.token)["appid"] == os.environ["PODIAM_CLIENT_ID"]


def test_wrong_audience_is_70021_with_issuer_subject_and_audience():
    message = refusal(assertion_credential("WRONG_AUDIENCE"))
    assert "AADSTS70021:" in message
    assert "Assertion Issuer: '" in message
    assert "Assertion Subject: 'system:serviceaccount:default:aks-service-account'" in message
    assert "Assertion Audience: 'sts.amazonaws.com'" in message


def test_issuer_with_trailing_slash_is_700211():
    message = refusal(assertion_credential("VALID", client_env="PODIAM_SLASH_CLIENT_ID"))
    assert "AADSTS700211:" in message
    assert "presented assertion issuer" in message


def test_other_subject_is_700213():
    message = refusal(assertion_credential("OTHER_SUBJECT"))
    assert "AADSTS700213:" in message
    assert "system:serviceaccount:default:someone-else" in message


def test_expired_assertion_is_700024():
    message = refusal(assertion_credential("EXPIRED"))
    assert "AADSTS700024:" in message
    assert "not within its valid time range" in message


def test_unreachable_issuer_is_90061():
    message = refusal(assertion_credential("UNREACHABLE_ISSUER", client_env="PODIAM_UNREACHABLE_CLIENT_ID"))
    assert "AADSTS90061:" in message


def test_unknown_application_is_700016():
    message = refusal(assertion_credential("VALID", client_env="PODIAM_UNKNOWN_CLIENT_ID"))
    assert "AADSTS700016:" in message


def test_unknown_tenant_is_90002():
    message = refusal(assertion_credential("VALID", tenant="00000000-0000-0000-0000-000000000000"))
    assert "AADSTS90002:" in message


def container_client(case, client_env):
    return ContainerClient(
        account_url=os.environ["PODIAM_BLOB_ACCOUNT_URL"],
        container_name="mycontainer",
        credential=assertion_credential(case, client_env=client_env),
    )


def test_reader_lists_and_reads_the_container():
    client = container_client("VALID", "PODIAM_CLIENT_ID")
    assert [blob.name for blob in client.list_blobs()] == ["hello.txt"]
    assert client.download_blob("hello.txt").readall() == b"hello from podiam"
    with pytest.raises(HttpResponseError) as raised:
        client.upload_blob("new.txt", b"x")
    assert raised.value.status_code == 403
    assert raised.value.error_code == "AuthorizationPermissionMismatch"


def test_application_without_role_gets_permission_mismatch():
    client = container_client("NO_ROLE", "PODIAM_NO_ROLE_CLIENT_ID")
    with pytest.raises(HttpResponseError) as raised:
        list(client.list_blobs())
    assert raised.value.status_code == 403
    assert raised.value.error_code == "AuthorizationPermissionMismatch"
