"""Turns one example's fields into (inputs, targets) text for one prompt style.

Pure Python and deterministic: every choice comes from a generator seeded by
(task seed, task, style, example content, epoch), so the rendering of an example does
not depend on order, sharding, threads or the run, and each pass over the data (epoch)
draws its template, option style and exemplars anew, as FLAN does. Epoch 0 is what
evaluation renders. No seqio or TensorFlow here: input workers import this module.
"""

import dataclasses
import re
from collections.abc import Sequence as SequenceABC
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from flan_tune.errors import RegistrationError, SourceError, TemplateError
from flan_tune.tasks import options as options_lib
from flan_tune.tasks import seeding
from flan_tune.tasks.records import ORIGIN, normalize_value
from flan_tune.tasks.spec import InstructionTask
from flan_tune.tasks.templates import (OPTIONS_SLOT, PromptStyle, drop_options_slot, fill,
                                      pattern_fields)


# A closing answer cue ("Answer:", "A:") stays last, after a chain-of-thought trigger.
_ANSWER_CUE = re.compile(r"\n+((?:Answer|A|Response|Output)\s*:)\s*$")


def _with_trigger(inputs: str, trigger: str) -> str:
  cue = _ANSWER_CUE.search(inputs)
  if cue is None:
    return f"{inputs}\n\n{trigger}"
  return f"{inputs[:cue.start()]}\n\n{trigger}\n{cue.group(1)}"


def example_fields(task: InstructionTask, raw: Mapping[str, Any]) -> dict:
  """A raw example as the fields templates see, through the task's example_fn."""
  origin = raw.get(ORIGIN, "?")
  fields = dict(task.example_fn(raw)) if task.example_fn else dict(raw)
  out = {k: normalize_value(v, f"task {task.name!r}, example {origin}", k)
         for k, v in fields.items() if k != ORIGIN}
  out[ORIGIN] = origin
  return out


class ExemplarPool(SequenceABC):
  """The first `pool_size` records of the exemplar split as template fields, read by
  index when drawn, so a pool costs no memory however large the split is."""

  def __init__(self, task: InstructionTask, records: Sequence[Mapping[str, Any]]):
    self.task, self.records = task, records
    self._length = min(task.fewshot.pool_size, len(records))

  def __len__(self):
    return self._length

  def __getitem__(self, index):
    if not 0 <= index < self._length:
      raise IndexError(index)
    return example_fields(self.task, self.records[index])


@dataclasses.dataclass(frozen=True)
class Rendered:
  inputs: str
  targets: str
  template_index: int
  num_exemplars: int
  choices: tuple = ()  # the answer options, for rank classification


class PromptRenderer:
  """Renders examples of one task in one prompt style.

  Args:
    task: the task definition.
    style: the prompt style.
    count_tokens: length of a text in tokens (EOS excluded), for few-shot pruning.
    max_input_tokens: the input length the prompt must fit, EOS included.
    pool: exemplar fields for few-shot styles (already passed through example_fn): a
      list or an `ExemplarPool`.
  """

  def __init__(self, task: InstructionTask, style: PromptStyle,
               count_tokens: Callable[[str], int], max_input_tokens: int,
               pool: Optional[Sequence[Mapping]] = None):
    self.task = task
    self.style = style
    self._count_tokens = count_tokens
    self._budget = max_input_tokens - 1
    self._template_ids = task.templates_for(style)
    self._pool = pool if pool is not None else []
    self._variant = task.variant_name(style)
    if task.draws_exemplars(style) and len(self._pool) < task.fewshot.k + 1:
      raise RegistrationError(
          f"task {self._variant!r}: few-shot k={task.fewshot.k} needs a pool of at least "
          f"{task.fewshot.k + 1} examples (one may be the example itself), but split "
          f"{task.fewshot.exemplar_split!r} gave {len(self._pool)}")

  def render(self, fields: Mapping, template_index: Optional[int] = None,
             epoch: int = 0) -> Rendered:
    """Renders an example in pass `epoch` over the data; `template_index` forces a
    template (tests, inspection)."""
    if self.task.prerendered:
      return Rendered(str(fields["inputs"]), str(fields["targets"]), 0, 0)
    key = seeding.example_key(fields)
    rng = seeding.example_rng(self.task.seed, self._variant, key, epoch)
    drawn = self._template_ids[rng.integers(len(self._template_ids))]
    if template_index is None:
      template_index = drawn
    elif template_index not in self._template_ids:
      raise TemplateError(f"task {self._variant!r}: template {template_index} is not one of "
                          f"this style's templates {self._template_ids}")
    option_style = options_lib.draw_style(rng)
    trigger = self.task.cot_triggers[rng.integers(len(self.task.cot_triggers))]
    inputs, targets = self._render_one(fields, template_index, option_style, trigger)
    choices = ()
    if self.task.has_options and not (self.style.inverted or self.style.chain_of_thought):
      where = self._where(template_index, fields)
      choices = tuple(self._options(fields, where))
      if targets not in choices:
        raise SourceError(f"{where}: target {targets!r} is not one of the options {choices}")
    if not self.style.few_shot:
      return Rendered(inputs, targets, template_index, 0, choices)
    exemplars = self._draw_exemplars(rng, key)
    shots = [self._render_one(e, template_index, option_style, trigger) for e in exemplars]
    prefix = fill(self.task.fewshot.prefix, self._values(self.task.fewshot.prefix, fields,
                                                         self._where(template_index, fields)))
    prompt, used = self._fit(shots, prefix, inputs)
    return Rendered(prompt, targets, template_index, used, choices)

  def _where(self, template_index: int, fields: Mapping) -> str:
    return (f"task {self._variant!r}, template {template_index}, "
            f"example {fields.get(ORIGIN, '?')}")

  def _draw_exemplars(self, rng: np.random.Generator, key: int) -> list:
    """k pool members other than the example: k + 1 drawn, the example dropped if among
    them (the whole pool is scanned only when the example is in it more than once)."""
    k = self.task.fewshot.k
    drawn = (self._pool[i] for i in rng.choice(len(self._pool), size=k + 1, replace=False))
    chosen = [e for e in drawn if seeding.example_key(e) != key][:k]
    if len(chosen) == k:
      return chosen
    candidates = [e for e in self._pool if seeding.example_key(e) != key]
    if len(candidates) < k:
      raise RegistrationError(
          f"task {self._variant!r}: few-shot k={k} but only {len(candidates)} exemplars "
          "differ from the example")
    return [candidates[i] for i in rng.choice(len(candidates), size=k, replace=False)]

  def _fit(self, shots: list, prefix: str, query: str) -> tuple:
    """Joins prefix, exemplars and query, dropping exemplars from the end until it fits."""
    config = self.task.fewshot

    def join(n):
      parts = [x + config.x_y_delimiter + y for x, y in shots[:n]]
      return prefix + config.example_separator.join(parts + [query])

    n = len(shots)
    while n > 0 and self._count_tokens(join(n)) > self._budget:
      n -= 1
    return join(n), n

  def _render_one(self, fields: Mapping, template_index: int,
                  option_style: options_lib.OptionStyle, trigger: str) -> tuple:
    template = self.task.templates[template_index]
    where = self._where(template_index, fields)
    values = self._values(template.inputs + template.targets, fields, where)
    if self.style.shows_options:
      choices = self._options(fields, where)
      values[OPTIONS_SLOT] = option_style.render(choices)
      pattern = template.inputs
      if not template.shows_options():
        pattern = pattern.rstrip() + "\n\n{" + OPTIONS_SLOT + "}"
      inputs = fill(pattern, values)
    else:
      inputs = fill(drop_options_slot(template.inputs), values)
    targets = fill(template.targets, values)
    if self.style.shows_options and targets not in choices:
      raise SourceError(f"{where}: target {targets!r} is not one of the options {choices}")
    if self.style.chain_of_thought:
      rationale = fields.get(self.task.rationale_field)
      if rationale is None:
        raise TemplateError(f"{where}: no rationale field {self.task.rationale_field!r}")
      inputs = _with_trigger(inputs, trigger)
      targets = f"{rationale} {self.task.cot_answer_phrase} {targets}."
    return inputs, targets

  @staticmethod
  def _values(patterns: str, fields: Mapping, where: str) -> dict:
    """The fields the patterns name, as text (lists joined with commas)."""
    values = {}
    for name in pattern_fields(patterns) - {OPTIONS_SLOT}:
      if name not in fields:
        available = sorted(k for k in fields if k != ORIGIN)
        raise TemplateError(f"{where}: no field {name!r} in the example; it has {available}")
      value = fields[name]
      values[name] = ", ".join(value) if isinstance(value, list) else str(value)
    return values

  def _options(self, fields: Mapping, where: str) -> list:
    if self.task.options:
      return list(self.task.options)
    value = fields.get(self.task.options_field)
    if value is None:
      raise SourceError(f"{where}: the options field {self.task.options_field!r} is missing "
                        "but this template shows options")
    if not isinstance(value, list) or not value:
      raise SourceError(f"{where}: the options field {self.task.options_field!r} must be a "
                        f"non-empty list, got {value!r}")
    return value
