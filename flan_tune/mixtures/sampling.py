"""A mixture sampled by position: which member, which example and which pass over that
member's examples sit at position g of the training stream.

Every position is computed directly, in O(log members), so any worker can take any
position and a restart at position 10**9 costs what one at 0 does; nothing is buffered
per member.

The stream is cut into periods. In each period member m owns c_m = round(rate_m * period)
slots (largest remainder, at least one): the slots [start_m, start_m + c_m). The period
is as long as one pass over the mixture allows, min_m(n_m / rate_m) for members of n_m
examples, so that no member has more slots than examples (a longer one would mix
passes at random within a period), but at least 64 slots per member on average, so that
rounding to whole slots keeps every rate within about 1%. Position p of period b is slot perm_b(p), a seeded
permutation of the period (Grain's `index_shuffle`, a keyed bijection), so members
interleave at random in the mixture's proportions. The slot is m's occurrence
o = b * c_m + (slot - start_m); the occurrence is pass e = o // n_m over m's n_m
examples, and example perm_{m,e}(o mod n_m), permuted anew every pass when shuffling
(in order otherwise, with the members still interleaved at random, as seqio's unshuffled
mixtures are). So every example of a member is seen once per pass.
"""

import bisect
import collections
import dataclasses
import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
from grain.experimental import index_shuffle

from flan_tune.errors import MixtureError

LENGTH = 1 << 62  # the stream never ends; this stands for its length where one is needed
MIN_SLOTS_PER_MEMBER = 64
MAX_PERIOD = (1 << 31) - 1
_ROUNDS = 4
# index_shuffle walks cycles over at least 2**16 indices (~100 us for a few hundred);
# smaller members use a cached permutation instead.
_SMALL = 1 << 16
_CACHE_BUDGET = 1 << 23  # permutation entries kept per process (32 MiB)


def _seed32(*parts: int) -> int:
  payload = ",".join(str(int(p)) for p in parts).encode()
  return int.from_bytes(hashlib.blake2b(payload, digest_size=4).digest(), "little")


def period_length(rates: np.ndarray, sizes: np.ndarray) -> int:
  """One pass over the mixture (see the module docstring), within bounds."""
  rates = rates / rates.sum()
  one_pass = int(np.min(sizes / rates))
  return int(min(max(one_pass, MIN_SLOTS_PER_MEMBER * len(rates)), MAX_PERIOD))


def slot_counts(rates: Sequence[float], period: int) -> np.ndarray:
  """Slots per member in a period: largest-remainder rounding of rate * period, and at
  least one each, so no member with a positive rate is dropped."""
  rates = np.asarray(rates, np.float64)
  if not len(rates) or np.any(~np.isfinite(rates)) or np.any(rates <= 0):
    raise MixtureError(f"mixture rates must be positive and finite, got {rates.tolist()[:10]}")
  exact = rates / rates.sum() * period
  counts = np.maximum(np.floor(exact).astype(np.int64), 1)
  short = period - int(counts.sum())
  if short > 0:
    counts[np.argsort(-(exact - np.floor(exact)), kind="stable")[:short]] += 1
  return counts


@dataclasses.dataclass(frozen=True)
class Draw:
  member: int
  example: int
  epoch: int  # the pass over this member's examples


class MixtureSampler(Sequence):
  """`sampler[g]` is the Draw at position g of the stream (see the module docstring).

  Args:
    rates: each member's sampling rate (normalized here).
    sizes: each member's number of examples.
    seed: decides the interleaving and the per-pass example orders.
    shuffle: permute each member's examples anew every pass (else in order).
  """

  def __init__(self, rates: Sequence[float], sizes: Sequence[int], seed: int,
               shuffle: bool = True):
    if len(rates) != len(sizes):
      raise MixtureError(f"{len(rates)} rates for {len(sizes)} members")
    self.sizes = np.asarray(sizes, np.int64)
    if np.any(self.sizes < 1):
      empty = int(np.flatnonzero(self.sizes < 1)[0])
      raise MixtureError(f"mixture member {empty} has no examples")
    self.counts = slot_counts(rates, period_length(np.asarray(rates, np.float64), self.sizes))
    self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
    self.period = int(self.counts.sum())
    # Python lists: indexing them is ~10x cheaper than numpy scalars, per position.
    self._starts, self._counts = self.starts.tolist(), self.counts.tolist()
    self._sizes = self.sizes.tolist()
    self.seed, self.shuffle = int(seed), shuffle

  def __len__(self) -> int:
    return LENGTH

  def __getitem__(self, position: int) -> Draw:
    if not 0 <= position < LENGTH:
      raise IndexError(position)
    period, offset = divmod(int(position), self.period)
    slot = index_shuffle(offset, max_index=self.period - 1,
                         seed=_seed32(self.seed, period), rounds=_ROUNDS)
    member = bisect.bisect_right(self._starts, slot) - 1
    occurrence = period * self._counts[member] + slot - self._starts[member]
    size = self._sizes[member]
    epoch, index = divmod(occurrence, size)
    if self.shuffle and size > 1:
      index = _permuted(index, size, _seed32(self.seed, member, epoch))
    return Draw(member, int(index), int(epoch))


def _permuted(index: int, size: int, seed: int) -> int:
  """Position `index` of a seeded permutation of range(size)."""
  if size >= _SMALL:
    return index_shuffle(index, max_index=size - 1, seed=seed, rounds=_ROUNDS)
  key = (size, seed)
  permutation = _PERMUTATIONS.get(key)
  if permutation is None:
    permutation = np.random.default_rng(seed).permutation(size).astype(np.int32)
    _PERMUTATIONS[key] = permutation
    _PERMUTATIONS.entries += size
    while _PERMUTATIONS.entries > _CACHE_BUDGET:
      _, dropped = _PERMUTATIONS.popitem(last=False)
      _PERMUTATIONS.entries -= len(dropped)
  else:
    _PERMUTATIONS.move_to_end(key)
  return int(permutation[index])


class _Permutations(collections.OrderedDict):
  entries = 0


_PERMUTATIONS = _Permutations()


def sampler_for(rates: Mapping[str, float], sizes: Mapping[str, int], seed: int,
                shuffle: bool = True) -> tuple[list[str], MixtureSampler]:
  """Members (sorted by name, so the order never depends on registration) and their
  sampler."""
  members = sorted(rates)
  return members, MixtureSampler([rates[m] for m in members], [sizes[m] for m in members],
                                 seed, shuffle)
