"""GET ?x-rs3gw-transform=wasm:<plugin> with real WASM modules (skipped when wasmtime is absent):
a plugin that upper-cases ASCII, and sandbox limits (fuel, memory, imports) answering clean 400s."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from transform_helpers import enable_transform_param

from conftest import Server, cleanup_bucket, start_server

wasmtime = pytest.importorskip("wasmtime")

BUCKET = "transform-wasm"
ALLOC = """
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $top))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $n)) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.add (i32.div_u (local.get $n) (i32.const 65536)) (i32.const 1)))
                        (i32.const -1))
              (then unreachable))))
    (global.set $top (i32.add (local.get $p) (local.get $n)))
    (local.get $p))
"""
PLUGINS = {
    "ascii-upper": f"""(module {ALLOC}
  (func (export "transform") (param $p i32) (param $n i32) (result i64)
    (local $i i32) (local $c i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $c (i32.load8_u (i32.add (local.get $p) (local.get $i))))
      (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
        (then (i32.store8 (i32.add (local.get $p) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32)) (i64.extend_i32_u (local.get $n)))))""",
    "spin": f"""(module {ALLOC}
  (func (export "transform") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0)))""",
    "hog": f"""(module {ALLOC}
  (func (export "transform") (param i32 i32) (result i64)
    (if (i32.eq (memory.grow (i32.const 2048)) (i32.const -1)) (then unreachable))
    (i64.const 0)))""",
    "host": """(module (import "env" "f" (func)) (memory (export "memory") 1))""",
}


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    base = tmp_path_factory.mktemp("wasm")
    plugins = base / "plugins"
    plugins.mkdir()
    for name, wat in PLUGINS.items():
        (plugins / f"{name}.wasm").write_bytes(wasmtime.wat2wasm(wat))
    cfg = base / "rs3gw.toml"
    cfg.write_text(
        f'[transforms]\nwasm_dir = "{plugins}"\nwasm_fuel = 5000000\nwasm_memory_bytes = 16777216\n'
    )
    server: Server = start_server(base / "data", "--config", str(cfg))
    client = enable_transform_param(server.client())
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="t.txt", Body=b"hello, wasm \xc3\xa9!\n")
    yield client
    cleanup_bucket(client, BUCKET)
    server.stop()


def _error(s3: Any, spec: str) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=BUCKET, Key="t.txt", Transform=spec)
    err = exc.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"], err["Error"]["Message"]


def test_plugin_transforms_and_chains(s3: Any) -> None:
    out = s3.get_object(Bucket=BUCKET, Key="t.txt", Transform="wasm:ascii-upper")["Body"].read()
    assert out == b"HELLO, WASM \xc3\xa9!\n"
    both = s3.get_object(Bucket=BUCKET, Key="t.txt", Transform="wasm:ascii-upper|prefix:text=%3E")
    assert both["Body"].read() == b">HELLO, WASM \xc3\xa9!\n"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("wasm:spin", "ran out of fuel"),
        ("wasm:hog", "failed"),
        ("wasm:host", "imports host functions"),
        ("wasm:missing", "no WASM plugin named 'missing'"),
        ("wasm:..%2Fetc", "needs a plugin name"),
    ],
)
def test_sandbox_limits_are_clean_400s(s3: Any, spec: str, needle: str) -> None:
    status, code, message = _error(s3, spec)
    assert (status, code) == (400, "InvalidTransformation")
    assert needle in message
