"""What `flan-tune inspect` reports for a mixture that training reads through Grain.

The mixture is sampled the way training samples it (the same sampler and seed), each
draw rendered and tokenized the way training does, and the draws packed by training's
own packer at the chosen lengths. The cost grows with the number of draws, not with
the number of members, so a collection of thousands of tasks is inspected at full size.
"""

import dataclasses
from typing import Callable, List, Mapping

import numpy as np

from flan_tune.mixtures import inspection
from flan_tune.mixtures.inspection import PackingStats, format_columns, percentiles
from flan_tune.tasks.render import Rendered
from flan_tune.training import grain_input, input_pipeline, tfdata_input
from flan_tune.training.grain_input import Plan, TokenizeExample, trimmed_ids


@dataclasses.dataclass
class MixtureSample:
  """`count` draws from the start of the mixture: each draw's member and untrimmed
  lengths (EOS included), and the first few rendered."""
  plan: Plan
  members: np.ndarray
  inputs: np.ndarray
  targets: np.ndarray
  rows: List[tuple]            # (inputs ids, targets ids) trimmed, for packing
  shown: List[tuple]           # (member name, Rendered) of the first draws


def sample_mixture(plan: Plan, count: int, show: int = 0) -> MixtureSample:
  tokenize = TokenizeExample(plan.members, plan.lengths)
  members, inputs, targets, rows, shown = [], [], [], [], []
  for position in range(count):
    draw = plan.sampler[position]
    rendered: Rendered = tokenize.render(draw)
    member = plan.members[draw.member]
    ids = [member.tokenizer.encode(rendered.inputs), member.tokenizer.encode(rendered.targets)]
    members.append(draw.member)
    inputs.append(len(ids[0]) + 1)
    targets.append(len(ids[1]) + 1)
    rows.append((trimmed_ids(ids[0], member.tokenizer, plan.lengths["inputs"]),
                 trimmed_ids(ids[1], member.tokenizer, plan.lengths["targets"])))
    if position < show:
      shown.append((member.name, rendered))
  return MixtureSample(plan, np.asarray(members), np.asarray(inputs), np.asarray(targets),
                       rows, shown)


def lengths_table(sample: MixtureSample, group_of: Callable[[grain_input.Member], str],
                  title: str) -> str:
  """Length percentiles and truncation per group of members (EOS included)."""
  lengths = sample.plan.lengths
  groups = np.asarray([group_of(m) for m in sample.plan.members], dtype=object)
  drawn_groups = groups[sample.members] if len(sample.members) else np.zeros(0, object)
  header = (title, "draws", "inputs p50/p90/p99/max", "targets p50/p90/p99/max",
            f">{lengths['inputs']} in", f">{lengths['targets']} tgt")
  table = [header]
  for group in sorted(set(drawn_groups.tolist())) + ["all"]:
    mask = np.ones(len(drawn_groups), bool) if group == "all" else drawn_groups == group
    inputs, targets = sample.inputs[mask], sample.targets[mask]
    table.append((group, str(int(mask.sum())), percentiles(inputs), percentiles(targets),
                  f"{100 * np.mean(inputs > lengths['inputs']):.1f}%",
                  f"{100 * np.mean(targets > lengths['targets']):.1f}%"))
  return format_columns(table)


def packing_stats(sample: MixtureSample) -> PackingStats:
  """The draws packed as training packs them: best fit within windows of the plan's size."""
  pack = grain_input.PackWindow(sample.plan.lengths, pack=True)
  window = sample.plan.window
  windows = (pack(sample.rows[start:start + window])
             for start in range(0, len(sample.rows), window))
  rows = ({name: packed[name][row] for name in packed}
          for packed in windows for row in range(len(packed["encoder_input_tokens"])))
  return inspection.count_packed(rows, len(sample.rows), sample.plan.lengths)


def training_packing(cfg: input_pipeline.TrainInput, members: Mapping[str, float],
                     examples: int) -> tuple[PackingStats, str]:
  """The first `examples` of `members` ({seqio task: rate}) sampled and packed as training
  would, and the packer's name: best fit in windows on the Grain path, streaming best fit
  on the tf.data path, or seqio's converter under `TrainInput.packer="seqio"`."""
  lengths = dict(cfg.task_feature_lengths)
  plan, _ = input_pipeline.grain_plan(cfg, members)
  if plan is not None:
    return (packing_stats(sample_mixture(plan, examples)),
            f"training's best-fit packer (Grain, windows of {plan.window})")
  ds = inspection.mixture_examples(members, cfg.split, lengths, examples, cfg.seed)
  if cfg.packer == "seqio":
    return (inspection.seqio_packing_stats(ds, examples, lengths),
            "seqio's EncDecFeatureConverter(pack=True), as TrainInput.packer='seqio' does")
  packed = tfdata_input.pack_dataset(ds, lengths).as_numpy_iterator()
  return (inspection.count_packed(packed, examples, lengths),
          "training's best-fit packer (tf.data, streaming)")
