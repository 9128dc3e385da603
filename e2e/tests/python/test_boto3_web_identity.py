"""Tier-2 contract: boto3's own web-identity credential provider against the strict gate.

Run by tests/contract_boto3.rs, which starts the emulators and passes (never prints):
  AWS_ENDPOINT_URL, AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE  - for boto3's provider chain
  PODIAM_TOKEN_<CASE>                                           - tokens for negative cases
"""

import os

import boto3
import botocore
import pytest
from botocore.config import Config

ACCOUNT = "123456789012"


def anonymous_sts():
    return boto3.client(
        "sts", region_name="us-east-1", config=Config(signature_version=botocore.UNSIGNED)
    )


def refused(token_env):
    """(code, message) of an AssumeRoleWithWebIdentity with the token in $token_env."""
    with pytest.raises(botocore.exceptions.ClientError) as refusal:
        anonymous_sts().assume_role_with_web_identity(
            RoleArn=os.environ["AWS_ROLE_ARN"],
            RoleSessionName="boto3-contract",
            WebIdentityToken=os.environ[token_env],
        )
    error = refusal.value.response["Error"]
    return error["Code"], error["Message"]


def test_provider_chain_yields_assumed_role():
    # No keys anywhere: boto3 must find AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE itself.
    session = boto3.Session(region_name="us-east-1")
    identity = session.client("sts").get_caller_identity()
    assert identity["Account"] == ACCOUNT
    assert identity["Arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/my-pod-role/")


def test_role_credentials_are_held_to_the_role_policy_on_s3():
    s3 = boto3.Session(region_name="us-east-1").client(
        "s3", config=Config(s3={"addressing_style": "path"})
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="my-bucket")["Contents"]]
    assert keys == ["hello.txt"]
    with pytest.raises(botocore.exceptions.ClientError) as refusal:
        s3.put_object(Bucket="my-bucket", Key="written-by-boto3.txt", Body=b"no")
    assert refusal.value.response["Error"]["Code"] == "AccessDenied"


def test_other_namespace_is_access_denied():
    assert refused("PODIAM_TOKEN_OTHER_NAMESPACE") == (
        "AccessDenied",
        "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    )


def test_wrong_audience():
    assert refused("PODIAM_TOKEN_WRONG_AUDIENCE") == (
        "InvalidIdentityToken",
        "Incorrect token audience",
    )


def test_unregistered_issuer():
    code, message = refused("PODIAM_TOKEN_UNREGISTERED_ISSUER")
    assert code == "InvalidIdentityToken"
    assert message == (
        "No OpenIDConnect provider found in your account for "
        + os.environ["PODIAM_UNREGISTERED_ISSUER"]
    )


def test_expired():
    code, message = refused("PODIAM_TOKEN_EXPIRED")
    assert code == "ExpiredTokenException"
    assert message.startswith("Token expired: current date/time ")


def test_tampered_signature():
    assert refused("PODIAM_TOKEN_TAMPERED")[0] == "InvalidIdentityToken"


def test_garbage():
    assert refused("PODIAM_TOKEN_GARBAGE")[0] == "InvalidIdentityToken"
