"""Contract: azure-identity's ManagedIdentityCredential against the node's Azure IMDS emulator.

Environment (set by e2e/tests/contract_imds.rs):
  AZURE_POD_IDENTITY_AUTHORITY_HOST  - IMDS of a node whose managed identity reads the container
  PODIAM_IMDS_WITHOUT_IDENTITY       - IMDS of a node without identity
  PODIAM_NODE_CLIENT_ID              - the node identity's client id
  PODIAM_BLOB_ACCOUNT_URL, REQUESTS_CA_BUNDLE - the Blob front (HTTPS) and its CA
"""

import os
import time

import pytest
from azure.identity import CredentialUnavailableError, ManagedIdentityCredential
from azure.storage.blob import ContainerClient

SCOPE = "https://storage.azure.com/.default"


def test_the_node_identity_reads_the_container_it_has_a_role_on():
    credential = ManagedIdentityCredential()
    token = credential.get_token(SCOPE)
    assert token.token
    assert token.expires_on > time.time() + 3000
    client = ContainerClient(
        account_url=os.environ["PODIAM_BLOB_ACCOUNT_URL"],
        container_name="mycontainer",
        credential=credential,
    )
    assert [blob.name for blob in client.list_blobs()] == ["hello.txt"]


def test_the_client_id_selects_the_node_identity():
    credential = ManagedIdentityCredential(client_id=os.environ["PODIAM_NODE_CLIENT_ID"])
    assert credential.get_token(SCOPE).token


def test_another_client_id_is_unavailable():
    credential = ManagedIdentityCredential(client_id="00000000-0000-4000-8000-000000000000")
    with pytest.raises(CredentialUnavailableError) as refused:
        credential.get_token(SCOPE)
    assert "Identity not found" in str(refused.value)


def test_a_node_without_identity_is_unavailable(monkeypatch):
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", os.environ["PODIAM_IMDS_WITHOUT_IDENTITY"])
    with pytest.raises(CredentialUnavailableError) as refused:
        ManagedIdentityCredential().get_token(SCOPE)
    assert "Identity not found" in str(refused.value)
