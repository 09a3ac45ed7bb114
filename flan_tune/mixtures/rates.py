"""Mixing rates: FLAN's capped examples-proportional rule, with optional temperature."""

from typing import Mapping, Optional


def capped_rate(num_examples: int, cap: Optional[int] = None, temperature: float = 1.0) -> float:
  """min(cap, n) ** (1 / temperature): large tasks stop dominating above the cap."""
  if temperature <= 0:
    raise ValueError(f"temperature must be positive, got {temperature}")
  n = num_examples if cap is None else min(cap, num_examples)
  return float(n) ** (1.0 / temperature)


def normalize(weights: Mapping[str, float]) -> dict:
  total = sum(weights.values())
  return {k: v / total for k, v in weights.items()}


def hierarchical_rates(groups: Mapping[tuple, Mapping[str, float]],
                       group_weights: Mapping[tuple, float]) -> dict:
  """Final per-member rates summing to 1.

  Each group (a (collection, style) pair) receives its weight; inside a group members
  share it in proportion to their raw rates. seqio then samples with these rates as is.
  """
  weights = normalize(group_weights)
  rates = {}
  for group, members in groups.items():
    shares = normalize(members)
    for member, share in shares.items():
      rates[member] = rates.get(member, 0.0) + weights[group] * share
  return rates
