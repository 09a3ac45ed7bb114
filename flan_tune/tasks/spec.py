"""The definition of an instruction task, from which every prompt style is derived."""

import dataclasses
from typing import Any, Callable, Mapping, Optional, Sequence

from flan_tune.tasks.templates import PromptStyle, Template


@dataclasses.dataclass(frozen=True)
class FewShotConfig:
  """How exemplars are drawn and joined.

  Exemplars come from `exemplar_split` (never the split being rendered when that is an
  evaluation split, and never the example itself), up to `k` of them, rendered with the
  example's own template and option style, and dropped from the end until the prompt
  fits the input length (seqio's `inputs` length when the pipeline gives one, else
  `max_input_tokens`), EOS included. `prefix`, a pattern over the example's fields, comes
  once before the exemplars (a task's instructions, which its few-shot templates leave
  out so they are not repeated for every exemplar).
  """
  k: int = 3
  max_input_tokens: int = 512
  x_y_delimiter: str = "\n\n"
  example_separator: str = "\n\n\n"
  exemplar_split: str = "train"
  pool_size: int = 1000
  prefix: str = ""


COT_TRIGGERS = (
    "Think it through step by step, then answer.",
    "Explain your reasoning before giving the answer.",
    "Reason about it first, then answer.",
    "Work it out step by step.",
    "Show your reasoning, then state the answer.",
)


@dataclasses.dataclass(frozen=True)
class InstructionTask:
  """A templated instruction task.

  Attributes:
    name: base name; each prompt style registers as seqio task `{name}_{style}`.
    source: a seqio DataSource (JsonlSource, CsvSource, GeneratorSource, tfds_source).
    templates: (inputs, targets) patterns over the example's fields.
    cluster: FLAN-style task cluster ("nli", "sentiment", ...) for held-out evaluation.
    collection: the collection the task belongs to, for collection weights and caps.
    options: fixed answer options of a classification task, or
    options_field: a field holding each example's own list of options.
    rationale_field: a field with a reasoning chain; enables the chain-of-thought styles.
    example_fn: maps a raw source example (Python values) to a dict of fields.
    styles: the prompt styles to register; default every style the definition supports.
    metric_fns, postprocess_fn: passed to seqio (chain-of-thought styles also extract
      the answer after `cot_answer_phrase` before `postprocess_fn`).
    vocabulary: tokenizes `inputs` and `targets`; default flan_tune's default vocabulary.
    seed: drives every random choice (template, option style, exemplars, triggers).
    rank_classification: for tasks with options, also register `{name}_{style}_rank`
      evaluation tasks that score every option (zero- and few-shot, with and without
      options shown) and pick the most likely one.
    references_field: a field with every acceptable answer (a list); evaluation passes it
      to the metrics as the targets, which take the best over them.
    prerendered: the source's rows already hold `inputs` and `targets` in the one style
      of `styles` (the published FLAN 2022 files); rendering copies them as they are.
  """
  name: str
  source: Any  # a seqio.DataSource (not imported: input workers load this module)
  templates: Sequence[Template]
  cluster: str
  collection: str = "default"
  options: Optional[Sequence[str]] = None
  options_field: Optional[str] = None
  rationale_field: Optional[str] = None
  example_fn: Optional[Callable[[Mapping[str, Any]], Mapping[str, Any]]] = None
  styles: Optional[Sequence[PromptStyle]] = None
  fewshot: FewShotConfig = FewShotConfig()
  metric_fns: Sequence[Callable] = ()
  postprocess_fn: Optional[Callable] = None
  vocabulary: Optional[Any] = None  # a seqio.Vocabulary
  seed: int = 0
  cot_answer_phrase: str = "So the answer is"
  cot_triggers: Sequence[str] = COT_TRIGGERS
  rank_classification: bool = True
  references_field: Optional[str] = None
  prerendered: bool = False

  @property
  def has_options(self) -> bool:
    return bool(self.options) or self.options_field is not None

  def variant_name(self, style: PromptStyle) -> str:
    """The seqio task of one style: `{name}_{style}`; a prerendered task has one style,
    and its name is the variant's."""
    return self.name if self.prerendered else f"{self.name}_{style.value}"

  def draws_exemplars(self, style: PromptStyle) -> bool:
    """Whether rendering in `style` needs the exemplar pool (prerendered rows do not)."""
    return style.few_shot and not self.prerendered

  def templates_for(self, style: PromptStyle) -> list:
    """Indices of the templates a style draws from."""
    return [i for i, t in enumerate(self.templates) if t.inverted == style.inverted and
            t.few_shot in (None, style.few_shot)]

  def supported_styles(self) -> list:
    if self.prerendered:
      return [PromptStyle(s) for s in self.styles or ()]
    styles = []
    for style in PromptStyle:
      if style.shows_options and not self.has_options:
        continue
      if style.chain_of_thought and self.rationale_field is None:
        continue
      if not self.templates_for(style):
        continue
      if style.few_shot and self.fewshot.exemplar_split not in self.source.splits:
        continue
      styles.append(style)
    return styles
