"""Real model files made by the real libraries (skipped per library when it is not installed)."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytest


def safetensors_bytes(extra_elems: int = 0) -> bytes:
    np = pytest.importorskip("numpy")
    st = pytest.importorskip("safetensors.numpy")
    tensors = {"encoder.weight": np.ones((3, 4), np.float32), "encoder.bias": np.zeros(4, np.float16)}
    if extra_elems:
        tensors["big"] = np.arange(extra_elems, dtype=np.float32)
    data: bytes = st.save(tensors, metadata={"format": "np"})
    return data


def onnx_bytes() -> bytes:
    np = pytest.importorskip("numpy")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 3), np.float32), name="W")
    b = numpy_helper.from_array(np.zeros(3, np.int64), name="B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 3])],
        [w, b],
    )
    model = helper.make_model(graph, producer_name="rs3gw-test", producer_version="1.2")
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def torch_bytes(legacy: bool = False) -> bytes:
    torch = pytest.importorskip("torch", reason="torch CPU is not installed (pip install torch==2.13.0)")
    buf = io.BytesIO()
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    torch.save(model.state_dict(), buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def keras_files(tmp: Path) -> tuple[bytes, bytes]:
    """(.keras zip, legacy .h5) of one small Sequential model, saved by Keras itself."""
    pytest.importorskip("torch", reason="keras runs here on its torch backend; torch is not installed")
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="keras is not installed")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    model.save(tmp / "m.keras")
    model.save(tmp / "m.h5")
    return (tmp / "m.keras").read_bytes(), (tmp / "m.h5").read_bytes()


def h5_bytes(tmp: Path, keras_attrs: bool) -> bytes:
    h5py = pytest.importorskip("h5py")
    np = pytest.importorskip("numpy")
    path = tmp / f"plain-{keras_attrs}.h5"
    with h5py.File(path, "w") as f:
        if keras_attrs:  # the root attributes Keras' legacy HDF5 writer sets
            f.attrs["keras_version"] = "2.15.0"
            f.attrs["backend"] = "tensorflow"
            f.attrs["model_config"] = '{"class_name": "Sequential"}'
        f.create_dataset("data", data=np.arange(10))
    return path.read_bytes()


def savedmodel_bytes() -> bytes:
    """A SavedModel proto: TensorFlow's own MetaGraphDef message (from tensorboard's copy of TF's
    protos) inside SavedModel's two fields; TensorFlow itself is too large to install here."""
    mg = pytest.importorskip(
        "tensorboard.compat.proto.meta_graph_pb2", reason="tensorboard (TF's protos) not installed"
    )
    g = mg.MetaGraphDef()
    g.meta_info_def.tags.append("serve")
    g.meta_info_def.tensorflow_version = "2.17.0"
    g.signature_def["serving_default"].method_name = "tensorflow/serving/predict"
    body = bytes(g.SerializeToString())
    n, size = len(body), b""
    while n >= 0x80:
        size, n = size + bytes([n & 0x7F | 0x80]), n >> 7
    return b"\x08\x01\x12" + size + bytes([n]) + body  # SavedModel: schema version 1, one meta graph


class Evil:
    """Runs a shell command when unpickled; detection must never unpickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def evil_pickle(marker: Path) -> bytes:
    return pickle.dumps({"state_dict": Evil(marker)}, protocol=2)


def evil_torch_zip(real_zip: bytes, marker: Path) -> bytes:
    """A real torch.save archive whose data.pkl is swapped for a hostile pickle."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(real_zip)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = evil_pickle(marker) if info.filename.endswith("data.pkl") else src.read(info)
            dst.writestr(info.filename, data)
    return out.getvalue()


def torch_evil_bytes(marker: Path) -> bytes:
    """A genuine torch.save checkpoint that also carries a code-running object."""
    torch = pytest.importorskip("torch", reason="torch CPU is not installed (pip install torch==2.13.0)")
    buf = io.BytesIO()
    torch.save({"weight": torch.zeros(2, 5), "payload": Evil(marker)}, buf)
    return buf.getvalue()
