"""normix.save / normix.load: exact round trips for every public model class, and clear
errors for missing, foreign, truncated, corrupted and tampered files."""

import dataclasses
import hashlib
import json
import struct

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import normix
from normix import _io


def _public_classes():
    out = []
    for name in sorted(dir(normix)):
        obj = getattr(normix, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, eqx.Module)
            and not name.startswith("Abstract")
            and not name.startswith("_")
        ):
            out.append(obj)
    return out


PUBLIC = _public_classes()


def _modules_in(tree, found):
    """Collect every eqx.Module instance reachable from `tree`, by class."""
    if isinstance(tree, eqx.Module):
        found.setdefault(type(tree), tree)
        for f in dataclasses.fields(tree):
            _modules_in(getattr(tree, f.name), found)
    elif isinstance(tree, tuple | list):
        for t in tree:
            _modules_in(t, found)
    elif isinstance(tree, dict):
        for t in tree.values():
            _modules_in(t, found)


@pytest.fixture(scope="module")
def instances():
    """One instance of every public eqx.Module class of normix, built generically: each
    class with `initialize` is initialised from data (multivariate, else positive
    scalars), each no-argument class is constructed, E-step statistics and a fit result
    are added, and every module nested inside those is collected."""
    rng = np.random.default_rng(7)
    X = jnp.asarray(rng.standard_normal((60, 3)) @ np.diag([1.0, 2.0, 0.5]) + 0.3)
    P = jnp.asarray(rng.gamma(2.0, 1.5, size=60))
    w = jnp.ones(60)
    key = jax.random.key(0)
    found = {}
    # marginal mixtures first: their nested joints, subordinators (GIG, Gamma, ...) and
    # covariances are then found without initialising those classes eagerly (slow)
    order = sorted(PUBLIC, key=lambda c: not hasattr(c, "joint_family"))
    for cls in order:
        if cls in found:
            continue
        if hasattr(cls, "initialize"):
            for data, kwargs in ((X, {}), (X, {"rank": 1}), (P, {})):
                try:
                    _modules_in(cls.initialize(data, w, key=key, **kwargs), found)
                    break
                except Exception:  # wrong kind of data for this class: try the next
                    continue
        else:
            try:
                _modules_in(cls(), found)
            except TypeError:
                pass
    # E-step statistics: their structure by tracing only (running E-steps eagerly is
    # slow), filled with arbitrary finite values: only the container is under test here
    fill = iter(np.linspace(0.5, 2.0, 10_000))
    traced = set()  # one (cheap, non-GH) model per abstract base class
    for cls in sorted(found, key=lambda c: ("Hyperbolic" in c.__name__, c.__name__)):
        m = found[cls]
        if hasattr(m, "e_step") and cls.__mro__[1] not in traced and cls in PUBLIC:
            traced.add(cls.__mro__[1])
            try:
                shape = eqx.filter_eval_shape(m.e_step, X, w)
            except (TypeError, ValueError):
                shape = eqx.filter_eval_shape(m.e_step, P, w)
            if type(shape) not in found:
                _modules_in(
                    jax.tree.map(lambda s: jnp.full(s.shape, next(fill), s.dtype), shape), found
                )
    roots = []
    if hasattr(normix, "FiniteMixture"):  # finite mixtures: Gaussian and GH-family components
        st = found[normix.StudentT]
        roots.append(normix.FiniteMixture(jnp.asarray([0.25, 0.75]), [st, st]))
        chol = np.linalg.cholesky(np.linalg.inv(np.cov(np.asarray(X).T)))
        gauss = normix.GaussianComponents(
            jnp.asarray(np.asarray(X)[:2]), jnp.asarray(np.stack([chol, 2.0 * chol]))
        )
        roots.append(normix.FiniteMixture(jnp.asarray([0.5, 0.5]), gauss))
    roots.append(normix.fit(normix.MultivariateNormal, X, max_steps=3, throw=False))
    d = X.shape[1]
    roots.append(normix.LowRankPlusDiagonal(jnp.asarray(rng.standard_normal((d, 1))), jnp.ones(d)))
    for r in roots:
        _modules_in(r, found)
    return found


def _assert_identical(a, b):
    assert type(a) is type(b)
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb  # same structure and equal static fields
    for x, y in zip(la, lb, strict=True):
        assert type(x) is type(y)
        if isinstance(x, jax.Array | np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape
            assert getattr(x, "weak_type", False) == getattr(y, "weak_type", False)
            xa, ya = np.asarray(x), np.asarray(y)
            assert xa.tobytes() == ya.tobytes()  # bit for bit (NaN payloads included)
        else:
            assert x == y
    for f in dataclasses.fields(a):
        u, v = getattr(a, f.name), getattr(b, f.name)
        if f.metadata.get("static", False):
            assert u == v and type(u) is type(v)


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_round_trip_every_public_class(cls, instances, tmp_path):
    if cls not in instances:
        pytest.fail(
            f"no instance of {cls.__name__} could be built generically; add a root for it to "
            "the `instances` fixture of tests/test_io.py"
        )
    model = instances[cls]
    path = tmp_path / "model.nx"
    normix.save(path, model)
    loaded = normix.load(path)
    _assert_identical(model, loaded)
    assert _io.dumps(loaded) == path.read_bytes()  # the loaded model re-saves identically
    header = _io.describe(path)
    assert header["class"] == f"{cls.__module__}:{cls.__qualname__}"
    assert header["format_version"] == _io.FORMAT_VERSION
    assert header["normix_version"] == normix.__version__


def test_loaded_model_computes_the_same(instances, tmp_path):
    gh = instances[normix.FiniteMixture]
    normix.save(tmp_path / "gh.nx", gh)
    loaded = normix.load(tmp_path / "gh.nx")
    x = jnp.asarray([[0.1, -0.2, 0.3], [2.0, 1.0, -1.0]])
    f = eqx.filter_jit(lambda m, x: m.log_prob(x))
    np.testing.assert_array_equal(np.asarray(f(gh, x)), np.asarray(f(loaded, x)))


def test_float32_and_static_settings_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((30, 2)), dtype=jnp.float32)
    m = normix.NormalInverseGaussian.initialize(x, jnp.ones(30, dtype=jnp.float32))
    normix.save(tmp_path / "m.nx", m)
    out = normix.load(tmp_path / "m.nx")
    _assert_identical(m, out)
    assert out.joint.mu.dtype == jnp.float32
    solver = normix.EM()  # Python scalars and static settings
    normix.save(tmp_path / "em.nx", solver)
    _assert_identical(solver, normix.load(tmp_path / "em.nx"))


# ---------------------------------------------------------------------- bad files
@pytest.fixture(scope="module")
def good_bytes():
    m = normix.MultivariateNormal(jnp.asarray([0.5, -1.0]), jnp.asarray([[2.0, 0.3], [0.3, 1.0]]))
    return _io.dumps(m)


def _repack(data, edit_header=None, edit_payload=None):
    """Rewrite a file with an edited header/payload and a *valid* checksum (a crafted
    file, which only the semantic checks can reject)."""
    (h,) = struct.unpack("<Q", data[8:16])
    header = json.loads(data[16 : 16 + h])
    payload = bytearray(data[16 + h : -32])
    if edit_header:
        edit_header(header)
    if edit_payload:
        edit_payload(payload)
    head = json.dumps(header).encode()
    body = _io.MAGIC + struct.pack("<Q", len(head)) + head + bytes(payload)
    return body + hashlib.sha256(body).digest()


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        normix.load(tmp_path / "nope.nx")


@pytest.mark.parametrize(
    "content",
    [b"", b"Date,SP500\n1990-01-03,0.1\n", b"\x93NUMPY\x01\x00", b"\x89PNG\r\n\x1a\n" + b"0" * 64],
    ids=["empty", "csv", "npy", "png"],
)
def test_foreign_file(tmp_path, content):
    (tmp_path / "x.nx").write_bytes(content)
    with pytest.raises(normix.NormixFileError, match="not a normix model file"):
        normix.load(tmp_path / "x.nx")


def test_foreign_zip_from_numpy(tmp_path):
    np.savez(tmp_path / "a.npz", a=np.ones(3))
    with pytest.raises(normix.NormixFileError, match="not a normix model file"):
        normix.load(tmp_path / "a.npz")


def test_truncated_files(tmp_path, good_bytes):
    for cut in (9, 16, 40, len(good_bytes) // 2, len(good_bytes) - 33, len(good_bytes) - 1):
        (tmp_path / "t.nx").write_bytes(good_bytes[:cut])
        with pytest.raises(normix.NormixFileError, match="truncated|corrupted"):
            normix.load(tmp_path / "t.nx")


def test_every_single_byte_corruption_is_detected(good_bytes):
    rng = np.random.default_rng(0)
    positions = sorted(set(rng.integers(8, len(good_bytes), size=60).tolist()) | {8, 20})
    for pos in positions:
        bad = bytearray(good_bytes)
        bad[pos] ^= 0x40
        with pytest.raises(normix.NormixFileError):
            _io.loads(bytes(bad))


def test_crafted_files_are_rejected(good_bytes):
    def cls_outside(h):
        h["tree"]["cls"] = "subprocess:Popen"
        h["class"] = "subprocess:Popen"

    with pytest.raises(normix.NormixFileError, match="outside the normix package"):
        _io.loads(_repack(good_bytes, cls_outside))

    def cls_missing(h):
        h["tree"]["cls"] = "normix:NoSuchModel"

    with pytest.raises(normix.NormixFileError, match="does not exist"):
        _io.loads(_repack(good_bytes, cls_missing))

    def not_a_module(h):
        h["tree"]["cls"] = "normix:fit"

    with pytest.raises(normix.NormixFileError, match="not a class"):
        _io.loads(_repack(good_bytes, not_a_module))

    def abstract(h):
        h["tree"]["cls"] = "normix:AbstractExponentialFamily"

    with pytest.raises(normix.NormixFileError, match="abstract|fields"):
        _io.loads(_repack(good_bytes, abstract))

    def drop_field(h):
        h["tree"]["fields"].pop(next(iter(h["tree"]["fields"])))

    with pytest.raises(normix.NormixFileError, match="fields"):
        _io.loads(_repack(good_bytes, drop_field))

    def wrong_shape(h):
        h["arrays"][0]["shape"] = [3]

    with pytest.raises(normix.NormixFileError, match="declared shape"):
        _io.loads(_repack(good_bytes, wrong_shape))

    def newer(h):
        h["format_version"] = _io.FORMAT_VERSION + 1

    with pytest.raises(normix.NormixFileError, match="Upgrade normix"):
        _io.loads(_repack(good_bytes, newer))

    def nan_payload(p):
        p[0:8] = struct.pack("<d", float("nan"))

    with pytest.raises(normix.NormixFileError, match="non-finite"):
        _io.loads(_repack(good_bytes, edit_payload=nan_payload))

    def bad_entry(h):
        h["tree"]["fields"][next(iter(h["tree"]["fields"]))] = {"t": "pickle", "v": "..."}

    with pytest.raises(normix.NormixFileError, match="unknown entry"):
        _io.loads(_repack(good_bytes, bad_entry))

    # the unmodified file still loads
    _io.loads(_repack(good_bytes))


def test_save_refuses_what_it_cannot_restore(tmp_path):
    class Local(eqx.Module):
        a: jax.Array

    with pytest.raises(TypeError, match="only classes of the normix package"):
        normix.save(tmp_path / "l.nx", Local(jnp.ones(2)))
    with pytest.raises(TypeError, match="expected a normix model"):
        normix.save(tmp_path / "l.nx", {"a": 1})
    good = normix.MultivariateNormal(jnp.zeros(2), jnp.eye(2))
    bad = eqx.tree_at(lambda m: m.mu, good, jnp.asarray([jnp.nan, 0.0]))
    with pytest.raises(ValueError, match="non-finite"):
        normix.save(tmp_path / "n.nx", bad)
    assert not (tmp_path / "n.nx").exists()


def test_file_from_before_an_added_setting_loads_with_its_default():
    """A `FiniteMixture` saved before `feature_cache_bytes` existed (no such field in the
    file) loads with the setting's default; any other missing field is still an error."""
    gauss = normix.GaussianComponents.from_covariances(
        jnp.asarray([[0.0, 0.0], [1.0, 2.0]]), jnp.broadcast_to(jnp.eye(2), (2, 2, 2)), "full"
    )
    model = normix.FiniteMixture(jnp.asarray([0.5, 0.5]), gauss, feature_cache_bytes=123)
    data = _io.dumps(model)

    def older(h):
        del h["tree"]["fields"]["feature_cache_bytes"]

    loaded = _io.loads(_repack(data, older))
    assert loaded.feature_cache_bytes == 2**30
    np.testing.assert_array_equal(loaded.weights, model.weights)
    assert _io.loads(data).feature_cache_bytes == 123

    def no_weights(h):
        del h["tree"]["fields"]["weights"]

    with pytest.raises(normix.NormixFileError, match="fields"):
        _io.loads(_repack(data, no_weights))
