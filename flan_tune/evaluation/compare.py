"""`flan-tune compare`: one table, a row per task, of several models' evaluation results.

Models (a T5 baseline, FLAN-tuned checkpoints, a single-task fine-tune) are compared on the
same examples only: results on different splits, task sets or examples are refused unless
`intersect=True` keeps the tasks they share. Each non-baseline model gets its delta vs the
baseline with a 95% paired bootstrap interval (examples resampled with replacement, the same
draws for every model, so the interval reflects only the examples' variability), per task and
for the per-cluster, held-in, held-out and overall averages (also normalized, FLAN-style:
0 = chance, 100 = perfect).
"""

import argparse
import csv
import dataclasses
import io
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from flan_tune.errors import FlanTuneError
from flan_tune.evaluation.results import (OPTION_SHARE, EvalResults, ResultsError, load_all,
                                          normalize)

HELD_IN, HELD_OUT, MIXED = "held-in", "held-out", "mixed"
_SHOWN = 5            # differing names listed in an error message
_CHUNK = 4_000_000    # resampled indices drawn at once (bounds memory for big tasks)


@dataclasses.dataclass(frozen=True)
class Delta:
  """A model's difference from the baseline with its 95% bootstrap interval."""

  value: float
  low: float
  high: float


@dataclasses.dataclass(frozen=True)
class Row:
  """One task: what it is, and every model's primary score on it."""

  task: str
  family: str
  cluster: str
  style: str
  held: str                     # HELD_IN, HELD_OUT or MIXED (as the compared models record)
  primary_metric: str
  chance: float
  num_examples: int
  scores: dict[str, float]      # model -> primary metric (0-100)
  normalized: dict[str, float]  # model -> normalize(score, chance)
  deltas: dict[str, Delta]      # non-baseline model -> score delta vs the baseline
  option_share: dict[str, float]  # model -> % of answers that are an offered option


@dataclasses.dataclass(frozen=True)
class Aggregate:
  """A mean over a group of tasks: a cluster, the held-in or held-out tasks, or all."""

  kind: str                     # "cluster", "split" or "overall"
  name: str                     # cluster name, HELD_IN / HELD_OUT / MIXED, or "overall"
  held: str                     # for clusters: HELD_IN, HELD_OUT or MIXED; else the name
  tasks: int
  scores: dict[str, float]
  normalized: dict[str, float]
  deltas: dict[str, Delta]
  normalized_deltas: dict[str, Delta]
  chance: float                   # the mean chance level of its tasks
  option_share: dict[str, float]  # mean over its generation tasks with options (nan: none)


@dataclasses.dataclass(frozen=True)
class Comparison:
  models: list[str]             # in the order given; the baseline among them
  baseline: str
  split: str
  seed: int
  num_bootstrap: int
  rows: list[Row]               # sorted by cluster, then task
  aggregates: list[Aggregate]   # clusters (sorted), then held-in, held-out, mixed, overall
  dropped: list[str]            # tasks left out by intersect=True
  replicas: bool = False        # the non-baseline models are one recipe under several seeds

  @property
  def others(self) -> list[str]:
    return [model for model in self.models if model != self.baseline]


# -- checks ------------------------------------------------------------------------------------


def _names(items: Sequence[str]) -> str:
  """'a, b, c (and 4 more)': enough to find the problem without flooding the terminal."""
  items = sorted(items)
  shown = ", ".join(items[:_SHOWN])
  return shown + (f" (and {len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")


def _check_models(results: Sequence[EvalResults], baseline: str | None) -> str:
  if not results:
    raise ResultsError("no results to compare")
  names = [r.model for r in results]
  repeated = sorted({name for name in names if names.count(name) > 1})
  if repeated:
    raise ResultsError(f"model names must be unique, but {_names(repeated)} name more than "
                       "one results file; give each evaluated checkpoint a distinct `model` "
                       "name (e.g. t5-base, flan-t5-base-step2000)")
  if baseline is None:
    return names[0]
  if baseline not in names:
    raise ResultsError(f"baseline {baseline!r} is not among the models: {', '.join(names)}")
  return baseline


def _check_split(results: Sequence[EvalResults]) -> str:
  splits = {r.split for r in results}
  if len(splits) > 1:
    described = ", ".join(f"{r.model}: {r.split}" for r in results)
    raise ResultsError(f"results are on different splits ({described}); compare results of "
                       "one split (a different split cannot be intersected)")
  return splits.pop()


def _same_examples(results: Sequence[EvalResults], task: str) -> bool:
  first = results[0].tasks[task]
  return all(r.tasks[task].example_ids == first.example_ids
             and r.tasks[task].primary_metric == first.primary_metric for r in results[1:])


def _shared_tasks(results: Sequence[EvalResults], intersect: bool) -> tuple[list[str], list[str]]:
  """(tasks to compare, tasks dropped); refuses any mismatch unless intersect."""
  for r in results:
    for name, task in r.tasks.items():
      if len(task.example_ids) != len(task.example_scores):
        raise ResultsError(f"{r.model}: tasks.{name}: {len(task.example_ids)} example_ids but "
                           f"{len(task.example_scores)} example_scores")
  every = set().union(*(r.tasks for r in results))
  common = set.intersection(*(set(r.tasks) for r in results))
  differing = sorted(name for name in common if not _same_examples(results, name))
  kept = sorted(common - set(differing))
  dropped = sorted(every - set(kept))
  models = ", ".join(r.model for r in results)
  if dropped and not intersect:
    problems = []
    if every != common:
      lacking = "; ".join(f"{r.model} lacks {len(every - set(r.tasks))}" for r in results
                          if every - set(r.tasks))
      problems.append(f"{len(every - common)} task(s) are not in every results file "
                      f"({lacking}): {_names(every - common)}")
    if differing:
      problems.append(f"{len(differing)} shared task(s) have different examples, example order "
                      f"or primary metric: {_names(differing)}")
    raise ResultsError(f"results of {models} do not cover the same tasks and examples: "
                       f"{'; '.join(problems)}. Pass intersect=True (`flan-tune compare "
                       "--intersect`) to compare only the tasks they share")
  if not kept:
    raise ResultsError(f"results of {models} share no task with the same examples; nothing "
                       "to compare")
  return kept, dropped


def _held(flags: Sequence[bool]) -> str:
  return HELD_OUT if all(flags) else HELD_IN if not any(flags) else MIXED


# -- bootstrap ---------------------------------------------------------------------------------


def _resampled_deltas(rng: np.random.Generator, diffs: dict[str, np.ndarray], fallback:
                      dict[str, float], num_bootstrap: int) -> dict[str, np.ndarray]:
  """model -> (num_bootstrap,) means of per-example differences over resampled examples; the
  same example indices for every model (a task without examples gives its fixed delta)."""
  size = len(next(iter(diffs.values()))) if diffs else 0
  if size == 0 or not diffs:
    return {model: np.full(num_bootstrap, fallback[model]) for model in diffs}
  out = {model: np.empty(num_bootstrap) for model in diffs}
  step = max(1, _CHUNK // size)
  for start in range(0, num_bootstrap, step):
    stop = min(num_bootstrap, start + step)
    indices = rng.integers(0, size, size=(stop - start, size))
    for model, diff in diffs.items():
      out[model][start:stop] = diff[indices].mean(axis=1)
  return out


def _interval(value: float, replicates: np.ndarray) -> Delta:
  low, high = np.percentile(replicates, [2.5, 97.5])
  return Delta(float(value), float(low), float(high))


# -- comparison --------------------------------------------------------------------------------


def compare(results: list[EvalResults], baseline: str | None = None, intersect: bool = False,
            seed: int = 0, num_bootstrap: int = 1000, replicas: bool = False) -> Comparison:
  """Pairs every model with the baseline task by task and example by example.

  `replicas`: the other models are runs of one recipe that differ only in their seeds;
  the renderers then add the spread of their deltas (`spread`), which the examples'
  intervals do not show.

  A task's score is its recorded primary metric; its interval comes from the per-example
  scores. For corpus-level metrics (BLEU), whose mean of per-example (sentence) scores
  differs from the recorded value, the interval keeps the per-example spread but is moved
  to centre on the recorded delta."""
  if num_bootstrap < 1:
    raise FlanTuneError(f"num_bootstrap must be at least 1, got {num_bootstrap}")
  baseline = _check_models(results, baseline)
  split = _check_split(results)
  tasks, dropped = _shared_tasks(results, intersect)
  by_model = {r.model: r for r in results}
  models = [r.model for r in results]
  others = [m for m in models if m != baseline]
  rng = np.random.default_rng(seed)
  rows, replicates = [], {}
  for name in tasks:
    base = by_model[baseline].tasks[name]
    flags = [by_model[m].tasks[name].held_out for m in others] or [base.held_out]
    scores = {m: float(by_model[m].tasks[name].score) for m in models}
    base_examples = np.asarray(base.example_scores, dtype=np.float64)
    diffs = {m: np.asarray(by_model[m].tasks[name].example_scores, dtype=np.float64)
             - base_examples for m in others}
    fixed = {m: scores[m] - scores[baseline] for m in others}
    replicates[name] = _resampled_deltas(rng, diffs, fixed, num_bootstrap)
    for m, diff in diffs.items():  # centre on the recorded delta (corpus metrics: BLEU)
      if diff.size:
        replicates[name][m] += fixed[m] - diff.mean()
    rows.append(Row(
        task=name, family=base.family, cluster=base.cluster, style=base.style,
        held=_held(flags), primary_metric=base.primary_metric, chance=float(base.chance),
        num_examples=len(base.example_ids), scores=scores,
        normalized={m: normalize(s, base.chance) for m, s in scores.items()},
        deltas={m: _interval(fixed[m], replicates[name][m]) for m in others},
        option_share={m: by_model[m].tasks[name].metrics[OPTION_SHARE] for m in models
                      if OPTION_SHARE in by_model[m].tasks[name].metrics}))
  rows.sort(key=lambda row: (row.cluster, row.task))
  if replicas and len(others) < 2:
    raise FlanTuneError(f"replicas: the spread across seeds needs at least two models besides "
                        f"the baseline {baseline!r}, got {len(others)}")
  return Comparison(models=models, baseline=baseline, split=split, seed=seed,
                    num_bootstrap=num_bootstrap, rows=rows,
                    aggregates=_aggregates(rows, replicates, baseline, others), dropped=dropped,
                    replicas=replicas)


def _aggregate(kind: str, name: str, members: list[Row], replicates: dict, baseline: str,
               others: list[str]) -> Aggregate:
  """Unweighted means over tasks; the interval averages each task's resampled deltas."""
  models = list(members[0].scores)
  scores = {m: float(np.mean([row.scores[m] for row in members])) for m in models}
  normalized = {m: float(np.mean([row.normalized[m] for row in members])) for m in models}
  deltas, normalized_deltas = {}, {}
  for m in others:
    per_task = np.stack([replicates[row.task][m] for row in members])
    scale = np.array([[_normalizer(row.chance)] for row in members])
    draws, normalized_draws = per_task.mean(axis=0), (per_task * scale).mean(axis=0)
    deltas[m] = _interval(scores[m] - scores[baseline], draws)
    normalized_deltas[m] = _interval(normalized[m] - normalized[baseline], normalized_draws)
  held = _held([row.held == HELD_OUT for row in members]) if kind == "cluster" else name
  if kind == "cluster" and any(row.held == MIXED for row in members):
    held = MIXED
  shares = {m: [row.option_share[m] for row in members if m in row.option_share]
            for m in models}
  return Aggregate(kind=kind, name=name, held=held, tasks=len(members), scores=scores,
                   normalized=normalized, deltas=deltas, normalized_deltas=normalized_deltas,
                   chance=float(np.mean([row.chance for row in members])),
                   option_share={m: float(np.mean(v)) if v else math.nan
                                 for m, v in shares.items()})


def _normalizer(chance: float) -> float:
  """normalize() is linear in the score: a score delta d is a normalized delta d * this."""
  return 100.0 / (100.0 - chance) if chance < 100 else 0.0


def _aggregates(rows: list[Row], replicates: dict, baseline: str,
                others: list[str]) -> list[Aggregate]:
  out = []
  for cluster in sorted({row.cluster for row in rows}):
    members = [row for row in rows if row.cluster == cluster]
    out.append(_aggregate("cluster", cluster, members, replicates, baseline, others))
  for held in (HELD_IN, HELD_OUT, MIXED):
    members = [row for row in rows if row.held == held]
    if members:
      out.append(_aggregate("split", held, members, replicates, baseline, others))
  out.append(_aggregate("overall", "overall", rows, replicates, baseline, others))
  return out


def aggregate(comparison: Comparison, kind: str, name: str) -> Aggregate | None:
  """The aggregate of one group, e.g. aggregate(c, "split", HELD_OUT); None if it is empty."""
  for agg in comparison.aggregates:
    if agg.kind == kind and agg.name == name:
      return agg
  return None


@dataclasses.dataclass(frozen=True)
class Spread:
  """One group's deltas across replicas: how far a rerun with another seed may move."""

  group: str
  tasks: int
  mean: float
  low: float                    # the smallest replica's delta
  high: float                   # the largest
  clear: int                    # replicas whose 95% interval excludes zero on the mean's side
  option_share: tuple[float, float]  # smallest and largest replica's option share (nan: none)


def spread(comparison: Comparison) -> list[Spread]:
  """Per split, overall and per cluster: the replicas' deltas vs the baseline."""
  c = comparison
  order = ([agg for agg in c.aggregates if agg.kind != "cluster"]
           + [agg for agg in c.aggregates if agg.kind == "cluster"])
  out = []
  for agg in order:
    deltas = [agg.deltas[m] for m in c.others]
    values = [d.value for d in deltas]
    mean = float(np.mean(values))
    clear = sum(d.low > 0 if mean >= 0 else d.high < 0 for d in deltas)
    shares = [agg.option_share[m] for m in c.others]
    out.append(Spread(group=_group_label(agg), tasks=agg.tasks, mean=mean, low=min(values),
                      high=max(values), clear=clear,
                      option_share=(min(shares), max(shares))))
  return out


def _spread_rows(c: Comparison) -> list[list[str]]:
  def span(low: float, high: float, sign: bool = False) -> str:
    return "n/a" if math.isnan(low) else f"{_num(low, sign)} .. {_num(high, sign)}"

  return [[s.group, str(s.tasks), _num(s.mean, True), span(s.low, s.high, True),
           f"{s.clear}/{len(c.others)}", span(*s.option_share)] for s in spread(c)]


SPREAD_TITLE = ("Spread across the replicas (the models besides the baseline, one recipe under "
                "different seeds): their deltas vs the baseline, how many of their intervals "
                "exclude zero, and their option share, %")
SPREAD_HEADER = ["group", "tasks", "mean Δ", "Δ range", "intervals clear of 0",
                 "option share range"]


# -- renderers ---------------------------------------------------------------------------------


def _num(value: float, sign: bool = False) -> str:
  if value is None or math.isnan(value):
    return "n/a"
  value = round(value, 1) + 0.0     # never "-0.0"
  return f"{value:+.1f}" if sign else f"{value:.1f}"


def format_delta(delta: Delta) -> str:
  """'+12.3 [+8.1, +16.0]'."""
  return f"{_num(delta.value, True)} [{_num(delta.low, True)}, {_num(delta.high, True)}]"


def _title(c: Comparison) -> list[str]:
  lines = [f"{len(c.rows)} tasks, split {c.split}, baseline {c.baseline}; deltas vs the "
           f"baseline with 95% paired bootstrap intervals ({c.num_bootstrap} resamples, "
           f"seed {c.seed})"]
  if c.dropped:
    lines.append(f"intersect: left out {len(c.dropped)} task(s) not shared with the same "
                 f"examples: {_names(c.dropped)}")
  return lines


def _table(header: list[str], body: list[list[str]], right: set[int]) -> list[str]:
  widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]

  def fmt(cells: list[str]) -> str:
    return "  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                     for i, (cell, w) in enumerate(zip(cells, widths))).rstrip()

  return [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(line) for line in body]


def _model_header(c: Comparison) -> list[str]:
  return [c.baseline] + [h for m in c.others for h in (m, f"Δ {m}")]


def _model_cells(c: Comparison, scores: dict, deltas: dict) -> list[str]:
  return [_num(scores[c.baseline])] + [cell for m in c.others
                                       for cell in (_num(scores[m]), format_delta(deltas[m]))]


def to_terminal(comparison: Comparison) -> str:
  """A fixed-width table grouped by cluster; '*' marks held-out tasks, '~' mixed ones."""
  c = comparison
  header = ["task", "style", "held", "metric", "chance"] + _model_header(c)
  right = set(range(4, len(header)))
  mark = {HELD_OUT: "* ", MIXED: "~ ", HELD_IN: "  "}
  blocks = []
  for cluster in sorted({row.cluster for row in c.rows}):
    agg = aggregate(c, "cluster", cluster)
    body = [[mark[row.held] + row.task, row.style, row.held, row.primary_metric,
             _num(row.chance)] + _model_cells(c, row.scores, row.deltas)
            for row in c.rows if row.cluster == cluster]
    body.append([f"  mean ({agg.tasks} task{'s' if agg.tasks > 1 else ''})", "", agg.held, "", ""]
                + _model_cells(c, agg.scores, agg.deltas))
    blocks.append((f"== {cluster} ({agg.held})", body))
  summary = [[_group_label(agg), str(agg.tasks), kind] + _model_cells(c, values, deltas)
             for agg in c.aggregates if agg.kind != "cluster"
             for kind, values, deltas in (("score", agg.scores, agg.deltas),
                                          ("normalized", agg.normalized,
                                           agg.normalized_deltas))]
  # one set of column widths for every cluster block, so the columns line up down the page
  all_body = [line for _, body in blocks for line in body]
  table = _table(header, all_body, right)
  lines = _title(c) + ["'*' marks held-out tasks, '~' tasks held out for only some models",
                       "", table[0], table[1]]
  at = 2
  for title, body in blocks:
    lines += [title] + table[at:at + len(body)]
    at += len(body)
  lines += ["", "Averages over tasks (normalized: 0 = chance, 100 = perfect)"]
  lines += _table(["group", "tasks", "average"] + _model_header(c), summary,
                  set(range(1, 3 + len(_model_header(c)))) - {2})
  shares = _option_share_rows(c)
  if shares:
    lines += ["", OPTION_SHARE_TITLE]
    lines += _table(["group"] + c.models, shares, set(range(1, 1 + len(c.models))))
  if c.replicas:
    lines += ["", SPREAD_TITLE]
    lines += _table(SPREAD_HEADER, _spread_rows(c), {1, 2, 3, 4, 5})
  return "\n".join(lines) + "\n"


OPTION_SHARE_TITLE = ("Answers that are one of the offered options, % (generation tasks that "
                      "offer options)")


def _option_share_rows(c: Comparison) -> list[list[str]]:
  """Per cluster and split, each model's mean option share; groups without any omitted."""
  return [[_group_label(agg)] + [_num(agg.option_share[m]) for m in c.models]
          for agg in c.aggregates
          if any(not math.isnan(agg.option_share[m]) for m in c.models)]


def _group_label(agg: Aggregate) -> str:
  return f"{agg.name} ({agg.held})" if agg.kind == "cluster" else agg.name


def _md(text: str) -> str:
  return str(text).replace("|", "\\|")


def _md_table(header: list[str], body: list[list[str]]) -> list[str]:
  return (["| " + " | ".join(_md(h) for h in header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
          + ["| " + " | ".join(_md(cell) for cell in line) + " |" for line in body])


def to_markdown(comparison: Comparison) -> str:
  """Per-task table (held-out tasks in italics) and the averages, for reports and PRs."""
  c = comparison
  body = []
  for row in c.rows:
    task = f"*{row.task}*" if row.held == HELD_OUT else row.task
    body.append([row.cluster, task, row.style, row.held, row.primary_metric, _num(row.chance)]
                + _model_cells(c, row.scores, row.deltas))
  averages = [[_group_label(agg), str(agg.tasks), kind] + _model_cells(c, values, deltas)
              for agg in c.aggregates
              for kind, values, deltas in (("score", agg.scores, agg.deltas),
                                           ("normalized", agg.normalized,
                                            agg.normalized_deltas))]
  lines = ["# Model comparison", ""] + _title(c) + ["", "## Tasks", ""]
  lines += _md_table(["cluster", "task", "style", "held", "metric", "chance"]
                     + _model_header(c), body)
  lines += ["", "## Averages", "", "Unweighted means over tasks; normalized: 0 = chance, "
            "100 = perfect.", ""]
  lines += _md_table(["group", "tasks", "average"] + _model_header(c), averages)
  shares = _option_share_rows(c)
  if shares:
    lines += ["", "## Answer format", "", OPTION_SHARE_TITLE + ".", ""]
    lines += _md_table(["group"] + c.models, shares)
  if c.replicas:
    lines += ["", "## Spread across seeds", "", SPREAD_TITLE + ".", ""]
    lines += _md_table(SPREAD_HEADER, _spread_rows(c))
  return "\n".join(lines) + "\n"


CSV_FIELDS = ["kind", "name", "cluster", "style", "held", "metric", "chance", "examples",
              "tasks", "model", "baseline", "score", "normalized", "delta", "delta_low",
              "delta_high", "normalized_delta", "normalized_delta_low",
              "normalized_delta_high"]


def _csv_value(value: Any) -> Any:
  return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def to_csv(comparison: Comparison) -> str:
  """One line per task and model, then per aggregate and model (kind: task / aggregate)."""
  c = comparison
  out = io.StringIO()
  writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
  writer.writeheader()

  def delta_fields(prefix: str, delta: Delta | None, scale: float = 1.0) -> dict:
    if delta is None:
      return {}
    return {prefix: delta.value * scale, f"{prefix}_low": delta.low * scale,
            f"{prefix}_high": delta.high * scale}

  for row in c.rows:
    for m in c.models:
      line = {"kind": "task", "name": row.task, "cluster": row.cluster, "style": row.style,
              "held": row.held, "metric": row.primary_metric, "chance": row.chance,
              "examples": row.num_examples, "tasks": 1, "model": m,
              "baseline": m == c.baseline, "score": row.scores[m],
              "normalized": row.normalized[m], **delta_fields("delta", row.deltas.get(m)),
              **delta_fields("normalized_delta", row.deltas.get(m), _normalizer(row.chance))}
      writer.writerow({key: _csv_value(value) for key, value in line.items()})
  for agg in c.aggregates:
    for m in c.models:
      line = {"kind": "aggregate", "name": f"{agg.kind}:{agg.name}",
              "cluster": agg.name if agg.kind == "cluster" else "", "held": agg.held,
              "tasks": agg.tasks, "model": m, "baseline": m == c.baseline,
              "score": agg.scores[m], "normalized": agg.normalized[m],
              **delta_fields("delta", agg.deltas.get(m)),
              **delta_fields("normalized_delta", agg.normalized_deltas.get(m))}
      writer.writerow({key: _csv_value(value) for key, value in line.items()})
  return out.getvalue()


def _jsonable(value: Any) -> Any:
  """NaN -> None (JSON has no NaN); dataclasses -> dicts."""
  if dataclasses.is_dataclass(value):
    return _jsonable(dataclasses.asdict(value))
  if isinstance(value, dict):
    return {key: _jsonable(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(item) for item in value]
  if isinstance(value, float) and math.isnan(value):
    return None
  return value


def to_json(comparison: Comparison) -> dict[str, Any]:
  """Everything in the comparison as a json.dump-able dict (deltas: value, low, high)."""
  spread_of = {"spread": _jsonable(spread(comparison))} if comparison.replicas else {}
  return {"format": "flan-tune-compare/1", **_jsonable(comparison), **spread_of}


def write_chart(comparison: Comparison, path: str | os.PathLike) -> None:
  """Grouped bars of each model's mean score per cluster, held-out clusters labelled; each
  other model's bar carries its 95% paired interval (the baseline's score plus the
  delta's interval), and a dashed tick marks each cluster's chance level."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  c = comparison
  clusters = [agg for agg in c.aggregates if agg.kind == "cluster"]
  width = 0.8 / len(c.models)
  figure = Figure(figsize=(max(6.0, 1.2 * len(clusters) * max(1, len(c.models)) / 2 + 2), 4.5))
  FigureCanvasAgg(figure)
  axes = figure.add_subplot()
  positions = np.arange(len(clusters))
  for i, model in enumerate(c.models):
    heights = [agg.scores[model] for agg in clusters]
    errors = None
    if model != c.baseline:
      errors = [[h - (agg.scores[c.baseline] + agg.deltas[model].low) for h, agg in
                 zip(heights, clusters)],
                [agg.scores[c.baseline] + agg.deltas[model].high - h for h, agg in
                 zip(heights, clusters)]]
      errors = np.maximum(np.asarray(errors), 0)
    axes.bar(positions + (i - (len(c.models) - 1) / 2) * width, heights, width, label=model,
             yerr=errors, capsize=2, error_kw={"linewidth": 0.8})
  axes.hlines([agg.chance for agg in clusters], positions - 0.45, positions + 0.45,
              colors="black", linestyles="dashed", linewidth=0.8, label="chance")
  axes.set_xticks(positions, [agg.name + ("\n(held-out)" if agg.held == HELD_OUT else
                                          "\n(mixed)" if agg.held == MIXED else "")
                              for agg in clusters], fontsize=8)
  axes.set_ylabel("mean primary metric (0-100)")
  axes.set_ylim(0, 100)
  axes.set_title(f"Mean score per cluster ({c.split})")
  axes.legend(fontsize=8)
  figure.tight_layout()
  figure.savefig(path, format="png", dpi=100)


def write_all(comparison: Comparison, out_dir: str | os.PathLike) -> dict[str, str]:
  """comparison.{md,csv,json,png} under out_dir (created); returns {format: path}."""
  import json

  os.makedirs(out_dir, exist_ok=True)
  paths = {ext: os.path.join(out_dir, f"comparison.{ext}") for ext in ("md", "csv", "json",
                                                                       "png")}
  with open(paths["md"], "w") as f:
    f.write(to_markdown(comparison))
  with open(paths["csv"], "w", newline="") as f:
    f.write(to_csv(comparison))
  with open(paths["json"], "w") as f:
    json.dump(to_json(comparison), f, indent=1, allow_nan=False)
  write_chart(comparison, paths["png"])
  return paths


# -- command line ------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
  if not text.isdigit() or int(text) < 1:
    raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
  return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Arguments of `flan-tune compare RESULTS... [--baseline NAME] [--intersect] [--out DIR]
  [--replicas] [--seed N] [--bootstrap N]`."""
  parser.add_argument("results", nargs="+",
                      help="results files written by `flan-tune eval` (results_<step>.json)")
  parser.add_argument("--baseline", default=None,
                      help="model name the others are compared with (default: the first)")
  parser.add_argument("--intersect", action="store_true",
                      help="compare only the tasks every file has with the same examples")
  parser.add_argument("--out", default=None,
                      help="directory for comparison.md/.csv/.json/.png (default: print only)")
  parser.add_argument("--replicas", action="store_true",
                      help="the models besides the baseline are one recipe under several "
                           "seeds: add the spread of their deltas")
  parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
  parser.add_argument("--bootstrap", type=_positive_int, default=1000,
                      help="bootstrap resamples for the 95%% intervals")


def run(args: argparse.Namespace) -> int:
  comparison = compare(load_all(args.results), baseline=args.baseline,
                       intersect=args.intersect, seed=args.seed, num_bootstrap=args.bootstrap,
                       replicas=args.replicas)
  print(to_terminal(comparison), end="")
  if args.out:
    for path in write_all(comparison, args.out).values():
      print(f"wrote {path}")
  return 0
