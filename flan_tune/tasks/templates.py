"""Templates: (inputs pattern, targets pattern) pairs over named fields of an example.

Patterns use `str.format` syntax restricted to plain names: `{premise}` inserts a field,
`{{` and `}}` are literal braces, and the reserved `{options_}` slot receives the
rendered answer options. Everything else (`{}`, `{0}`, `{x.y}`, `{x:>3}`) is rejected at
registration so a typo never renders silently.
"""

import dataclasses
import enum
import functools
import re
import string
from typing import Mapping, Optional, Sequence

from flan_tune.errors import TemplateError

OPTIONS_SLOT = "options_"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PromptStyle(str, enum.Enum):
  """The prompt styles derived from one task definition (FLAN's template types)."""
  ZS_OPT = "zs_opt"        # zero-shot, answer options shown
  ZS_NOOPT = "zs_noopt"    # zero-shot, no options
  FS_OPT = "fs_opt"        # few-shot exemplars, options shown
  FS_NOOPT = "fs_noopt"    # few-shot exemplars, no options
  ZS_COT = "zs_cot"        # zero-shot chain of thought (needs a rationale field)
  FS_COT = "fs_cot"        # few-shot chain of thought
  ZS_INV = "zs_inv"        # inverted templates: ask for what is normally given
  FS_INV = "fs_inv"        # few-shot inverted

  @property
  def few_shot(self) -> bool:
    return self.value.startswith("fs_")

  @property
  def shows_options(self) -> bool:
    return self.value.endswith("_opt")

  @property
  def chain_of_thought(self) -> bool:
    return self.value.endswith("_cot")

  @property
  def inverted(self) -> bool:
    return self.value.endswith("_inv")


@dataclasses.dataclass(frozen=True)
class Template:
  """One way of asking for a task. `inverted` templates ask for the usual input;
  `few_shot` True or False keeps a template to the few- or zero-shot styles."""
  inputs: str
  targets: str
  inverted: bool = False
  few_shot: Optional[bool] = None

  def fields(self) -> frozenset:
    """Field names used by both patterns, the options slot excluded."""
    return (pattern_fields(self.inputs) | pattern_fields(self.targets)) - {OPTIONS_SLOT}

  def shows_options(self) -> bool:
    return OPTIONS_SLOT in pattern_fields(self.inputs)


@functools.lru_cache(maxsize=None)
def pattern_fields(pattern: str) -> frozenset:
  """The field names of a pattern; raises TemplateError on anything but plain names."""
  try:
    parsed = list(string.Formatter().parse(pattern))
  except ValueError as e:  # unbalanced braces
    raise TemplateError(f"unbalanced braces ({e}) in {pattern!r}") from None
  names = set()
  for _, name, spec, conversion in parsed:
    if name is None:
      continue
    if not name:
      raise TemplateError(f"empty placeholder '{{}}' in {pattern!r}")
    if spec or conversion or not _NAME.match(name):
      raise TemplateError(
          f"placeholder {{{name}{'!' + conversion if conversion else ''}"
          f"{':' + spec if spec else ''}}} in {pattern!r} is not a plain field name")
    names.add(name)
  return frozenset(names)


def validate_templates(task_name: str, templates: Sequence[Template],
                       has_options: bool, known_fields=None) -> None:
  """Checks every template of a task, naming the task, template index and pattern."""
  if not templates:
    raise TemplateError(f"task {task_name!r}: the template list is empty")
  if all(t.inverted for t in templates):
    raise TemplateError(f"task {task_name!r}: every template is inverted; "
                        "at least one must ask for the task's usual target")
  for index, template in enumerate(templates):
    where = f"task {task_name!r}, template {index}"
    if not isinstance(template, Template):
      raise TemplateError(f"{where}: expected flan_tune.Template, got {template!r}")
    for side in ("inputs", "targets"):
      pattern = getattr(template, side)
      if not isinstance(pattern, str) or not pattern.strip():
        raise TemplateError(f"{where}: the {side} pattern is empty")
      try:
        fields = pattern_fields(pattern)
      except TemplateError as e:
        raise TemplateError(f"{where}, {side} pattern: {e}") from None
      if side == "targets" and OPTIONS_SLOT in fields:
        raise TemplateError(f"{where}: {{{OPTIONS_SLOT}}} belongs in the inputs pattern")
    if template.shows_options() and not has_options:
      raise TemplateError(
          f"{where} shows {{{OPTIONS_SLOT}}} but the task declares no options "
          "(pass options=[...] or options_field=...)")
    if known_fields is not None:
      missing = sorted(template.fields() - set(known_fields))
      if missing:
        raise TemplateError(
            f"{where} names field(s) {missing} that the source does not provide; "
            f"it provides {sorted(known_fields)}")


def fill(pattern: str, fields: Mapping[str, str]) -> str:
  """Formats a validated pattern; the caller guarantees every field is present."""
  return pattern.format_map(fields)


def drop_options_slot(pattern: str) -> str:
  """The no-options form: removes the slot and the blank space it leaves behind."""
  without = pattern.replace("{" + OPTIONS_SLOT + "}", "")
  without = re.sub(r"[ \t]+\n", "\n", without)
  return re.sub(r"\n{3,}", "\n\n", without).strip()
