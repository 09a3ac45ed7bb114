"""FLAN-style mixtures: per-collection caps and weights, prompt-style weights, and
leave-one-cluster-out training mixtures with their held-out evaluation mixtures.

Rates are computed here, from real example counts (`num_input_examples` of each
task's source), into one flat seqio Mixture, so `flan-tune inspect` shows exactly the
rates seqio samples with.

When a task runs out: training streams repeat every task (`num_epochs=None`), so no
task runs out. For finite passes (`num_epochs=1`), `on_exhausted` decides: "continue"
(the default) keeps sampling the remaining tasks until all are exhausted, so every
example is seen once; "stop" ends the mixture at the first exhausted task, seqio's own
default, which drops the tail of every larger task.
"""

import dataclasses
import difflib
import functools
from typing import Dict, List, Mapping, Optional, Sequence

import seqio
import tensorflow as tf

from flan_tune.errors import MixtureError, RegistrationError
from flan_tune.mixtures import rates as rates_lib
from flan_tune.tasks import registry
from flan_tune.tasks.templates import PromptStyle

# The FLAN 2022 recipe weighs the four standard styles equally; chain-of-thought and
# inverted prompts are smaller augmentations.
DEFAULT_STYLE_WEIGHTS = {
    "zs_opt": 1.0, "zs_noopt": 1.0, "fs_opt": 1.0, "fs_noopt": 1.0,
    "zs_cot": 0.25, "fs_cot": 0.25, "zs_inv": 0.25, "fs_inv": 0.0,
}
EVAL_STYLES = ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt")
ON_EXHAUSTED = ("continue", "stop")


@dataclasses.dataclass(frozen=True)
class MixtureSpec:
  """How to weigh tasks. Weights are relative; zero style weights leave a style out."""
  collection_weights: Optional[Mapping[str, float]] = None  # default: equal
  caps: Optional[Mapping[str, int]] = None                  # per collection; default none
  style_weights: Mapping[str, float] = dataclasses.field(
      default_factory=lambda: dict(DEFAULT_STYLE_WEIGHTS))
  temperature: float = 1.0
  split: str = "train"
  on_exhausted: str = "continue"


def is_registered(name: str) -> bool:
  """Whether seqio has a mixture or task of that name."""
  return name in seqio.MixtureRegistry.names() or name in seqio.TaskRegistry.names()


def registered_provider(name: str, binding: str) -> seqio.DatasetProviderBase:
  """The registered mixture or task; an unknown name is an error naming `binding` (the
  flag or gin parameter that gave it) and the closest registered names."""
  if not is_registered(name):
    known = list(seqio.MixtureRegistry.names()) + list(seqio.TaskRegistry.names())
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else (
        "; is the module that registers it imported (e.g. flan_tune_tasks.offline)?")
    raise MixtureError(f"{binding}={name!r} is not a registered seqio mixture or task{hint}")
  return seqio.get_mixture_or_task(name)


_RATES: Dict[str, Dict[str, float]] = {}
_CAPPED: Dict[str, Dict[str, float]] = {}  # per mixture: each member's capped rate


def _sample_fn(on_exhausted: str):
  return functools.partial(tf.data.Dataset.sample_from_datasets,
                           stop_on_empty_dataset=on_exhausted == "stop")


def compute_rates(name: str, task_names: Sequence[str], spec: MixtureSpec) -> Dict[str, float]:
  """Per seqio-task rates (summing to 1) for the given instruction tasks."""
  return _compute(name, task_names, spec)[0]


def _compute(name: str, task_names: Sequence[str], spec: MixtureSpec):
  if spec.on_exhausted not in ON_EXHAUSTED:
    raise MixtureError(f"mixture {name!r}: on_exhausted must be one of {ON_EXHAUSTED}, "
                       f"got {spec.on_exhausted!r}")
  if not task_names:
    raise MixtureError(f"mixture {name!r} has no tasks")
  for style, weight in spec.style_weights.items():
    PromptStyle(style)  # raises on unknown style names
    if weight < 0:
      raise MixtureError(f"mixture {name!r}: style weight {style}={weight} is negative")
  tasks = [_lookup(name, t) for t in task_names]
  collections = sorted({t.collection for t in tasks})
  collection_weights = dict(spec.collection_weights or {c: 1.0 for c in collections})
  for collection in collections:
    weight = collection_weights.get(collection)
    if weight is None:
      raise MixtureError(f"mixture {name!r}: no weight for collection {collection!r}; "
                         f"weights given for {sorted(collection_weights)}")
    if weight <= 0:
      raise MixtureError(f"mixture {name!r}: collection {collection!r} has weight {weight}; "
                         "weights must be positive (leave the collection out instead)")
  groups, style_weight = {}, {}
  for task in tasks:
    count = task.source.num_input_examples(spec.split)
    if not count:
      raise MixtureError(f"mixture {name!r}: task {task.name!r} has {count} examples in "
                         f"split {spec.split!r}, so its rate would be zero")
    cap = (spec.caps or {}).get(task.collection)
    raw = rates_lib.capped_rate(count, cap, spec.temperature)
    for variant in registry.variants_of(task.name):
      weight = spec.style_weights.get(variant.style.value, 0.0)
      if weight == 0:
        continue
      group = (task.collection, variant.style.value)
      groups.setdefault(group, {})[variant.seqio_name] = raw
      style_weight[group] = weight
  if not groups:
    raise MixtureError(f"mixture {name!r}: every prompt style of its tasks has weight zero")
  # A collection's weight is split over the styles its tasks actually have.
  styles_total = {}
  for (collection, _), weight in style_weight.items():
    styles_total[collection] = styles_total.get(collection, 0.0) + weight
  group_weights = {group: collection_weights[group[0]] * weight / styles_total[group[0]]
                   for group, weight in style_weight.items()}
  capped = {member: raw for members in groups.values() for member, raw in members.items()}
  return rates_lib.hierarchical_rates(groups, group_weights), capped


def _lookup(mixture: str, task_name: str):
  try:
    return registry.get_task(task_name)
  except RegistrationError:
    close = difflib.get_close_matches(task_name, registry.task_names(), n=3)
    hint = f"; did you mean {close}?" if close else ""
    raise MixtureError(f"mixture {mixture!r} names unknown task {task_name!r}{hint}") from None


def register_mixture(name: str, task_names: Sequence[str],
                     spec: Optional[MixtureSpec] = None) -> seqio.Mixture:
  """Registers a flat seqio Mixture of every weighted prompt style of the tasks."""
  spec = spec or MixtureSpec()
  if is_registered(name):
    raise MixtureError(f"mixture {name!r} is already registered")
  rates, capped = _compute(name, task_names, spec)
  mixture = seqio.MixtureRegistry.add(name, sorted(rates.items()),
                                      sample_fn=_sample_fn(spec.on_exhausted))
  _RATES[name], _CAPPED[name] = rates, capped
  return mixture


def register_eval_mixture(name: str, task_names: Sequence[str],
                          styles: Sequence[str] = EVAL_STYLES) -> seqio.Mixture:
  """A mixture for evaluation: every listed style of each task, equal rates.

  It includes the rank-classification variants (`..._rank`) of tasks with options.
  """
  if is_registered(name):
    raise MixtureError(f"mixture {name!r} is already registered")
  members = [v.seqio_name for t in task_names
             for v in registry.variants_of(_lookup(name, t).name, scoring=None)
             if v.style.value in styles]
  if not members:
    raise MixtureError(f"evaluation mixture {name!r}: its tasks have none of the styles {styles}")
  rates = {m: 1.0 / len(members) for m in members}
  _RATES[name] = rates
  return seqio.MixtureRegistry.add(name, sorted(rates.items()),
                                   sample_fn=_sample_fn("continue"))


def register_held_out_mixtures(prefix: str, task_names: Sequence[str],
                               spec: Optional[MixtureSpec] = None,
                               eval_styles: Sequence[str] = EVAL_STYLES) -> Dict[str, tuple]:
  """For each cluster C: `{prefix}_no_{C}` (train on the rest) and `{prefix}_{C}_eval`.

  Returns {cluster: (training mixture name, evaluation mixture name)}.
  """
  by_cluster: Dict[str, List[str]] = {}
  for task_name in task_names:
    by_cluster.setdefault(_lookup(prefix, task_name).cluster, []).append(task_name)
  if len(by_cluster) < 2:
    raise MixtureError(f"held-out mixtures {prefix!r} need tasks in at least two clusters, "
                       f"got {sorted(by_cluster)}")
  names = {}
  for cluster, held_out in sorted(by_cluster.items()):
    train = [t for t in task_names if t not in held_out]
    train_name, eval_name = f"{prefix}_no_{cluster}", f"{prefix}_{cluster}_eval"
    register_mixture(train_name, train, spec)
    register_eval_mixture(eval_name, held_out, eval_styles)
    names[cluster] = (train_name, eval_name)
  return names


def mixture_rates(name: str) -> Dict[str, float]:
  """The rates flan-tune computed for a mixture, or seqio's for one registered elsewhere."""
  if name in _RATES:
    return dict(_RATES[name])
  mixture = seqio.get_mixture_or_task(name)
  if isinstance(mixture, seqio.Task):
    return {name: 1.0}
  raw = {t.name: float(mixture.get_rate(t)) for t in mixture.tasks}
  return rates_lib.normalize(raw)


def capped_rates(name: str) -> Dict[str, float]:
  """Each member's min(cap, examples) ** (1/T) before weighting; empty if not ours."""
  return dict(_CAPPED.get(name, {}))


def unregister_mixture(name: str) -> None:
  seqio.MixtureRegistry.remove(name)
  for table in (_RATES, _CAPPED):
    table.pop(name, None)
