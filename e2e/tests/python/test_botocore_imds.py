"""Contract: botocore's EC2 instance metadata credentials against the node IMDS emulator.

Environment (set by e2e/tests/contract_imds.rs):
  AWS_EC2_METADATA_SERVICE_ENDPOINT  - a node whose instance role (node-role) trusts EC2
  PODIAM_IMDS_UNTRUSTED              - a node whose role trusts only pods.eks.amazonaws.com
  PODIAM_IMDS_NO_PROFILE             - a node without instance profile
  PODIAM_IMDS_HOP_ONE                - node-role, but the pod sits behind hop limit 1
  PODIAM_STS_ENDPOINT                - the STS gate, for GetCallerIdentity
  PODIAM_EXPECTED_ARN_PREFIX         - arn:aws:sts::ACCOUNT:assumed-role/node-role/i-
"""

import os

import botocore.session
from botocore.utils import InstanceMetadataFetcher


def fetcher(endpoint):
    return InstanceMetadataFetcher(
        timeout=1,
        num_attempts=1,
        config={"ec2_metadata_service_endpoint": endpoint},
    )


def test_the_provider_chain_falls_back_to_the_instance_role():
    session = botocore.session.Session()
    credentials = session.get_credentials()
    assert credentials is not None, "no credentials from the chain"
    assert credentials.method == "iam-role"
    sts = session.create_client("sts", endpoint_url=os.environ["PODIAM_STS_ENDPOINT"])
    arn = sts.get_caller_identity()["Arn"]
    assert arn.startswith(os.environ["PODIAM_EXPECTED_ARN_PREFIX"]), arn


def test_the_fetcher_reads_the_role_and_its_credentials():
    credentials = fetcher(os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"]).retrieve_iam_role_credentials()
    assert credentials.get("role_name") == "node-role"
    assert {"access_key", "secret_key", "token", "expiry_time"} <= set(credentials)


def test_a_role_that_does_not_trust_ec2_gives_nothing():
    assert fetcher(os.environ["PODIAM_IMDS_UNTRUSTED"]).retrieve_iam_role_credentials() == {}


def test_a_node_without_instance_profile_gives_nothing():
    assert fetcher(os.environ["PODIAM_IMDS_NO_PROFILE"]).retrieve_iam_role_credentials() == {}


def test_hop_limit_one_keeps_the_pod_from_the_role():
    # The token request times out; the IMDSv1 retry is refused (tokens required).
    assert fetcher(os.environ["PODIAM_IMDS_HOP_ONE"]).retrieve_iam_role_credentials() == {}
