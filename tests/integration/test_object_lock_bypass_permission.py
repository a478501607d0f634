"""x-amz-bypass-governance-retention is honoured only for the bucket owner or a caller a bucket policy
grants s3:BypassGovernanceRetention; anyone else meets the GOVERNANCE retention (AccessDenied)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from object_lock_helpers import ahead, err, lock_bucket

from conftest import USER2, Server


def _policy(bucket: str, actions: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::000000000000:user/{USER2[0]}"},
                    "Action": actions,
                    "Resource": [f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
    )


def _governed(s3: Any, bucket: str, key: str) -> str:
    resp = s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=b"held",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=ahead(3600),
        ChecksumAlgorithm="CRC32",
    )
    return str(resp["VersionId"])


def test_bypass_needs_owner_or_policy_grant(server: Server) -> None:
    s3 = server.client()
    other = server.client(USER2[1], USER2[2])
    with lock_bucket(s3, "bypassperm") as bucket:
        v1 = _governed(s3, bucket, "a")
        v2 = _governed(s3, bucket, "b")
        v3 = _governed(s3, bucket, "c")
        # The second user may delete versions, but has no bypass permission: the header is ignored.
        s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, ["s3:DeleteObjectVersion"]))
        with pytest.raises(ClientError) as e:
            other.delete_object(Bucket=bucket, Key="a", VersionId=v1, BypassGovernanceRetention=True)
        assert err(e) == ("AccessDenied", 403)
        res = other.delete_objects(
            Bucket=bucket,
            Delete={"Objects": [{"Key": "b", "VersionId": v2}]},
            BypassGovernanceRetention=True,
        )
        assert [x["Code"] for x in res.get("Errors", [])] == ["AccessDenied"]
        # Granting s3:BypassGovernanceRetention makes the same requests succeed.
        s3.put_bucket_policy(
            Bucket=bucket,
            Policy=_policy(bucket, ["s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"]),
        )
        other.delete_object(Bucket=bucket, Key="a", VersionId=v1, BypassGovernanceRetention=True)
        res = other.delete_objects(
            Bucket=bucket,
            Delete={"Objects": [{"Key": "b", "VersionId": v2}]},
            BypassGovernanceRetention=True,
        )
        assert not res.get("Errors") and [x["Key"] for x in res["Deleted"]] == ["b"]
        # Without the header even the grant does not remove a governed version.
        with pytest.raises(ClientError) as e:
            other.delete_object(Bucket=bucket, Key="c", VersionId=v3)
        assert err(e) == ("AccessDenied", 403)
        # The owner's bypass works with no policy statement naming it.
        s3.delete_bucket_policy(Bucket=bucket)
        s3.delete_object(Bucket=bucket, Key="c", VersionId=v3, BypassGovernanceRetention=True)
        versions = s3.list_object_versions(Bucket=bucket).get("Versions", [])
        assert versions == []


def test_policy_deny_of_bypass_binds_the_owner(server: Server) -> None:
    s3 = server.client()
    with lock_bucket(s3, "bypassdeny") as bucket:
        v1 = _governed(s3, bucket, "a")
        deny = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:BypassGovernanceRetention",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                }
            ],
        }
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny))
        with pytest.raises(ClientError) as e:
            s3.delete_object(Bucket=bucket, Key="a", VersionId=v1, BypassGovernanceRetention=True)
        assert err(e) == ("AccessDenied", 403)
        s3.delete_bucket_policy(Bucket=bucket)
