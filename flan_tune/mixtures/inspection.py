"""What `flan-tune inspect` reports: rendered samples and mixture statistics.

Every figure comes from the real seqio pipeline: rendered and tokenized (untrimmed, so
truncation can be counted). Packing counts rows of whichever packer training would use
(`training.input_stats.training_packing` chooses); this stage has seqio's.
"""

import dataclasses
from typing import List, Mapping, Optional

import numpy as np
import seqio

from flan_tune.tasks import registry


@dataclasses.dataclass
class TaskStats:
  name: str
  rate: float
  share: float
  num_examples: Optional[int]
  inputs_lengths: np.ndarray
  targets_lengths: np.ndarray
  truncated_inputs: int
  truncated_targets: int


@dataclasses.dataclass
class PackingStats:
  examples: int
  packed_rows: int
  inputs_fill: float
  targets_fill: float

  @property
  def examples_per_row(self) -> float:
    return self.examples / max(self.packed_rows, 1)


def rendered_examples(task_name: str, split: str, count: int,
                      feature_lengths: Mapping[str, int]) -> List[dict]:
  """The first `count` examples as the task renders them, tokenized but not trimmed
  (few-shot prompts are still pruned to `feature_lengths`), so one pass gives both the
  samples to show and the lengths that would be truncated."""
  task = seqio.get_mixture_or_task(task_name)
  if registry.get_variant(task_name) is None:  # not ours: seqio's own pipeline, untrimmed
    ds = task.get_dataset(sequence_length=dict(feature_lengths), split=split, shuffle=False,
                          trim_output_features=False)
    examples = list(ds.take(count).as_numpy_iterator())
    for example in examples:  # e.g. span corruption keeps no text: show the decoded ids
      for name, feature in task.output_features.items():
        if name in example and f"{name}_pretokenized" not in example:
          example[f"{name}_pretokenized"] = feature.vocabulary.decode(example[name].tolist())
    return examples
  render, *_ = task.preprocessors
  ds = task.source.get_dataset(split=split, shuffle=False).take(count)
  ds = render(ds, sequence_length=dict(feature_lengths), output_features=task.output_features)
  ds = seqio.preprocessors.tokenize(ds, task.output_features, copy_pretokenized=True)
  ds = seqio.preprocessors.append_eos(ds, task.output_features)
  return list(ds.as_numpy_iterator())


def task_stats(task_name: str, rate: float, share: float, split: str,
               examples: List[dict], feature_lengths: Mapping[str, int]) -> TaskStats:
  """Length statistics (EOS included) of rendered examples."""
  task = seqio.get_mixture_or_task(task_name)
  inputs = np.array([len(e["inputs"]) for e in examples], dtype=np.int64)
  targets = np.array([len(e["targets"]) for e in examples], dtype=np.int64)
  try:
    count = task.num_input_examples(split)
  except Exception:  # sources that cannot count without reading everything
    count = None
  return TaskStats(task_name, rate, share, count, inputs, targets,
                   int((inputs > feature_lengths["inputs"]).sum()),
                   int((targets > feature_lengths["targets"]).sum()))


def mixture_examples(members: Mapping[str, float], split: str,
                     feature_lengths: Mapping[str, int], examples: int, seed: int = 0):
  """The first `examples` of the members sampled at their rates by seqio (tf.data)."""
  provider = seqio.Mixture("inspection", sorted(members.items()))
  # Members in source order (no shuffle buffer to fill: seqio's would render ~1000
  # examples per member before the first packed row); the seed drives the sampling.
  ds = provider.get_dataset(sequence_length=dict(feature_lengths), split=split, shuffle=False,
                            seed=seed, num_epochs=None)
  return ds.take(examples)


def count_packed(packed_rows, examples: int, feature_lengths: Mapping[str, int]) -> PackingStats:
  """Rows and non-padding fractions of packed rows ({feature: ids} each)."""
  rows = enc = dec = 0
  for row in packed_rows:
    rows += 1
    enc += int((row["encoder_input_tokens"] != 0).sum())
    dec += int((row["decoder_target_tokens"] != 0).sum())
  return PackingStats(examples, rows, enc / max(rows * feature_lengths["inputs"], 1),
                      dec / max(rows * feature_lengths["targets"], 1))


def seqio_packing_stats(ds, examples: int, feature_lengths: Mapping[str, int]) -> PackingStats:
  """`ds` packed by seqio's EncDecFeatureConverter(pack=True)."""
  packed = seqio.EncDecFeatureConverter(pack=True)(ds, dict(feature_lengths))
  return count_packed(packed.as_numpy_iterator(), examples, feature_lengths)


def percentiles(lengths: np.ndarray) -> str:
  if not len(lengths):
    return "-"
  p50, p90, p99 = np.percentile(lengths, [50, 90, 99])
  return f"{p50:.0f}/{p90:.0f}/{p99:.0f}/{lengths.max()}"


def format_stats_table(stats: List[TaskStats], feature_lengths: Mapping[str, int]) -> str:
  header = ("task", "capped rate", "share", "examples", "inputs p50/p90/p99/max",
            "targets p50/p90/p99/max", f">{feature_lengths['inputs']} in",
            f">{feature_lengths['targets']} tgt")
  rows = [header]
  for s in stats:
    rows.append((s.name, f"{s.rate:.6g}", f"{100 * s.share:.1f}%",
                 "?" if s.num_examples is None else str(s.num_examples),
                 percentiles(s.inputs_lengths), percentiles(s.targets_lengths),
                 f"{s.truncated_inputs}/{len(s.inputs_lengths)}",
                 f"{s.truncated_targets}/{len(s.targets_lengths)}"))
  return format_columns(rows)


def format_columns(rows: List[tuple]) -> str:
  """A fixed-width table: the first row a header underlined, the first column left
  aligned, the others right aligned."""
  widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                     enumerate(zip(r, widths))) for r in rows]
  lines.insert(1, "-" * len(lines[0]))
  return "\n".join(lines)


def shares_by(members: Mapping[str, float], key: str) -> List[tuple]:
  """Mixture share summed by `cluster`, `style` or `collection`, largest first, with
  the number of instruction tasks in each group."""
  totals, tasks = {}, {}
  for member, share in members.items():
    variant = registry.get_variant(member)
    if variant is None:
      group, task = "(not an instruction task)", member
    else:
      group = {"cluster": variant.task.cluster, "style": variant.style.value,
               "collection": variant.task.collection}[key]
      task = variant.task.name
    totals[group] = totals.get(group, 0.0) + share
    tasks.setdefault(group, set()).add(task)
  return sorted(((g, totals[g], len(tasks[g])) for g in totals), key=lambda r: (-r[1], r[0]))


def format_shares(rows: List[tuple], key: str) -> str:
  width = max([len(key)] + [len(g) for g, _, _ in rows])
  lines = [f"{key.ljust(width)}  share  tasks"]
  lines += [f"{g.ljust(width)}  {100 * s:4.1f}%  {n:5d}" for g, s, n in rows]
  return "\n".join(lines)
