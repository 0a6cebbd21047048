"""The abstract/final design rule, enforced over every `eqx.Module` class in `normix`:

1. a class's name starts with `Abstract` iff it has abstract methods or `eqx.AbstractVar`s;
2. no concrete class has subclasses;
3. no class redefines a method that a base class already implements concretely
   (implementing an abstract method is fine).
"""

from __future__ import annotations

import importlib
import pkgutil

import equinox as eqx
import pytest

import normix


def _import_all_modules(package: str = "normix", path=None) -> list[str]:
    """Import every submodule; return the failures (reported by a test, not at collection)."""
    errors = []
    for info in pkgutil.iter_modules(normix.__path__ if path is None else path, package + "."):
        try:
            module = importlib.import_module(info.name)
        except Exception as e:  # noqa: BLE001 - reported by test_every_module_imports
            errors.append(f"{info.name}: {type(e).__name__}: {e}")
            continue
        if info.ispkg:
            errors += _import_all_modules(info.name, module.__path__)
    return errors


def _normix_modules() -> list[type]:
    seen, stack, out = set(), [eqx.Module], []
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
                if sub.__module__ == "normix" or sub.__module__.startswith("normix."):
                    out.append(sub)
    return sorted(out, key=lambda c: (c.__module__, c.__qualname__))


def _is_abstract(cls: type) -> bool:
    return bool(
        getattr(cls, "__abstractmethods__", frozenset())
        or getattr(cls, "__abstractvars__", frozenset())
        or getattr(cls, "__abstractclassvars__", frozenset())
    )


def _is_method(value: object) -> bool:
    return callable(value) or isinstance(value, (classmethod, staticmethod, property))


def _checked_name(name: str) -> bool:
    return not (name.startswith("__") and name.endswith("__")) or name == "__call__"


IMPORT_ERRORS = _import_all_modules()
CLASSES = _normix_modules()


def test_every_module_imports():
    assert not IMPORT_ERRORS, "\n".join(IMPORT_ERRORS)


def test_registry_is_not_empty():
    names = {c.__name__ for c in CLASSES}
    assert {"AbstractExponentialFamily", "Gamma", "MultivariateNormal"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_abstract_iff_named_abstract(cls):
    abstract = _is_abstract(cls)
    named = cls.__name__.startswith("Abstract") or cls.__name__.startswith("_Abstract")
    if abstract and not named:
        pending = sorted(
            set(getattr(cls, "__abstractmethods__", ()))
            | set(getattr(cls, "__abstractvars__", ()))
            | set(getattr(cls, "__abstractclassvars__", ()))
        )
        pytest.fail(
            f"{cls.__qualname__} is abstract (unimplemented: {pending}) "
            "but its name does not start with 'Abstract'."
        )
    if named and not abstract:
        hint = ""
        strings = [a for a in vars(cls).get("__annotations__", {}).values() if isinstance(a, str)]
        if any("AbstractVar[" in a or "AbstractClassVar[" in a for a in strings):
            hint = (
                " Note: its eqx.AbstractVar/AbstractClassVar annotations are strings (from "
                "`from __future__ import annotations`), which equinox does not recognise as "
                "abstract (they silently become ordinary fields); drop the __future__ import "
                "in that module or use an abstract method/property."
            )
        pytest.fail(f"{cls.__qualname__} is named Abstract* but has no abstract members.{hint}")


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_concrete_classes_are_final(cls):
    if _is_abstract(cls):
        return
    subs = [s for s in cls.__subclasses__() if s in CLASSES]
    assert not subs, f"concrete {cls.__qualname__} has subclasses {subs}; use composition."


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_no_concrete_method_is_overridden(cls):
    bad = []
    for name, value in vars(cls).items():
        if not (_checked_name(name) and _is_method(value)):
            continue
        for base in cls.__mro__[1:]:
            if base is eqx.Module or not issubclass(base, eqx.Module) or name not in vars(base):
                continue
            if not getattr(vars(base)[name], "__isabstractmethod__", False):
                bad.append(f"{name} (implemented in {base.__qualname__})")
            break
    assert not bad, f"{cls.__qualname__} overrides concrete methods: {bad}"
