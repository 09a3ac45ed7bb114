"""The mixture sampled by position (flan_tune.mixtures.sampling): rates, one visit per
example per pass, determinism, and any position at the cost of the first."""

import collections
import time

import numpy as np
import pytest

from flan_tune.errors import MixtureError
from flan_tune.mixtures.sampling import MixtureSampler, sampler_for, slot_counts


def draws(sampler, start, count):
  return [sampler[i] for i in range(start, start + count)]


def test_members_are_drawn_at_their_rates():
  rates, sizes = [0.5, 0.3, 0.15, 0.05], [400, 300, 200, 100]
  sampler = MixtureSampler(rates, sizes, seed=0)
  counts = collections.Counter(d.member for d in draws(sampler, 0, sampler.period))
  assert [counts[m] / sampler.period for m in range(4)] == pytest.approx(rates, abs=2e-3)
  # Over a stretch shorter than a period the shares hold too: the interleaving is random.
  counts = collections.Counter(d.member for d in draws(sampler, 12_345, 4000))
  assert [counts[m] / 4000 for m in range(4)] == pytest.approx(rates, abs=0.03)


def test_every_example_once_per_pass():
  """A period is one pass over the mixture: each member's examples come once each in
  it, and the next period is the next pass, in another order."""
  sizes = [500, 300, 200]  # examples-proportional rates: a period is exactly one pass
  sampler = MixtureSampler([s / 1000 for s in sizes], sizes, seed=1)
  assert sampler.period == sum(sizes)
  first = draws(sampler, 0, sampler.period)
  second = draws(sampler, sampler.period, sampler.period)
  for member, size in enumerate(sizes):
    for pass_draws, epoch in ((first, 0), (second, 1)):
      mine = [d for d in pass_draws if d.member == member]
      assert sorted(d.example for d in mine) == list(range(size))
      assert {d.epoch for d in mine} == {epoch}
    assert ([d.example for d in first if d.member == member] !=
            [d.example for d in second if d.member == member])


def test_unshuffled_members_read_in_order():
  sampler = MixtureSampler([1, 1], [5, 3], seed=2, shuffle=False)
  zero = [d for d in draws(sampler, 0, sampler.period) if d.member == 0]
  assert sorted((d.epoch, d.example) for d in zero)[:5] == [(0, i) for i in range(5)]


def test_same_seed_same_draws_other_seed_differs():
  members, sampler = sampler_for({"b": 0.25, "a": 0.75}, {"a": 10, "b": 10}, seed=3)
  assert members == ["a", "b"]
  again = sampler_for({"a": 0.75, "b": 0.25}, {"b": 10, "a": 10}, seed=3)[1]
  other = sampler_for({"a": 0.75, "b": 0.25}, {"a": 10, "b": 10}, seed=4)[1]
  assert draws(sampler, 0, 200) == draws(again, 0, 200)
  assert draws(sampler, 0, 200) != draws(other, 0, 200)


def test_a_far_position_costs_what_the_first_does():
  sampler = MixtureSampler(np.full(10_000, 1e-4), np.full(10_000, 300), seed=5)
  start = time.perf_counter()
  far = draws(sampler, 10**15, 2000)
  far_s = time.perf_counter() - start
  start = time.perf_counter()
  draws(sampler, 0, 2000)
  near_s = time.perf_counter() - start
  assert far_s < 3 * near_s + 0.05, (far_s, near_s)
  assert min(d.epoch for d in far) > 10**8


def test_slot_counts_keep_every_member():
  counts = slot_counts([1.0, 1e-9], period=1000)
  assert counts.tolist() == [999, 1] and counts.sum() == 1000
  with pytest.raises(MixtureError, match="positive and finite"):
    slot_counts([1.0, 0.0], period=10)
  with pytest.raises(MixtureError, match="has no examples"):
    MixtureSampler([1, 1], [3, 0], seed=0)
