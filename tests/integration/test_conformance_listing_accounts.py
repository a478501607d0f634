"""What ceph/s3-tests (boto3 flavour) checks of buckets, listings and accounts, against a real server.

Each test names the s3-tests cases that motivated it. The suite's setup and teardown
(``nuke_prefixed_buckets``) list versions page by page with empty markers and bulk-delete with
governance bypass, and its s3tests.conf pins each user's canonical id and display name, which
the owner checks compare against: both are exercised here as the suite does them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import USER2, Server, fresh_bucket, start_server
from rs3gw.config import ConfigError, load_settings, settings_from_json, settings_to_json

# The ids and names of ceph/s3-tests' sample s3tests.conf (main, alt, tenant).
MAIN_ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
ALT = ("alt", "altaccesskey01", "alt-secret-key-0123456789")
ALT_ID = "56789abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234"
TENANT = ("tenant", "tenantaccesskey01", "tenant-secret-key-0123456789")
TENANT_ID = "testx$tenanteduser"

CONFIG = f"""
admin_id = "{MAIN_ID}"
admin_display_name = "youruseridhere"

[[users]]
name = "{ALT[0]}"
access_key = "{ALT[1]}"
secret_key = "{ALT[2]}"
id = "{ALT_ID}"
display_name = "john.doe"

[[users]]
name = "{TENANT[0]}"
access_key = "{TENANT[1]}"
secret_key = "{TENANT[2]}"
id = "{TENANT_ID}"
display_name = "M. Tester"
"""


def _err(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(ClientError) as exc:
        call()
    r = exc.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def _keys(r: dict[str, Any]) -> list[str]:
    return [o["Key"] for o in r.get("Contents", [])]


def _prefixes(r: dict[str, Any]) -> list[str]:
    return [p["Prefix"] for p in r.get("CommonPrefixes", [])]


def _with_query(client: Any, operation: str, extra: str) -> Any:
    """Append raw query text before signing, as s3-tests does for non-standard parameters."""

    def add(params: dict[str, Any], **_: Any) -> None:
        params["url"] += ("&" if "?" in params["url"] else "?") + extra

    client.meta.events.register(f"before-call.s3.{operation}", add)
    return client


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """A server configured like s3-tests' sample s3tests.conf: three accounts with pinned owners."""
    base = tmp_path_factory.mktemp("pinned")
    (base / "s3tests.toml").write_text(CONFIG)
    srv = start_server(base / "data", "--config", str(base / "s3tests.toml"))
    yield srv, base
    srv.stop()


@pytest.fixture
def keys_bucket(s3: Any) -> Iterator[tuple[str, list[str]]]:
    names = ["bar", "baz", "foo", "quxx"]
    with fresh_bucket(s3, "cf") as b:
        for k in names:
            s3.put_object(Bucket=b, Key=k, Body=k.encode())
        yield b, names


# --------------------------------------------------------------------------- owners and accounts


def _owners_everywhere(srv: Server) -> tuple[dict[str, str], ...]:
    """The owner as ListBuckets, ListObjects, ListObjectsV2 (fetch-owner), ListObjectVersions and
    GetObjectAcl report it, for a fresh bucket of the main account."""
    s3 = srv.client()
    with fresh_bucket(s3, "owner") as b:
        s3.put_object(Bucket=b, Key="k", Body=b"v")
        return (
            s3.list_buckets()["Owner"],
            s3.list_objects(Bucket=b)["Contents"][0]["Owner"],
            s3.list_objects_v2(Bucket=b, FetchOwner=True)["Contents"][0]["Owner"],
            s3.list_object_versions(Bucket=b)["Versions"][0]["Owner"],
            s3.get_object_acl(Bucket=b, Key="k")["Owner"],
            s3.get_bucket_acl(Bucket=b)["Owner"],
        )


def test_pinned_owner_ids_are_reported_everywhere(pinned: tuple[Server, Path]) -> None:
    """s3-tests test_bucket_acl_default, test_object_acl_default, test_bucket_list_return_data,
    test_bucket_list_return_data_versioning, test_versioned_object_acl: owners are compared with
    s3tests.conf's user_id and display_name."""
    srv, _ = pinned
    main = {"ID": MAIN_ID, "DisplayName": "youruseridhere"}
    assert all(o == main for o in _owners_everywhere(srv))
    alt = srv.client(ALT[1], ALT[2])
    tenant = srv.client(TENANT[1], TENANT[2])
    assert alt.list_buckets()["Owner"] == {"ID": ALT_ID, "DisplayName": "john.doe"}
    assert tenant.list_buckets()["Owner"] == {"ID": TENANT_ID, "DisplayName": "M. Tester"}
    # An account without pinned values keeps the derived default.
    second = srv.client(USER2[1], USER2[2]).list_buckets()["Owner"]
    assert second == {"ID": hashlib.sha256(b"rs3gw-account:second").hexdigest(), "DisplayName": "second"}


def test_pinned_ids_isolate_and_grant(pinned: tuple[Server, Path]) -> None:
    """s3-tests test_access_bucket_private_object_private, test_bucket_create_exists_nonowner and
    test_object_copy_not_owned_object_bucket: the alt account is a separate owner, denied by
    default, and a grant to its pinned canonical id lets it in."""
    srv, _ = pinned
    s3, alt = srv.client(), srv.client(ALT[1], ALT[2])
    with fresh_bucket(s3, "grant") as b:
        s3.put_object(Bucket=b, Key="foo", Body=b"x")
        assert _err(lambda: alt.list_objects(Bucket=b)) == (403, "AccessDenied")
        assert _err(lambda: alt.get_object(Bucket=b, Key="foo")) == (403, "AccessDenied")
        assert _err(lambda: alt.create_bucket(Bucket=b)) == (409, "BucketAlreadyExists")
        assert b not in [x["Name"] for x in alt.list_buckets()["Buckets"]]
        acl = s3.get_bucket_acl(Bucket=b)
        grant = {"Grantee": {"ID": ALT_ID, "Type": "CanonicalUser"}, "Permission": "READ"}
        s3.put_bucket_acl(
            Bucket=b, AccessControlPolicy={"Owner": acl["Owner"], "Grants": [*acl["Grants"], grant]}
        )
        grantees = {
            g["Grantee"].get("ID"): g["Grantee"].get("DisplayName")
            for g in s3.get_bucket_acl(Bucket=b)["Grants"]
        }
        assert grantees == {MAIN_ID: "youruseridhere", ALT_ID: "john.doe"}
        assert _keys(alt.list_objects(Bucket=b)) == ["foo"]


def test_pinned_owners_survive_a_restart(tmp_path: Path) -> None:
    """Buckets belong to the pinned id, so the same config finds them again after a restart."""
    (tmp_path / "s3tests.toml").write_text(CONFIG)
    args = ("--config", str(tmp_path / "s3tests.toml"))
    srv = start_server(tmp_path / "data", *args)
    try:
        srv.client(ALT[1], ALT[2]).create_bucket(Bucket="kept-by-alt")
    finally:
        srv.stop()
    again = start_server(tmp_path / "data", *args)
    try:
        alt = again.client(ALT[1], ALT[2])
        assert [x["Name"] for x in alt.list_buckets()["Buckets"]] == ["kept-by-alt"]
        assert alt.get_bucket_acl(Bucket="kept-by-alt")["Owner"] == {"ID": ALT_ID, "DisplayName": "john.doe"}
        assert _err(lambda: again.client().list_objects(Bucket="kept-by-alt")) == (403, "AccessDenied")
    finally:
        again.stop()


def _settings(tmp_path: Path, toml: str, **flags: object) -> Any:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    return load_settings({"access_key": "AKIAPRIMARY1", "secret_key": "primary-secret-1", **flags}, {}, cfg)


def test_users_table_id_and_display_name_validation(tmp_path: Path) -> None:
    user = '[[users]]\nname = "alt"\naccess_key = "altkey01"\nsecret_key = "alt-secret-1"\n'
    s = _settings(tmp_path, user + 'id = "abc$def"\ndisplay_name = "John Doe"\n')
    assert (s.users[1].owner.id, s.users[1].owner.display_name) == ("abc$def", "John Doe")
    assert settings_from_json(settings_to_json(s)).users == s.users  # what --workers N hands over
    s = load_settings(
        {"access_key": "AKIAPRIMARY1", "secret_key": "primary-secret-1"}, {"RS3GW_ADMIN_ID": "e1"}, None
    )
    assert s.primary.owner.id == "e1"
    # The default derivation is unchanged when nothing is pinned.
    s = _settings(tmp_path, user)
    assert s.users[1].owner.id == hashlib.sha256(b"rs3gw-account:alt").hexdigest()
    assert s.users[0].owner.display_name == "admin"
    s = _settings(tmp_path, "", admin_id="main-id", admin_display_name="Main User")
    assert (s.primary.owner.id, s.primary.owner.display_name) == ("main-id", "Main User")
    with pytest.raises(ConfigError, match=r"users\[0\]\.id"):
        _settings(tmp_path, user + 'id = "has space"\n')
    with pytest.raises(ConfigError, match=r"users\[0\]\.display_name"):
        _settings(tmp_path, user + 'display_name = ""\n')
    with pytest.raises(ConfigError, match="duplicate canonical id"):
        _settings(tmp_path, user + 'id = "same"\n', admin_id="same")
    with pytest.raises(ConfigError, match=r"users\[0\]\.email.*unknown key"):
        _settings(tmp_path, user + 'email = "a@b"\n')


# --------------------------------------------------------------------------- ListBuckets


def test_list_buckets_prefix_max_buckets_and_token(server: Server) -> None:
    """AWS's ListBuckets pagination (prefix, max-buckets, continuation-token, bucket-region) and
    s3-tests test_buckets_create_then_list / test_buckets_list_ctime."""
    s3 = server.client()
    tag = f"lb{uuid.uuid4().hex[:8]}"
    names = [f"{tag}-{i}" for i in range(5)]
    for n in names:
        s3.create_bucket(Bucket=n)
    try:
        r = s3.list_buckets(Prefix=tag)
        assert [b["Name"] for b in r["Buckets"]] == names and r["Prefix"] == tag
        assert "ContinuationToken" not in r
        r = s3.list_buckets(Prefix=tag, MaxBuckets=2)
        assert [b["Name"] for b in r["Buckets"]] == names[:2] and r["ContinuationToken"]
        r = s3.list_buckets(Prefix=tag, MaxBuckets=2, ContinuationToken=r["ContinuationToken"])
        assert [b["Name"] for b in r["Buckets"]] == names[2:4]
        pages = s3.get_paginator("list_buckets").paginate(Prefix=tag, PaginationConfig={"PageSize": 2})
        assert [b["Name"] for page in pages for b in page["Buckets"]] == names
        assert [b["Name"] for b in s3.list_buckets(Prefix=tag, BucketRegion="us-east-1")["Buckets"]] == names
        assert s3.list_buckets(Prefix=tag, BucketRegion="eu-west-1")["Buckets"] == []
        assert all(n in [b["Name"] for b in s3.list_buckets()["Buckets"]] for n in names)
        for bad in ("max-buckets=0", "max-buckets=10001", "max-buckets=lots"):
            raw = _with_query(server.client(), "ListBuckets", bad)  # boto3 refuses these itself
            assert _err(raw.list_buckets) == (400, "InvalidArgument")
        assert _err(lambda: s3.list_buckets(ContinuationToken="bogus")) == (400, "InvalidArgument")
        # A token is only good for its own listing: another account's token cannot reveal names.
        other = server.client(USER2[1], USER2[2])
        assert tag not in str(other.list_buckets(Prefix=tag)["Buckets"])
    finally:
        for n in names:
            s3.delete_bucket(Bucket=n)


# --------------------------------------------------------------------------- ListObjects(V2)


def test_listv2_empty_continuation_token(s3: Any, keys_bucket: tuple[str, list[str]]) -> None:
    """s3-tests test_bucket_listv2_continuationtoken_empty: an empty token lists from the start
    and is echoed back."""
    b, names = keys_bucket
    r = s3.list_objects_v2(Bucket=b, ContinuationToken="")
    assert r["ContinuationToken"] == "" and r["IsTruncated"] is False and _keys(r) == names
    r = s3.list_objects_v2(Bucket=b, ContinuationToken="", StartAfter="baz")
    assert _keys(r) == ["foo", "quxx"] and r["StartAfter"] == "baz"
    # A token that is present but not ours is still refused.
    assert _err(lambda: s3.list_objects_v2(Bucket=b, ContinuationToken="nope")) == (400, "InvalidArgument")


def test_list_allow_unordered(server: Server, keys_bucket: tuple[str, list[str]]) -> None:
    """s3-tests test_bucket_list_unordered / test_bucket_listv2_unordered (Ceph's allow-unordered):
    accepted and paginates without overlap; with a delimiter it is InvalidArgument."""
    b, names = keys_bucket
    v1 = _with_query(server.client(), "ListObjects", "allow-unordered=true")
    assert sorted(_keys(v1.list_objects(Bucket=b))) == names
    first = _keys(v1.list_objects(Bucket=b, MaxKeys=2))
    second = _keys(v1.list_objects(Bucket=b, MaxKeys=2, Marker=first[-1]))
    assert len(first) == len(second) == 2 and not set(first) & set(second)
    assert _err(lambda: v1.list_objects(Bucket=b, Delimiter="/")) == (400, "InvalidArgument")
    v2 = _with_query(server.client(), "ListObjectsV2", "allow-unordered=true")
    assert sorted(_keys(v2.list_objects_v2(Bucket=b))) == names
    assert _err(lambda: v2.list_objects_v2(Bucket=b, Delimiter="/")) == (400, "InvalidArgument")


@pytest.mark.parametrize(
    ("delim", "keys", "prefixes"),
    [
        ("a", ["bar", "baz", "cab", "foo"], ["ba", "ca"]),
        ("%", ["b%ar", "b%az", "c%ab", "foo"], ["b%", "c%"]),
        (" ", ["b ar", "b az", "c ab", "foo"], ["b ", "c "]),
        (".", ["b.ar", "b.az", "c.ab", "foo"], ["b.", "c."]),
    ],
)
def test_odd_delimiters(s3: Any, delim: str, keys: list[str], prefixes: list[str]) -> None:
    """s3-tests test_bucket_list(v2)_delimiter_alt / _percentage / _whitespace / _dot."""
    with fresh_bucket(s3, "cf") as b:
        for k in keys:
            s3.put_object(Bucket=b, Key=k, Body=k.encode())
        for call in (s3.list_objects, s3.list_objects_v2):
            r = call(Bucket=b, Delimiter=delim)
            assert r["Delimiter"] == delim and _keys(r) == ["foo"] and _prefixes(r) == prefixes


def test_listing_edge_parameters(server: Server, s3: Any, keys_bucket: tuple[str, list[str]]) -> None:
    """s3-tests test_bucket_list(v2)_delimiter_unreadable / _empty / _none, _maxkeys_zero /
    _none / _invalid, _marker_unreadable / _not_in_list / _after_list, _startafter_*,
    _fetchowner_*, _both_continuationtoken_startafter."""
    b, names = keys_bucket
    for call in (s3.list_objects, s3.list_objects_v2):
        r = call(Bucket=b, Delimiter="\n")
        assert r["Delimiter"] == "\n" and _keys(r) == names and _prefixes(r) == []
        assert "Delimiter" not in call(Bucket=b, Delimiter="") and "Delimiter" not in call(Bucket=b)
        r = call(Bucket=b, MaxKeys=0)
        assert r["IsTruncated"] is False and _keys(r) == []
        assert call(Bucket=b)["MaxKeys"] == 1000
    bad = _with_query(server.client(), "ListObjects", "max-keys=blah")
    assert _err(lambda: bad.list_objects(Bucket=b)) == (400, "InvalidArgument")
    r = s3.list_objects(Bucket=b, Marker="\n")
    assert r["Marker"] == "\n" and _keys(r) == names and r["IsTruncated"] is False
    assert _keys(s3.list_objects(Bucket=b, Marker="blah")) == ["foo", "quxx"]
    assert _keys(s3.list_objects(Bucket=b, Marker="zzz")) == []
    assert _keys(s3.list_objects_v2(Bucket=b, StartAfter="\n")) == names
    assert _keys(s3.list_objects_v2(Bucket=b, StartAfter="blah")) == ["foo", "quxx"]
    assert _keys(s3.list_objects_v2(Bucket=b, StartAfter="zzz")) == []
    assert "Owner" in s3.list_objects_v2(Bucket=b, FetchOwner=True)["Contents"][0]
    assert "Owner" not in s3.list_objects_v2(Bucket=b)["Contents"][0]
    token = s3.list_objects_v2(Bucket=b, StartAfter="bar", MaxKeys=1)["NextContinuationToken"]
    r = s3.list_objects_v2(Bucket=b, StartAfter="bar", ContinuationToken=token)
    assert r["StartAfter"] == "bar" and r["ContinuationToken"] == token and _keys(r) == ["foo", "quxx"]


def test_v1_marker_walk_with_delimiter(s3: Any) -> None:
    """s3-tests test_bucket_list_delimiter_prefix: NextMarker is the last key or common prefix."""
    with fresh_bucket(s3, "cf") as b:
        for k in ["asdf", "boo/bar", "boo/baz/xyzzy", "cquux/thud", "cquux/bla"]:
            s3.put_object(Bucket=b, Key=k, Body=b"x")

        def page(prefix: str, marker: str, n: int) -> tuple[bool, str | None, list[str], list[str]]:
            r = s3.list_objects(Bucket=b, Delimiter="/", Marker=marker, MaxKeys=n, Prefix=prefix)
            return r["IsTruncated"], r.get("NextMarker"), _keys(r), _prefixes(r)

        assert page("", "", 1) == (True, "asdf", ["asdf"], [])
        assert page("", "asdf", 1) == (True, "boo/", [], ["boo/"])
        assert page("", "boo/", 1) == (False, None, [], ["cquux/"])
        assert page("", "", 2) == (True, "boo/", ["asdf"], ["boo/"])
        assert page("boo/", "", 1) == (True, "boo/bar", ["boo/bar"], [])
        assert page("boo/", "boo/bar", 1) == (False, None, [], ["boo/baz/"])


# --------------------------------------------------------------------------- versions and cleanup


def _nuke(s3: Any, bucket: str) -> None:
    """s3-tests' nuke_bucket: version pages of 128 from empty markers, bulk deletes with Quiet and
    BypassGovernanceRetention, then DeleteBucket."""
    key_marker, version_marker, truncated = "", "", True
    while truncated:
        page = s3.list_object_versions(
            Bucket=bucket, KeyMarker=key_marker, VersionIdMarker=version_marker, MaxKeys=128
        )
        key_marker, version_marker = page.get("NextKeyMarker"), page.get("NextVersionIdMarker")
        truncated = page["IsTruncated"]
        objs = [
            {"Key": o["Key"], "VersionId": o["VersionId"]}
            for o in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if objs:
            r = s3.delete_objects(
                Bucket=bucket, Delete={"Objects": objs, "Quiet": True}, BypassGovernanceRetention=True
            )
            assert not r.get("Errors"), r["Errors"]
    s3.delete_bucket(Bucket=bucket)


def test_suite_cleanup_on_plain_and_versioned_buckets(server: Server) -> None:
    """s3-tests setup()/teardown(): nuke_prefixed_buckets over a never-versioned bucket (null
    versions) and a versioned one holding a null version, versions and a delete marker."""
    s3 = server.client()
    plain, versioned = f"nuke-{uuid.uuid4().hex[:10]}", f"nukev-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=plain)
    for i in range(300):
        s3.put_object(Bucket=plain, Key=f"k{i:03}", Body=b"x")
    s3.create_bucket(Bucket=versioned)
    s3.put_object(Bucket=versioned, Key="pre", Body=b"null version")
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
    for i in range(3):
        s3.put_object(Bucket=versioned, Key="pre", Body=f"v{i}".encode())
    s3.delete_object(Bucket=versioned, Key="gone")
    r = s3.list_object_versions(Bucket=versioned)
    assert len(r["Versions"]) == 4 and len(r["DeleteMarkers"]) == 1
    assert [v["VersionId"] for v in r["Versions"]][-1] == "null"
    for b in (plain, versioned):
        _nuke(s3, b)
        assert _err(partial(s3.head_bucket, Bucket=b))[0] == 404
