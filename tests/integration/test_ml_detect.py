"""ML model detection on PUT and CompleteMultipartUpload, against a real server with boto3.

Model files are written by the real libraries (safetensors, onnx, torch, keras, h5py); keys carry
no extensions, so detection can only be by content. Hostile pickles must never run.
"""

from __future__ import annotations

import asyncio
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import ml_model_files as mf
import pytest


def put_head(s3: Any, bucket: str, key: str, data: bytes) -> dict[str, str]:
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    meta: dict[str, str] = s3.head_object(Bucket=bucket, Key=key)["Metadata"]
    return meta


def ml_keys(meta: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in meta.items() if k.startswith("ml-")}


def test_safetensors_detected(s3: Any, bucket: str) -> None:
    meta = put_head(s3, bucket, "weights-a", mf.safetensors_bytes())
    assert meta["ml-framework"] == "safetensors"
    assert meta["ml-format"] == "safetensors"
    assert meta["ml-parameters"] == str(3 * 4 + 4)
    assert meta["ml-tensors"] == "2"
    assert meta["ml-tensor-summary"] == "encoder.bias:F16[4];encoder.weight:F32[3x4]"
    got = s3.get_object(Bucket=bucket, Key="weights-a")
    assert got["Metadata"]["ml-framework"] == "safetensors"  # GET reports it too
    got["Body"].read()


def test_onnx_detected(s3: Any, bucket: str) -> None:
    meta = put_head(s3, bucket, "graph", mf.onnx_bytes())
    assert meta["ml-framework"] == "onnx"
    assert meta["ml-parameters"] == "9"
    assert meta["ml-tensors"] == "2"
    assert "W:float32[2x3]" in meta["ml-tensor-summary"] and "B:int64[3]" in meta["ml-tensor-summary"]
    assert meta["ml-framework-version"] == "1.2"
    assert "producer=rs3gw-test" in meta["ml-info"] and "nodes=1" in meta["ml-info"]
    assert int(meta["ml-format-version"]) >= 7  # ONNX IR version


def test_pytorch_zip_and_legacy_detected(s3: Any, bucket: str) -> None:
    params = 4 * 3 + 3 + 3 * 2 + 2
    zmeta = put_head(s3, bucket, "ckpt", mf.torch_bytes())
    assert zmeta["ml-framework"] == "pytorch" and zmeta["ml-format"] == "pytorch-zip"
    assert zmeta["ml-parameters"] == str(params) and zmeta["ml-tensors"] == "4"
    assert "0.weight:float32[3x4]" in zmeta["ml-tensor-summary"]
    lmeta = put_head(s3, bucket, "ckpt-legacy", mf.torch_bytes(legacy=True))
    assert lmeta["ml-format"] == "pytorch-legacy" and lmeta["ml-parameters"] == str(params)


def test_keras_files_detected(s3: Any, bucket: str, tmp_path: Path) -> None:
    meta = put_head(s3, bucket, "k-plain", mf.h5_bytes(tmp_path, keras_attrs=True))
    assert meta["ml-framework"] == "keras" and meta["ml-format"] == "keras-h5"
    assert ml_keys(put_head(s3, bucket, "h5-data", mf.h5_bytes(tmp_path, keras_attrs=False))) == {}
    native, legacy = mf.keras_files(tmp_path)
    meta = put_head(s3, bucket, "k-native", native)
    assert meta["ml-format"] == "keras-zip" and "class=Sequential" in meta["ml-info"]
    assert meta["ml-framework-version"]  # keras_version from metadata.json
    assert put_head(s3, bucket, "k-legacy", legacy)["ml-format"] == "keras-h5"


def test_tensorflow_savedmodel_detected(s3: Any, bucket: str) -> None:
    meta = put_head(s3, bucket, "saved_model_pb", mf.savedmodel_bytes())
    assert meta["ml-framework"] == "tensorflow" and meta["ml-format"] == "savedmodel"
    assert meta["ml-framework-version"] == "2.17.0"
    assert "tags=serve" in meta["ml-info"] and "signatures=1" in meta["ml-info"]


def test_multipart_model_detected(s3: Any, bucket: str) -> None:
    data = mf.safetensors_bytes(extra_elems=2 * 1024 * 1024)  # ~8 MiB: two parts
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp-model")["UploadId"]
    cut = 5 * 1024 * 1024
    parts = []
    for n, chunk in enumerate((data[:cut], data[cut:]), 1):
        etag = s3.upload_part(Bucket=bucket, Key="mp-model", UploadId=up, PartNumber=n, Body=chunk)["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
    s3.complete_multipart_upload(Bucket=bucket, Key="mp-model", UploadId=up, MultipartUpload={"Parts": parts})
    meta = s3.head_object(Bucket=bucket, Key="mp-model")["Metadata"]
    assert meta["ml-framework"] == "safetensors"
    assert meta["ml-parameters"] == str(16 + 2 * 1024 * 1024)
    assert "big:F32[2097152]" in meta["ml-tensor-summary"]


def test_non_models_get_nothing(s3: Any, bucket: str) -> None:
    plain_zip = io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as z:
        z.writestr("readme.txt", "hello")
        z.writestr("data.pkl.txt", "not a pickle")
    samples = {
        "text": b"hello world, this is not a model\n" * 100,
        "random": os.urandom(4096),
        "zip": plain_zip.getvalue(),
        "pickle-dict": pickle.dumps({"a": [1, 2, 3], "b": "text"}, protocol=4),
        "varint-lookalike": b"\x08\x01" + os.urandom(200),
        "json": b'{"a": 1}' * 10,
        "empty": b"",
    }
    for key, data in samples.items():
        meta = put_head(s3, bucket, f"nm-{key}", data)
        assert ml_keys(meta) == {}, key


def test_malicious_pickles_never_run(s3: Any, bucket: str, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    meta = put_head(s3, bucket, "evil-pickle", mf.evil_pickle(marker))
    assert ml_keys(meta) == {}
    try:
        real = mf.torch_bytes()
    except pytest.skip.Exception:
        real = None
    if real is not None:
        assert ml_keys(put_head(s3, bucket, "evil-zip", mf.evil_torch_zip(real, marker))) == {}
        # A genuine checkpoint that also carries a payload: detected, payload inert.
        meta = put_head(s3, bucket, "evil-ckpt", mf.torch_evil_bytes(marker))
        assert meta["ml-framework"] == "pytorch" and meta["ml-tensor-summary"] == "weight:float32[2x5]"
    assert not marker.exists(), "a pickle was executed"
    control = tmp_path / "CONTROL"  # the payload is live: unpickling it does run the command
    pickle.loads(mf.evil_pickle(control))
    assert control.exists()


def test_truncated_and_hostile_files_are_not_models(s3: Any, bucket: str) -> None:
    st = mf.safetensors_bytes()
    onnx = mf.onnx_bytes()
    hostile = {
        "st-truncated": st[: len(st) // 2],
        "st-huge-header": (10**12).to_bytes(8, "little") + b"{" + b" " * 100,
        "st-bad-offsets": st.replace(b'"data_offsets":[0,', b'"data_offsets":[9,', 1)[:-1],
        "onnx-truncated": onnx[:-7],
        "onnx-garbage-graph": onnx[:40] + os.urandom(len(onnx) - 40),
        "hdf5-sig-only": b"\x89HDF\r\n\x1a\n" + b"\0" * 100,
        "zip-no-directory": b"PK\x03\x04" + os.urandom(500),
        "pickle-bad": b"\x80\x04\x95" + os.urandom(64),
    }
    try:
        pt = mf.torch_bytes()
        hostile["pt-truncated"] = pt[: len(pt) - 30]
    except pytest.skip.Exception:
        pass
    for key, data in hostile.items():
        resp = s3.put_object(Bucket=bucket, Key=f"h-{key}", Body=data)
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
        meta = s3.head_object(Bucket=bucket, Key=f"h-{key}")["Metadata"]
        assert ml_keys(meta) == {}, key


def test_copy_keeps_detection_and_overwrite_clears_it(s3: Any, bucket: str) -> None:
    put_head(s3, bucket, "orig", mf.safetensors_bytes())
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "orig"})
    assert s3.head_object(Bucket=bucket, Key="copy")["Metadata"]["ml-framework"] == "safetensors"
    assert ml_keys(put_head(s3, bucket, "orig", b"plain bytes now")) == {}


def test_python_api(tmp_path: Path) -> None:
    from rs3gw.storage import StorageEngine, detect_ml_model_format, extract_ml_metadata

    data = mf.onnx_bytes()

    async def run() -> None:
        assert await detect_ml_model_format(data) == "onnx"
        meta = await extract_ml_metadata("onnx", data)
        assert meta is not None and meta.framework == "onnx" and meta.parameter_count == 9
        assert await extract_ml_metadata("safetensors", data) is None
        assert await detect_ml_model_format(b"\x80\x02" + b"junk" * 10) is None
        async with StorageEngine(tmp_path / "data", fsync=False) as se:
            await se.create_bucket("models")
            await se.put_object("models", "m", "application/octet-stream", {}, mf.safetensors_bytes())
            head = await se.head_object("models", "m")
            assert head.meta.system["ml-framework"] == "safetensors"
            full = await se.ml_metadata("models", "m")
            assert full is not None and [t.name for t in full.tensors] == ["encoder.bias", "encoder.weight"]
            assert await se.detect_ml_model_format(data) == "onnx"

    asyncio.run(run())
