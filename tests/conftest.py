"""Shared fixtures: small data written by the tests, tasks registered and removed."""

import itertools
import json
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One JAX persistent compilation cache for the whole run: the xdist workers and every
# `flan-tune` subprocess inherit it, so a program that several runs compile (the tiny
# model's train step, say) is compiled once. Created by the process that starts first.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="flan-tune-tests-xla-")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
# The tests' models are tiny: compiling is most of their time on CPU, and LLVM's
# optimisations only slow it down. Every subprocess inherits these flags too
# (training_runs.device_env adds the device count to them).
_FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if _FAST_COMPILE not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST_COMPILE}".strip()

import pytest  # noqa: E402
import seqio  # noqa: E402

from flan_tune.mixtures import builder  # noqa: E402
from flan_tune.tasks import registry  # noqa: E402

_counter = itertools.count()


@pytest.fixture
def unique():
  """A fresh name prefix per test, so registrations never collide."""
  return f"t{os.getpid()}_{next(_counter)}"


@pytest.fixture
def cleanup():
  """Collects task and mixture names and unregisters them after the test."""
  tasks, mixtures = [], []
  yield tasks, mixtures
  for name in mixtures:
    if name in seqio.MixtureRegistry.names():
      builder.unregister_mixture(name)
  registry.unregister(tasks)


def write_jsonl(path, rows):
  with open(path, "w") as f:
    for row in rows:
      f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
  return str(path)


def sentiment_rows(split, n):
  return [{"text": f"{split} review {i}: the {'good' if i % 2 else 'bad'} film",
           "label": "positive" if i % 2 else "negative",
           "why": f"it was {'good' if i % 2 else 'bad'}"} for i in range(n)]


def pytest_unconfigure(config):
  if _OWN_CACHE:
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
