"""The ``slow`` marker cannot be forgotten: training or converting a Keras model fails a test that
is not marked ``@pytest.mark.slow`` (``scripts/test.sh --fast`` runs every test but those).

Guarded: ``keras.Model.fit`` (every training run goes through it), ``TFLiteConverter.from_keras_model``
and ``tf2onnx.convert.from_keras`` (every conversion of a Keras model). Each is wrapped when its module
is first imported (an import hook, so a test cannot import it around the guard) and raises
:class:`NotMarkedSlowError` while a test without the marker runs: ``tests/conftest.py`` sets
:data:`current` in the test process, and :data:`ENV` for the subprocesses the test starts, whose
Python imports this file as ``sitecustomize`` (conftest puts this folder on their ``PYTHONPATH``).
"""

from __future__ import annotations

import functools
import importlib.abc
import inspect
import os
import sys

ENV = "CIFAR_EDGE_TEST_NOT_SLOW"  # the id of the running test when it is not marked slow
#: the id of the test running in this process when it is not marked slow (None: anything goes)
current: str | None = None


class NotMarkedSlowError(AssertionError):
    """A test trained or converted a Keras model without the ``slow`` marker."""


def _guard(owner: type, name: str, what: str) -> None:
    static = inspect.getattr_static(owner, name)
    wrapper_type = type(static) if isinstance(static, (classmethod, staticmethod)) else None
    func = static.__func__ if wrapper_type else static
    if getattr(func, "_slow_guard", False):
        return

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        test = current or os.environ.get(ENV)
        if test:
            raise NotMarkedSlowError(f"{test} {what} but is not marked slow: add @pytest.mark.slow "
                                     "(scripts/test.sh --fast leaves slow tests out)")
        return func(*args, **kwargs)

    guarded._slow_guard = True
    setattr(owner, name, wrapper_type(guarded) if wrapper_type else guarded)


#: module -> what to wrap once it is imported
TARGETS = {
    "keras": lambda m: _guard(m.Model, "fit", "trains a Keras model"),
    "tensorflow.lite.python.lite": lambda m: _guard(m.TFLiteConverterV2, "from_keras_model",
                                                    "converts a Keras model to TFLite"),
    "tf2onnx.convert": lambda m: _guard(m, "from_keras", "converts a Keras model to ONNX"),
}


class _GuardOnImport(importlib.abc.MetaPathFinder):
    """Finds a :data:`TARGETS` module with the other finders and guards it right after it runs."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in TARGETS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_guard(module):
            exec_module(module)
            TARGETS[fullname](module)

        spec.loader.exec_module = exec_and_guard
        return spec


def install() -> None:
    """Guard the targets already imported and every one imported later (idempotent)."""
    if not any(isinstance(f, _GuardOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _GuardOnImport())
    for name, guard in TARGETS.items():
        if sys.modules.get(name) is not None:
            guard(sys.modules[name])


if os.environ.get(ENV):  # imported as sitecustomize by a subprocess of a test that is not marked slow
    install()
