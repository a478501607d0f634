"""A symbolic replay of a PyTorch pickle: opcodes from ``pickletools.genops``, never ``pickle.load``.

Globals become ``Global`` records and calls (REDUCE, NEWOBJ, BUILD) become ``Call`` records, so
nothing is imported or executed whatever the pickle says (``os.system`` in a ``__reduce__`` is just
a ``Global('posix', 'system')`` here). The resulting tree is searched for PyTorch's tensor-rebuild
calls, whose arguments carry each tensor's storage dtype and shape.
"""

from __future__ import annotations

import pickletools
from dataclasses import dataclass, field

MAX_OPS = 2_000_000
MAX_TENSORS = 1_000_000
STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
}  # fmt: skip


class BadPickle(ValueError):
    pass


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= max(d, 0)
        return n


@dataclass(frozen=True)
class Global:
    module: str
    name: str


@dataclass(eq=False)
class Call:
    func: object
    args: object
    items: dict[object, object] = field(default_factory=dict)  # SETITEM(S) on the result
    appended: list[object] = field(default_factory=list)
    state: object = None


@dataclass(frozen=True)
class Persistent:
    pid: object


_MARK = object()


@dataclass
class TorchPickle:
    tensors: list[TensorInfo]


def _pop_mark(stack: list[object]) -> list[object]:
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is _MARK:
            items = stack[i + 1 :]
            del stack[i:]
            return items
    raise BadPickle("no mark")


def replay(data: bytes) -> object:
    """The pickle's object tree, symbolically; raises BadPickle (a ValueError) on anything odd."""
    stack: list[object] = []
    memo: dict[int, object] = {}
    ops = 0
    for op, arg, _ in pickletools.genops(data):
        ops += 1
        if ops > MAX_OPS:
            raise BadPickle("too many opcodes")
        name = op.name
        if name in ("PROTO", "FRAME"):
            continue
        if name == "STOP":
            if len(stack) != 1:
                raise BadPickle("unbalanced stack")
            return stack[0]
        _step(name, arg, stack, memo)
    raise BadPickle("no STOP")


def _step(name: str, arg: object, stack: list[object], memo: dict[int, object]) -> None:
    if name in ("EMPTY_DICT",):
        stack.append({})
    elif name in ("EMPTY_LIST",):
        stack.append([])
    elif name in ("EMPTY_TUPLE",):
        stack.append(())
    elif name in ("EMPTY_SET",):
        stack.append(Call(Global("builtins", "set"), ()))
    elif name == "MARK":
        stack.append(_MARK)
    elif name in ("NONE",):
        stack.append(None)
    elif name in ("NEWTRUE", "NEWFALSE"):
        stack.append(name == "NEWTRUE")
    elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        n = int(name[-1])
        if len(stack) < n:
            raise BadPickle("stack underflow")
        items = stack[-n:]
        del stack[-n:]
        stack.append(tuple(items))
    elif name == "TUPLE":
        stack.append(tuple(_pop_mark(stack)))
    elif name == "LIST":
        stack.append(_pop_mark(stack))
    elif name == "DICT":
        items = _pop_mark(stack)
        stack.append(_pairs(items))
    elif name in ("FROZENSET",):
        stack.append(Call(Global("builtins", "frozenset"), tuple(_pop_mark(stack))))
    elif name == "APPEND":
        v = stack.pop()
        _append(stack[-1], [v])
    elif name in ("APPENDS", "ADDITEMS"):
        items = _pop_mark(stack)
        _append(stack[-1], items)
    elif name == "SETITEM":
        v, k = stack.pop(), stack.pop()
        _setitems(stack[-1], {_key(k): v})
    elif name == "SETITEMS":
        pairs = _pairs(_pop_mark(stack))
        _setitems(stack[-1], pairs)
    elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
        memo[int(arg)] = stack[-1]  # type: ignore[call-overload]
    elif name == "MEMOIZE":
        memo[len(memo)] = stack[-1]
    elif name in ("BINGET", "LONG_BINGET", "GET"):
        stack.append(memo[int(arg)])  # type: ignore[call-overload]
    elif name in ("GLOBAL", "INST"):
        mod, _, attr = str(arg).partition(" ")
        if name == "INST":
            stack.append(Call(Global(mod, attr), tuple(_pop_mark(stack))))
        else:
            stack.append(Global(mod, attr))
    elif name == "STACK_GLOBAL":
        g_attr, g_mod = stack.pop(), stack.pop()
        stack.append(Global(str(g_mod), str(g_attr)))
    elif name == "REDUCE":
        args, func = stack.pop(), stack.pop()
        stack.append(Call(func, args))
    elif name == "NEWOBJ":
        args, cls = stack.pop(), stack.pop()
        stack.append(Call(cls, args))
    elif name == "NEWOBJ_EX":
        _kw, args, cls = stack.pop(), stack.pop(), stack.pop()
        stack.append(Call(cls, args))
    elif name == "OBJ":
        items = _pop_mark(stack)
        if not items:
            raise BadPickle("OBJ without class")
        stack.append(Call(items[0], tuple(items[1:])))
    elif name == "BUILD":
        state = stack.pop()
        target = stack[-1]
        if isinstance(target, Call):
            target.state = state
    elif name in ("BINPERSID", "PERSID"):
        stack.append(Persistent(stack.pop() if name == "BINPERSID" else arg))
    elif name == "POP":
        stack.pop()
    elif name == "POP_MARK":
        _pop_mark(stack)
    elif name == "DUP":
        stack.append(stack[-1])
    elif name in ("EXT1", "EXT2", "EXT4", "NEXT_BUFFER", "READONLY_BUFFER"):
        if name == "READONLY_BUFFER":
            return
        stack.append(Global("copyreg-ext", str(arg)))
    elif name in (
        "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
        "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
        "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
    ):  # fmt: skip
        stack.append(arg)
    else:
        raise BadPickle(f"unsupported opcode {name}")


def _key(k: object) -> object:
    try:
        hash(k)
    except TypeError:
        return id(k)
    return k


def _pairs(items: list[object]) -> dict[object, object]:
    if len(items) % 2:
        raise BadPickle("odd dict items")
    return {_key(items[i]): items[i + 1] for i in range(0, len(items), 2)}


def _append(target: object, items: list[object]) -> None:
    if isinstance(target, list):
        target.extend(items)
    elif isinstance(target, Call):
        target.appended.extend(items)
    else:
        raise BadPickle("append to a non-list")


def _setitems(target: object, items: dict[object, object]) -> None:
    if isinstance(target, dict):
        target.update(items)
    elif isinstance(target, Call):
        target.items.update(items)
    else:
        raise BadPickle("setitem on a non-dict")


def _tensor(call: Call, name: str) -> TensorInfo | None:
    f = call.func
    if not (isinstance(f, Global) and f.module.startswith("torch") and f.name.startswith("_rebuild_tensor")):
        return None
    args = call.args
    if not isinstance(args, tuple) or len(args) < 3 or not isinstance(args[0], Persistent):
        raise BadPickle("odd tensor rebuild")
    pid, shape = args[0].pid, args[2]
    if not isinstance(pid, tuple) or len(pid) < 2 or not isinstance(shape, tuple):
        raise BadPickle("odd tensor storage")
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise BadPickle("odd tensor shape")
    st = pid[1]
    dtype = STORAGE_DTYPES.get(st.name, st.name) if isinstance(st, Global) else str(st)
    return TensorInfo(name, dtype, tuple(int(d) for d in shape))


def parse_torch_pickle(data: bytes) -> TorchPickle:
    """Tensors named by their dict-key path (``layer.weight``), found in the replayed tree."""
    root = replay(data)
    out: list[TensorInfo] = []
    seen: set[int] = set()
    todo: list[tuple[object, str]] = [(root, "")]
    while todo:
        node, path = todo.pop()
        if id(node) in seen or len(out) > MAX_TENSORS:
            continue
        seen.add(id(node))
        if isinstance(node, Call):
            t = _tensor(node, path)
            if t is not None:
                out.append(t)
                continue
            if isinstance(node.func, Global) and node.func.name == "_rebuild_parameter":
                todo.append((node.args[0] if isinstance(node.args, tuple) and node.args else None, path))
                continue
            todo += _children(node.items, path)
            todo += [(v, path) for v in (node.args, node.state, *node.appended)]
        elif isinstance(node, dict):
            todo += _children(node, path)
        elif isinstance(node, (list, tuple)):
            todo += [(v, path) for v in node]
    return TorchPickle(out)


def _children(d: dict[object, object], path: str) -> list[tuple[object, str]]:
    return [(v, f"{path}.{k}" if path else str(k)) for k, v in d.items()]
