"""Registers an instruction task as one seqio task per prompt style.

`register_task(...)` validates the whole definition (templates, fields, options,
few-shot pool split, names) before anything reaches seqio, so a mistake fails at
import time with the task and template named, not as a wrong example mid-training.
"""

import dataclasses
import importlib
import importlib.util
import pathlib
import re
import sys
from typing import Dict, List, Optional, Sequence

import seqio

from flan_tune.errors import RegistrationError, TemplateError
from t5.data import postprocessors as t5_postprocessors

from flan_tune.tasks import metrics, postprocessors
from flan_tune.tasks.preprocessors import RenderPrompts, expand_choices
from flan_tune.tasks.sources import RecordSource
from flan_tune.tasks.spec import InstructionTask
from flan_tune.tasks.templates import PromptStyle, pattern_fields, validate_templates
from flan_tune.tasks.vocabularies import default_vocabulary

_NAME = re.compile(r"^[A-Za-z0-9_.]+$")
_TASKS: Dict[str, InstructionTask] = {}


@dataclasses.dataclass(frozen=True)
class Variant:
  """One registered seqio task: a task in one prompt style."""
  seqio_name: str
  task: InstructionTask
  style: PromptStyle
  scoring: bool = False  # a rank-classification evaluation task, never trained on


_VARIANTS: Dict[str, Variant] = {}
_VARIANTS_BY_TASK: Dict[str, List[Variant]] = {}  # so a mixture of N tasks looks up in O(N)


def import_modules(modules: Sequence[str]) -> None:
  """Imports task collections so that they register: dotted module names
  (`flan_tune_tasks`, `my_project.tasks`) or paths of Python files (`./my_tasks.py`), each once."""
  for module in modules:
    if not module.endswith(".py"):
      try:
        importlib.import_module(module)
      except ImportError as e:
        raise RegistrationError(f"cannot import task module {module!r}: {e}") from None
      continue
    path = pathlib.Path(module).resolve()
    name = "flan_tune_task_file_" + re.sub(r"\W", "_", str(path))
    if name in sys.modules:
      continue
    if not path.is_file():
      raise RegistrationError(f"task module file {module}: not found")
    spec = importlib.util.spec_from_file_location(name, path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    try:
      spec.loader.exec_module(loaded)
    except BaseException:
      del sys.modules[name]  # a fixed file may be imported again
      raise


def register_task(task: Optional[InstructionTask] = None, **kwargs) -> List[str]:
  """Registers every prompt style of a task; returns the seqio task names.

  Call with an `InstructionTask` or with its fields as keyword arguments.
  """
  if task is None:
    task = InstructionTask(**kwargs)
  elif kwargs:
    task = dataclasses.replace(task, **kwargs)
  styles = _validate(task)
  vocabulary = task.vocabulary or default_vocabulary()
  features = {name: seqio.Feature(vocabulary, add_eos=True, required=True)
              for name in ("inputs", "targets")}
  names = []
  for style in styles:
    variant = task.variant_name(style)
    postprocess_fn = task.postprocess_fn
    if style.chain_of_thought:
      postprocess_fn = _chain(postprocessors.make_cot_answer_extractor(task.cot_answer_phrase),
                              task.postprocess_fn)
    seqio.TaskRegistry.add(
        variant, source=task.source,
        preprocessors=[RenderPrompts(task, style), seqio.preprocessors.tokenize,
                       seqio.preprocessors.append_eos_after_trim],
        output_features=features, metric_fns=list(task.metric_fns),
        postprocess_fn=postprocess_fn)
    _add_variant(Variant(variant, task, style))
    names.append(variant)
  names += [_register_rank_variant(task, style, features)
            for style in styles if style in _rank_styles(task)]
  _TASKS[task.name] = task
  return names


RANK_STYLES = (PromptStyle.ZS_OPT, PromptStyle.ZS_NOOPT, PromptStyle.FS_OPT,
               PromptStyle.FS_NOOPT)


def _rank_styles(task: InstructionTask) -> tuple:
  return RANK_STYLES if task.rank_classification and task.has_options else ()


def _register_rank_variant(task: InstructionTask, style: PromptStyle, features) -> str:
  name = f"{task.name}_{style.value}_rank"
  seqio.TaskRegistry.add(
      name, source=task.source,
      preprocessors=[RenderPrompts(task, style, with_choices=True), expand_choices,
                     seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
      output_features=features, metric_fns=[metrics.rank_classification],
      postprocess_fn=t5_postprocessors.rank_classification)
  _add_variant(Variant(name, task, style, scoring=True))
  return name


def _add_variant(variant: Variant) -> None:
  _VARIANTS[variant.seqio_name] = variant
  _VARIANTS_BY_TASK.setdefault(variant.task.name, []).append(variant)


def _chain(first, second):
  if second is None:
    return first

  def chained(text, example=None, is_target=False):
    return second(first(text, example, is_target), example, is_target)

  return chained


def _validate(task: InstructionTask) -> List[PromptStyle]:
  where = f"task {task.name!r}"
  if not isinstance(task.name, str) or not _NAME.match(task.name):
    raise RegistrationError(f"{where}: names may use letters, digits, '_' and '.' only")
  if task.name in _TASKS:
    raise RegistrationError(f"{where} is already registered")
  if not task.cluster or not task.collection:
    raise RegistrationError(f"{where}: cluster and collection must be non-empty")
  if task.options is not None and task.options_field is not None:
    raise RegistrationError(f"{where}: give options or options_field, not both")
  if task.options is not None:
    if not task.options or len(set(task.options)) != len(task.options) or not all(
        isinstance(o, str) and o for o in task.options):
      raise RegistrationError(f"{where}: options must be distinct non-empty strings, "
                              f"got {list(task.options)}")
  known = task.source.declared_fields if isinstance(task.source, RecordSource) else None
  if task.example_fn is not None:
    known = None  # example_fn decides the fields
  validate_templates(task.name, task.templates, task.has_options, known)
  try:
    prefix_fields = pattern_fields(task.fewshot.prefix)
  except TemplateError as e:
    raise TemplateError(f"{where}, few-shot prefix: {e}") from None
  if known is not None and not prefix_fields <= set(known):
    raise TemplateError(f"{where}: the few-shot prefix names field(s) "
                        f"{sorted(prefix_fields - set(known))} that the source does not "
                        f"provide; it provides {sorted(known)}")
  if task.prerendered and len(task.styles or ()) != 1:
    raise RegistrationError(f"{where}: a prerendered task names the one style its rows are "
                            f"in (styles=[...]), got {task.styles}")
  for label, field in (("options_field", task.options_field),
                       ("rationale_field", task.rationale_field),
                       ("references_field", task.references_field)):
    if field is not None and known is not None and field not in known:
      raise RegistrationError(f"{where}: {label} {field!r} is not a field of the source; "
                              f"it provides {sorted(known)}")
  if task.fewshot.k < 1 or task.fewshot.pool_size < task.fewshot.k + 1:
    raise RegistrationError(f"{where}: few-shot needs k >= 1 and pool_size > k, got "
                            f"k={task.fewshot.k}, pool_size={task.fewshot.pool_size}")
  supported = task.supported_styles()
  styles = supported if task.styles is None else [PromptStyle(s) for s in task.styles]
  for style in styles:
    if style not in supported:
      raise RegistrationError(f"{where}: style {style.value!r} is not available: "
                              f"{_why_unsupported(task, style)}")
  if not styles:
    raise RegistrationError(f"{where}: no prompt style to register")
  for variant in [task.variant_name(s) for s in styles] + [
      f"{task.name}_{s.value}_rank" for s in styles if s in _rank_styles(task)]:
    if variant in _VARIANTS or variant in seqio.TaskRegistry.names() or (
        variant in seqio.MixtureRegistry.names()):
      raise RegistrationError(f"{where}: seqio name {variant!r} is already registered")
  return styles


def _why_unsupported(task: InstructionTask, style: PromptStyle) -> str:
  if style.shows_options and not task.has_options:
    return "the task declares no options"
  if style.chain_of_thought and task.rationale_field is None:
    return "the task has no rationale_field"
  if style.few_shot and task.fewshot.exemplar_split not in task.source.splits:
    return (f"the exemplar split {task.fewshot.exemplar_split!r} is not among the source's "
            f"splits {list(task.source.splits)}")
  return "no template of the matching kind (inverted or not)"


def get_task(name: str) -> InstructionTask:
  if name not in _TASKS:
    raise RegistrationError(f"no instruction task {name!r} is registered")
  return _TASKS[name]


def task_names() -> List[str]:
  return sorted(_TASKS)


def get_variant(seqio_name: str) -> Optional[Variant]:
  return _VARIANTS.get(seqio_name)


def variants_of(task_name: str, scoring: Optional[bool] = False) -> List[Variant]:
  """Generation variants by default; `scoring=True` the rank ones, None both."""
  return [v for v in _VARIANTS_BY_TASK.get(task_name, [])
          if scoring is None or v.scoring == scoring]


def unregister(names: Sequence[str]) -> None:
  """Removes tasks and their variants (tests and notebooks re-register freely)."""
  for name in names:
    for variant in variants_of(name, scoring=None):
      seqio.TaskRegistry.remove(variant.seqio_name)
      del _VARIANTS[variant.seqio_name]
    _VARIANTS_BY_TASK.pop(name, None)
    _TASKS.pop(name, None)
