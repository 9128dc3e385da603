"""Contract: azure-identity's ClientSecretCredential and plain `requests` calls to Microsoft
Graph (what `az ad app federated-credential` sends) against the Entra and Graph emulators.

Run by tests/contract_azure_graph.rs, which starts the emulators and passes (never prints):
  AZURE_AUTHORITY_HOST, REQUESTS_CA_BUNDLE       - the Entra emulator and its CA
  PODIAM_TENANT_ID                               - the tenant
  PODIAM_OPERATOR_CLIENT_ID, PODIAM_OPERATOR_SECRET - the operator principal
  PODIAM_GRAPH_ENDPOINT                          - https://127.0.0.1:PORT
  PODIAM_CLIENT_ID                               - the application to federate
  PODIAM_ISSUER                                  - the cluster issuer to trust
"""

import base64
import json
import os

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
AUDIENCE = "api://AzureADTokenExchange"


def claims_of(access_token):
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def operator(secret=None):
    # MSAL validates unknown authorities at login.microsoftonline.com; the documented switch
    # for private authorities (Azure Stack, emulators) turns that off.
    return ClientSecretCredential(
        tenant_id=os.environ["PODIAM_TENANT_ID"],
        client_id=os.environ["PODIAM_OPERATOR_CLIENT_ID"],
        client_secret=secret or os.environ["PODIAM_OPERATOR_SECRET"],
        disable_instance_discovery=True,
    )


def graph(method, path, token, **kwargs):
    return requests.request(
        method,
        os.environ["PODIAM_GRAPH_ENDPOINT"] + "/v1.0" + path,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        **kwargs,
    )


@pytest.fixture(scope="module")
def token():
    return operator().get_token(GRAPH_SCOPE).token


@pytest.fixture(scope="module")
def application(token):
    response = graph(
        "GET",
        "/applications",
        token,
        params={"$filter": f"appId eq '{os.environ['PODIAM_CLIENT_ID']}'"},
    )
    assert response.status_code == 200, response.text
    value = response.json()["value"]
    assert len(value) == 1
    assert value[0]["appId"] == os.environ["PODIAM_CLIENT_ID"]
    assert value[0]["id"] != value[0]["appId"]
    return value[0]["id"]


def test_client_secret_credential_gets_a_graph_token_with_app_roles(token):
    claims = claims_of(token)
    assert claims["appid"] == os.environ["PODIAM_OPERATOR_CLIENT_ID"]
    assert claims["aud"] == "https://graph.microsoft.com"
    assert "Application.ReadWrite.All" in claims["roles"]


def test_a_wrong_secret_is_aadsts7000215():
    with pytest.raises(ClientAuthenticationError) as raised:
        operator("not-the-secret").get_token(GRAPH_SCOPE)
    assert "AADSTS7000215" in str(raised.value)


def test_create_list_get_and_delete_a_federated_credential(token, application):
    path = f"/applications/{application}/federatedIdentityCredentials"
    body = {
        "name": "contract-python",
        "issuer": os.environ["PODIAM_ISSUER"],
        "subject": "system:serviceaccount:contract:python",
        "audiences": [AUDIENCE],
        "description": "from the Python contract",
    }
    created = graph("POST", path, token, json=body)
    assert created.status_code == 201, created.text
    fic = created.json()
    assert fic["name"] == "contract-python" and fic["id"]
    assert fic["@odata.context"].endswith("/federatedIdentityCredentials/$entity")

    listed = graph("GET", path, token).json()["value"]
    assert [c["name"] for c in listed].count("contract-python") == 1

    by_name = graph("GET", f"{path}/contract-python", token)
    by_id = graph("GET", f"{path}/{fic['id']}", token)
    assert by_name.status_code == by_id.status_code == 200
    assert by_name.json()["subject"] == by_id.json()["subject"] == body["subject"]

    again = graph("POST", path, token, json=body)
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "Request_MultipleObjectsWithSameKeyValue"
    assert error["message"] == "FederatedIdentityCredential with name contract-python already exists."
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}

    same_pair = graph("POST", path, token, json={**body, "name": "other-name"})
    assert same_pair.status_code == 400
    assert same_pair.json()["error"]["code"] == "InvalidFederatedIdentityCredentialValue"

    patched = graph("PATCH", f"{path}/{fic['id']}", token, json={"subject": "system:serviceaccount:contract:patched"})
    assert patched.status_code == 204
    assert graph("GET", f"{path}/{fic['id']}", token).json()["subject"].endswith(":patched")

    assert graph("DELETE", f"{path}/{fic['id']}", token).status_code == 204
    gone = graph("GET", f"{path}/{fic['id']}", token)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "Request_ResourceNotFound"


def test_graph_refuses_missing_tokens_and_two_audiences(token, application):
    path = f"/applications/{application}/federatedIdentityCredentials"
    anonymous = requests.get(os.environ["PODIAM_GRAPH_ENDPOINT"] + "/v1.0" + path, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"
    two = graph(
        "POST",
        path,
        token,
        json={
            "name": "two-audiences",
            "issuer": os.environ["PODIAM_ISSUER"],
            "subject": "system:serviceaccount:contract:two",
            "audiences": [AUDIENCE, "other"],
        },
    )
    assert two.status_code == 400
    assert two.json()["error"]["code"] == "Request_BadRequest"
