"""Shared fixtures: small data written by the tests, tasks registered and removed."""

import itertools
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
