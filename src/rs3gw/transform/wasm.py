"""WASM plugins run with wasmtime (optional: only when the package is installed), sandboxed.

A plugin is ``<wasm_dir>/<name>.wasm``, used as ``wasm:<name>``. It may import nothing (no WASI,
no host calls), and exports ``memory``, ``alloc(len: i32) -> i32`` and
``transform(ptr: i32, len: i32) -> i64`` returning ``out_ptr << 32 | out_len``. Each run gets a
fresh store with a fuel budget (instructions) and a linear-memory cap.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

from rs3gw.transform.args import Args
from rs3gw.transform.spec import _NAME, Step, invalid
from rs3gw.transform.stage import BUFFER, Stage

STEPS = frozenset({"wasm"})
_MASK32 = 0xFFFFFFFF
_modules: dict[tuple[str, int], tuple[Any, Any]] = {}  # (path, mtime) -> (engine, module)
_lock = threading.Lock()


def available() -> bool:
    return importlib.util.find_spec("wasmtime") is not None


def _load(path: Path) -> tuple[Any, Any]:
    """Compiled once per file version; the engine meters fuel, so every store can be given a budget."""
    import wasmtime

    key = (str(path), path.stat().st_mtime_ns)
    with _lock:
        hit = _modules.get(key)
        if hit is not None:
            return hit
        cfg = wasmtime.Config()
        cfg.consume_fuel = True
        engine = wasmtime.Engine(cfg)
        try:
            module = wasmtime.Module(engine, path.read_bytes())
        except wasmtime.WasmtimeError:
            raise invalid(f"WASM plugin {path.stem!r} is not a valid module") from None
        if list(module.imports):
            raise invalid(f"WASM plugin {path.stem!r} imports host functions; plugins must be self-contained")
        _modules[key] = (engine, module)
        return engine, module


def _run(name: str, engine: Any, module: Any, data: bytes, fuel: int, memory_bytes: int) -> bytes:
    import wasmtime

    store = wasmtime.Store(engine)
    store.set_fuel(fuel)
    store.set_limits(memory_size=memory_bytes)
    try:
        exports: Any = wasmtime.Instance(store, module, []).exports(store)
        memory, alloc, transform = exports["memory"], exports["alloc"], exports["transform"]
        ptr = alloc(store, len(data))
        memory.write(store, data, ptr)
        packed = transform(store, ptr, len(data)) & 0xFFFFFFFFFFFFFFFF
        out_ptr, out_len = (packed >> 32) & _MASK32, packed & _MASK32
        if out_ptr + out_len > memory.data_len(store):
            raise invalid(f"WASM plugin {name!r} returned a result outside its memory")
        return bytes(memory.read(store, out_ptr, out_ptr + out_len))
    except KeyError as e:
        raise invalid(f"WASM plugin {name!r} does not export {e}") from None
    except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
        if store.get_fuel() == 0:
            raise invalid(f"WASM plugin {name!r} ran out of fuel ({fuel} units)") from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise invalid(f"WASM plugin {name!r} failed: {first}") from None


def compile_wasm(step: Step, plugin_dir: str, fuel: int, memory_bytes: int) -> Stage:
    a = Args(step, "plugin")
    name = a.text("plugin")
    a.done()
    if not available():
        raise invalid("WASM plugins need the wasmtime package, which is not installed on this server")
    if not plugin_dir:
        raise invalid("no WASM plugin directory is configured ([transforms] wasm_dir)")
    if name is None or not _NAME.fullmatch(name):
        raise invalid("transformation 'wasm' needs a plugin name: wasm:<name>")
    path = Path(plugin_dir) / f"{name}.wasm"
    if not path.is_file():
        raise invalid(f"no WASM plugin named {name!r}")
    engine, module = _load(path)
    return Stage(f"wasm:{name}", BUFFER, apply=lambda d: _run(name, engine, module, d, fuel, memory_bytes))
