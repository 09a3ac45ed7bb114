"""Seeds derived from content, so a rendering depends only on (seed, task, example).

Python's `hash()` is salted per process; blake2b is not. Deriving every random choice
from a digest of the example makes renderings independent of order, sharding, threads
and runs.
"""

import hashlib
import json
from typing import Any, Mapping

import numpy as np


def stable_digest(*parts: Any) -> int:
  """A 64-bit integer digest of JSON-serializable parts, equal across processes."""
  payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
  return int.from_bytes(hashlib.blake2b(payload.encode(), digest_size=8).digest(), "little")


def example_key(fields: Mapping[str, Any]) -> int:
  """Identity of an example by content: equal fields mean the same example."""
  return stable_digest({k: v for k, v in fields.items() if not k.startswith("_")})


def example_rng(seed: int, task_name: str, key: int, epoch: int = 0) -> np.random.Generator:
  """Epoch 0 keeps the seeding renderings had before epochs existed."""
  entropy = [seed, stable_digest(task_name), key] + ([epoch] if epoch else [])
  return np.random.default_rng(entropy)
