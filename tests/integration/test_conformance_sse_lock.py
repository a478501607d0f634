"""Object Lock behaviours that ceph/s3-tests (boto3 flavour) checks and rs3gw once answered differently.

Each test names the s3-tests case that found the gap; the suite's own code is not used. The SSE-C,
SSE-S3/SSE-KMS and other Object Lock cases of that suite already matched AWS (see the report of
this pass), so only the gap found is pinned here.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from object_lock_helpers import ahead, err, lock_bucket, wait_until


def test_governance_to_compliance_needs_bypass(s3: Any) -> None:
    """test_object_lock_changing_mode_from_governance_without_bypass and ..._with_bypass: changing
    an unexpired GOVERNANCE retention to COMPLIANCE alters the lock settings, which S3 allows only
    with x-amz-bypass-governance-retention (403 AccessDenied without it), even for the same date."""
    with lock_bucket(s3) as b:
        until = ahead(4)  # a few seconds: lock_bucket's cleanup must outlive the COMPLIANCE date
        vid = s3.put_object(
            Bucket=b, Key="k", Body=b"abc", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until
        )["VersionId"]
        for later in (until, ahead(5)):
            with pytest.raises(ClientError) as e:
                s3.put_object_retention(
                    Bucket=b,
                    Key="k",
                    VersionId=vid,
                    Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later},
                )
            assert err(e) == ("AccessDenied", 403)
        assert s3.get_object_retention(Bucket=b, Key="k", VersionId=vid)["Retention"]["Mode"] == "GOVERNANCE"
        s3.put_object_retention(
            Bucket=b,
            Key="k",
            VersionId=vid,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until},
            BypassGovernanceRetention=True,
        )
        assert s3.head_object(Bucket=b, Key="k", VersionId=vid)["ObjectLockMode"] == "COMPLIANCE"
        wait_until(until)
