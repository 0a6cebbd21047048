r"""Saving and loading normix models: `normix.save(path, model)`, `normix.load(path)`.

The format is generic: it works for every `eqx.Module` class defined in the `normix`
package (distributions, mixtures, covariance operators, solvers, fit results, ...) with no
per-class code. A model is written as a tree:

* a module node records its importable class (`module:qualname`) and each dataclass field;
* an array (JAX or NumPy) is stored as raw little-endian bytes with its exact dtype and
  shape in a binary payload;
* a static Python value (`None`, `bool`, `int`, `float` (as exact hex), `str`, tuples,
  lists, dicts, `normix` classes) is stored as JSON.

File layout (all integers little-endian)::

    8 bytes   magic b"\x89NORMIX\n"
    8 bytes   length H of the header (uint64)
    H bytes   header, UTF-8 JSON: format name and version, normix version, class, tree,
              array table (dtype, shape, offset, byte count), payload length
    P bytes   payload: the arrays' bytes, concatenated
    32 bytes  SHA-256 of everything before it

Loading checks the magic, the lengths and the checksum before parsing anything, so a
truncated, corrupted or foreign file raises `ValueError` (never returns a wrong model).
Classes are only resolved inside the `normix` package (plus Equinox's enumeration item
used by result codes), and a class must still have exactly the fields recorded in the
file. The model is rebuilt without calling `__init__` (as `object.__new__` + field
assignment, which reproduces the saved values bit for bit), then each class's
`__check_init__` runs and every floating-point leaf must be finite unless it was saved
non-finite (e.g. the NaN tail of an `EMResult.trace`).
"""

import dataclasses
import hashlib
import importlib
import io
import json
import os
import struct
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._covariance import AbstractCovariance
from ._em_model import AbstractEMModel
from ._exponential_family import AbstractExponentialFamily
from ._version import __version__

MAGIC = b"\x89NORMIX\n"
FORMAT_NAME = "normix-model"
FORMAT_VERSION = 1
_DIGEST = 32
_MAX_HEADER = 64 * 1024 * 1024
_ALLOWED_FOREIGN = {"equinox._enum:EnumerationItem"}


class NormixFileError(ValueError):
    """A file is not a valid normix model file (foreign, truncated, corrupted, or it
    names a class this normix cannot rebuild)."""


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _allowed_module(module: str) -> bool:
    return module == "normix" or module.startswith("normix.")


def _resolve(path: str, *, check_allowed: bool) -> type:
    if not isinstance(path, str) or ":" not in path:
        raise NormixFileError(f"normix.load: malformed class path {path!r}.")
    module, qualname = path.split(":", 1)
    if check_allowed and not (_allowed_module(module) or path in _ALLOWED_FOREIGN):
        raise NormixFileError(
            f"normix.load: the file names the class {path!r}, which is outside the normix "
            "package; normix only rebuilds its own classes."
        )
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise NormixFileError(
            f"normix.load: class {path!r} does not exist in this normix ({__version__}); "
            "the file may come from a different version."
        ) from e
    if not isinstance(obj, type):
        raise NormixFileError(f"normix.load: {path!r} is not a class.")
    return obj


# ------------------------------------------------------------------------------ encode
class _Encoder:
    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.table: list[dict[str, Any]] = []
        self.offset = 0

    def array(self, x: Any, kind: str, where: str) -> dict[str, Any]:
        if kind == "jax" and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            raise TypeError(
                f"normix.save: {where} is a typed PRNG key array; store "
                "`jax.random.key_data(key)` instead."
            )
        a = np.asarray(x)
        if a.dtype.kind not in "biufc" and a.dtype.name != "bfloat16":
            raise TypeError(f"normix.save: {where} has unsupported dtype {a.dtype}.")
        a = np.array(a, order="C", copy=True)
        le = a.astype(a.dtype.newbyteorder("<")) if a.dtype.byteorder == ">" else a
        data = le.tobytes()
        finite = bool(np.all(np.isfinite(a))) if a.dtype.kind in "fc" else True
        self.table.append(
            {
                "dtype": a.dtype.name,
                "shape": list(a.shape),
                "offset": self.offset,
                "nbytes": len(data),
                "finite": finite,
                "weak_type": bool(kind == "jax" and getattr(x, "weak_type", False)),
            }
        )
        self.arrays.append(np.frombuffer(data, dtype=np.uint8))
        self.offset += len(data)
        return {"t": "array", "kind": kind, "i": len(self.table) - 1}

    def value(self, v: Any, where: str) -> dict[str, Any]:
        if isinstance(v, eqx.Module):
            return self.module(v, where)
        if isinstance(v, jax.Array):
            return self.array(v, "jax", where)
        if isinstance(v, np.ndarray):
            return self.array(v, "numpy", where)
        if isinstance(v, np.generic):
            return {"t": "npscalar", "a": self.array(np.asarray(v), "numpy", where)}
        if v is None:
            return {"t": "none"}
        if isinstance(v, bool):
            return {"t": "bool", "v": v}
        if isinstance(v, int):
            return {"t": "int", "v": str(v)}
        if isinstance(v, float):
            return {"t": "float", "v": v.hex()}
        if isinstance(v, complex):
            return {"t": "complex", "re": v.real.hex(), "im": v.imag.hex()}
        if isinstance(v, str):
            return {"t": "str", "v": v}
        if isinstance(v, tuple | list):
            return {
                "t": type(v).__name__,
                "items": [self.value(u, f"{where}[{i}]") for i, u in enumerate(v)],
            }
        if isinstance(v, dict):
            return {
                "t": "dict",
                "keys": [self.value(k, f"{where} key") for k in v],
                "values": [self.value(u, f"{where}[{k!r}]") for k, u in v.items()],
            }
        if isinstance(v, type):
            path = _class_path(v)
            if not _allowed_module(v.__module__) or _resolve(path, check_allowed=False) is not v:
                raise TypeError(
                    f"normix.save: {where} is the class {path}; only classes importable "
                    "from the normix package can be saved."
                )
            return {"t": "type", "cls": path}
        raise TypeError(
            f"normix.save: {where} holds a {type(v).__name__}, which normix cannot save "
            "(supported: eqx.Modules of the normix package, arrays, None, bool, int, float, "
            "str, tuple, list, dict, normix classes)."
        )

    def module(self, m: eqx.Module, where: str) -> dict[str, Any]:
        cls = type(m)
        path = _class_path(cls)
        if not (_allowed_module(cls.__module__) or path in _ALLOWED_FOREIGN):
            raise TypeError(
                f"normix.save: {where} is a {path}; only classes of the normix package can "
                "be saved."
            )
        try:
            same = _resolve(path, check_allowed=False) is cls
        except NormixFileError:
            same = False
        if not same:
            raise TypeError(
                f"normix.save: {where} is a {path}, which cannot be imported by that name "
                "(a locally defined class?)."
            )
        fields = {
            f.name: self.value(getattr(m, f.name), f"{where}.{f.name}")
            for f in dataclasses.fields(m)
        }
        return {"t": "module", "cls": path, "fields": fields}


def _non_finite_model(model: Any) -> bool:
    if not isinstance(model, AbstractEMModel | AbstractExponentialFamily | AbstractCovariance):
        return False
    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    return not all(bool(np.all(np.isfinite(np.asarray(x)))) for x in leaves)


def _checked_info(info: Any) -> dict[str, Any] | None:
    """`info` as it will be stored: `None`, or a dict with string keys whose values JSON
    represents exactly (strings, ints, finite floats, bools, `None`, lists, dicts)."""
    if info is None:
        return None
    if not isinstance(info, dict) or not all(isinstance(k, str) for k in info):
        raise TypeError(
            "normix.save: `info` must be a dict with string keys (e.g. {'columns': [...]}), "
            f"got {type(info).__name__}."
        )
    try:
        text = json.dumps(info, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(
            "normix.save: `info` values must be JSON values (str, int, finite float, bool, "
            f"None, lists and dicts of them): {e}"
        ) from e
    return json.loads(text)


def dumps(model: Any, info: dict[str, Any] | None = None) -> bytes:
    """The bytes `normix.save` writes for `model` (and its `info`)."""
    info = _checked_info(info)
    if not isinstance(model, eqx.Module):
        raise TypeError(
            f"normix.save: expected a normix model (an eqx.Module), got {type(model).__name__}."
        )
    if _non_finite_model(model):
        raise ValueError(
            f"normix.save: the {type(model).__name__} has non-finite parameters; refusing to "
            "save it (check the fit's `result` code)."
        )
    enc = _Encoder()
    tree = enc.module(model, "model")
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "normix_version": __version__,
        "class": _class_path(type(model)),
        "tree": tree,
        "arrays": enc.table,
        "payload_nbytes": enc.offset,
    }
    if info is not None:
        header["info"] = info
    head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    buf = io.BytesIO()
    buf.write(MAGIC)
    buf.write(struct.pack("<Q", len(head)))
    buf.write(head)
    for a in enc.arrays:
        buf.write(a.tobytes())
    body = buf.getvalue()
    return body + hashlib.sha256(body).digest()


def save(path: str | os.PathLike, model: Any, *, info: dict[str, Any] | None = None) -> None:
    """Write `model` (any normix `eqx.Module`: a distribution, a mixture, a fit result,
    ...) to `path`. The file records the class, the format version and the normix
    version; `normix.load(path)` returns an identical model (same class, same static
    settings, bit-identical arrays with the same dtypes).

    `info` is optional metadata kept beside the model: a dict with string keys and JSON
    values (e.g. the data's column names and units, its source). `normix.describe(path)`
    returns it; `load` ignores it. The `normix` command stores `columns`, `scale` and
    `data` there.

    Writes to a temporary file next to `path` and renames it, so an interrupted save
    never leaves a half-written file under `path`.
    """
    data = dumps(model, info)
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ------------------------------------------------------------------------------ decode
def _weak(x: jax.Array) -> jax.Array:
    """`x` as a weakly typed array (what `jnp.asarray(1.0)` gives), as it was saved."""
    from jax._src.lax.lax import _convert_element_type  # no public API for weak types

    return _convert_element_type(x, x.dtype, weak_type=True)


def read_header(data: bytes, source: str = "the data") -> dict[str, Any]:
    """Check magic, lengths and checksum of a normix file's bytes; return its header."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise NormixFileError(f"normix.load: {source} is not a normix model file (bad magic).")
    if len(data) < len(MAGIC) + 8 + _DIGEST:
        raise NormixFileError(f"normix.load: {source} is truncated.")
    (h,) = struct.unpack("<Q", data[len(MAGIC) : len(MAGIC) + 8])
    start = len(MAGIC) + 8
    if h > _MAX_HEADER or start + h + _DIGEST > len(data):
        raise NormixFileError(f"normix.load: {source} is truncated or corrupted.")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise NormixFileError(
            f"normix.load: {source} is corrupted or truncated (checksum mismatch)."
        )
    try:
        header = json.loads(data[start : start + h].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NormixFileError(f"normix.load: {source} has an unreadable header.") from e
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise NormixFileError(f"normix.load: {source} is not a normix model file.")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise NormixFileError(
            f"normix.load: {source} uses format version {version!r}; this normix "
            f"({__version__}) reads versions 1 to {FORMAT_VERSION}. Upgrade normix."
        )
    if len(body) - start - h != header.get("payload_nbytes"):
        raise NormixFileError(f"normix.load: {source} has a payload of the wrong length.")
    header["_payload"] = body[start + h :]
    return header


class _Decoder:
    def __init__(self, header: dict[str, Any], source: str) -> None:
        self.table = header["arrays"]
        self.payload = header["_payload"]
        self.source = source

    def fail(self, msg: str) -> NormixFileError:
        return NormixFileError(f"normix.load: {self.source}: {msg}")

    def array(self, node: dict[str, Any], where: str) -> Any:
        try:
            spec = self.table[node["i"]]
            dtype = np.dtype(jnp.dtype(spec["dtype"]))
            shape = tuple(int(s) for s in spec["shape"])
            off, nbytes = int(spec["offset"]), int(spec["nbytes"])
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise self.fail(f"bad array entry at {where}.") from e
        if nbytes != dtype.itemsize * int(np.prod(shape)) or off + nbytes > len(self.payload):
            raise self.fail(f"array at {where} does not match its declared shape/dtype.")
        count = int(np.prod(shape))
        if count:
            raw = np.frombuffer(
                self.payload, dtype=dtype.newbyteorder("<"), count=count, offset=off
            )
            a = raw.astype(dtype, copy=True).reshape(shape)
        else:
            a = np.empty(shape, dtype)
        if dtype.kind in "fc" and bool(np.all(np.isfinite(a))) != bool(spec.get("finite", True)):
            raise self.fail(f"array at {where} has non-finite values.")
        if node.get("kind") == "numpy":
            return a
        if node.get("kind") != "jax":
            raise self.fail(f"unknown array kind at {where}.")
        if dtype.itemsize == 8 and dtype.kind in "fiu" and not jax.config.jax_enable_x64:
            raise self.fail(
                f"{where} is {dtype.name}, but 64-bit JAX is off; call "
                '`jax.config.update("jax_enable_x64", True)` before `normix.load`.'
            )
        if dtype.kind == "c" and dtype.itemsize == 16 and not jax.config.jax_enable_x64:
            raise self.fail(f"{where} is {dtype.name}, but 64-bit JAX is off.")
        out = jnp.asarray(a)
        if spec.get("weak_type", False):
            out = _weak(out)
        if out.dtype != dtype:
            raise self.fail(f"{where}: dtype {dtype} could not be restored exactly.")
        return out

    def value(self, node: Any, where: str) -> Any:
        if not isinstance(node, dict) or "t" not in node:
            raise self.fail(f"malformed entry at {where}.")
        t = node["t"]
        try:
            if t == "module":
                return self.module(node, where)
            if t == "array":
                return self.array(node, where)
            if t == "npscalar":
                return self.array(node["a"], where)[()]
            if t == "none":
                return None
            if t == "bool":
                if not isinstance(node["v"], bool):
                    raise self.fail(f"bad bool at {where}.")
                return node["v"]
            if t == "int":
                return int(node["v"])
            if t == "float":
                return float.fromhex(node["v"])
            if t == "complex":
                return complex(float.fromhex(node["re"]), float.fromhex(node["im"]))
            if t == "str":
                if not isinstance(node["v"], str):
                    raise self.fail(f"bad str at {where}.")
                return node["v"]
            if t in ("tuple", "list"):
                items = [self.value(u, f"{where}[{i}]") for i, u in enumerate(node["items"])]
                return tuple(items) if t == "tuple" else items
            if t == "dict":
                keys = [self.value(k, f"{where} key") for k in node["keys"]]
                vals = [self.value(u, f"{where}[{i}]") for i, u in enumerate(node["values"])]
                if len(keys) != len(vals):
                    raise self.fail(f"bad dict at {where}.")
                return dict(zip(keys, vals, strict=True))
            if t == "type":
                return _resolve(node["cls"], check_allowed=True)
        except NormixFileError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise self.fail(f"malformed entry at {where}.") from e
        raise self.fail(f"unknown entry type {t!r} at {where}.")

    def module(self, node: dict[str, Any], where: str) -> Any:
        cls = _resolve(node.get("cls"), check_allowed=True)
        if not (isinstance(cls, type) and issubclass(cls, eqx.Module)):
            raise self.fail(f"{node.get('cls')} at {where} is not an Equinox module.")
        if getattr(cls, "__abstractmethods__", None) or cls.__name__.startswith("Abstract"):
            raise self.fail(f"{node.get('cls')} at {where} is abstract.")
        fields = node.get("fields")
        if not isinstance(fields, dict):
            raise self.fail(f"malformed module at {where}.")
        expected = [f.name for f in dataclasses.fields(cls)]
        # static settings added to a class after files were written with it: the value
        # an older file means is their default
        added = getattr(cls, "_fields_added_later", {})
        missing = set(expected) - set(fields)
        if set(fields) - set(expected) or not missing <= set(added):
            raise self.fail(
                f"{cls.__name__} at {where} was saved with fields {sorted(fields)}, but this "
                f"normix ({__version__}) defines {sorted(expected)}."
            )
        obj = object.__new__(cls)
        for name in expected:
            if name in missing:
                value = added[name]
            else:
                value = self.value(fields[name], f"{where}.{name}")
            object.__setattr__(obj, name, value)
        for klass in reversed(cls.__mro__):  # as eqx runs them after __init__
            check = klass.__dict__.get("__check_init__")
            if check is not None:
                try:
                    check(obj)
                except Exception as e:
                    raise self.fail(f"{cls.__name__} at {where} is invalid: {e}") from e
        return obj


def loads(data: bytes, source: str = "the data") -> Any:
    """Rebuild a model from the bytes of a normix model file (see `normix.load`)."""
    header = read_header(bytes(data), source)
    if not isinstance(header.get("tree"), dict) or not isinstance(header.get("arrays"), list):
        raise NormixFileError(f"normix.load: {source} has a malformed header.")
    model = _Decoder(header, source).module(header["tree"], "model")
    if _class_path(type(model)) != header.get("class"):
        raise NormixFileError(f"normix.load: {source}: class does not match its header.")
    return model


def load(path: str | os.PathLike) -> Any:
    """Read a model written by `normix.save`.

    Raises `FileNotFoundError` if `path` does not exist, and `NormixFileError` (a
    `ValueError`) if the file is not a normix model file, is truncated or corrupted, comes
    from a newer format version, or names a class outside normix or one whose fields have
    changed. Arrays come back with their saved dtypes; loading float64 arrays needs
    `jax_enable_x64`.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    return loads(data, source=repr(path))


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """What a normix model file holds, without rebuilding the model: `class`
    (`module:qualname`), `format_version`, `normix_version` (of the writer) and `info`
    (the dict given to `normix.save`, or `None`). The file is checked as by `load`
    (magic, lengths, checksum)."""
    with open(os.fspath(path), "rb") as f:
        header = read_header(f.read(), repr(os.fspath(path)))
    out = {k: header.get(k) for k in ("class", "format_version", "normix_version")}
    info = header.get("info")
    out["info"] = info if isinstance(info, dict) else None
    return out
