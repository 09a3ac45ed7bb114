"""Natural Instructions v2 (allenai/natural-instructions) from a local checkout.

`natural_instructions(path)` registers the tasks of an official split (default:
`splits/default/`): every train task for training, and the first `eval_instances`
instances of every test task for evaluation, which is how the official evaluation reads
them. Each task's definition leads its prompts; its positive examples are the few-shot
exemplars (never the instance itself) and one of them is shown inline, with its
explanation, in one zero-shot template. Scores follow the official evaluation: ROUGE-L
with stemming and exact match, each the best over an instance's references, per task and
per category (the category is the task's cluster).

Registration parses no instances: each task file is scanned once for where its instances
lie, and that index is cached (`flan_tune.tasks.niv2_files`), so registering the full
collection takes seconds and instances are read one by one, when drawn. A task file that is malformed, or a task named in a split without a file, is an
error naming the file; it never means a smaller collection.
"""

import dataclasses
import functools
import os
import re
from typing import Dict, List, Optional, Sequence

import gin

from flan_tune.errors import RegistrationError
from flan_tune.mixtures import MixtureSpec, register_eval_mixture, register_mixture
from flan_tune.tasks import FewShotConfig, Template, register_task
from flan_tune.tasks import metrics, postprocessors
from flan_tune.tasks import records as records_lib
from flan_tune.tasks.niv2_files import (LANGUAGE_KEYS, TASK_NUMBER, InstanceRecords, TaskFile,
                                        instance_fields, read_task_file)
from flan_tune.tasks.sources import RecordSource
from flan_tune.tasks.vocabularies import sentencepiece_vocabulary

# FLAN 2022 drops the tasks that overlap MMLU, its held-out benchmark.
MMLU_OVERLAP = frozenset(range(664, 668)) | frozenset(range(685, 738))
# FLAN 2022's cap on the examples one NIv2 task contributes to the mixture's rates.
TASK_CAP = 5000

TEMPLATES = (
    Template("{definition}\n\nInput: {input}\nOutput:", "{output}", few_shot=False),
    Template("Instructions: {definition}\n\n{input}\n\nAnswer:", "{output}", few_shot=False),
    Template("Read the task, then respond to the input.\nTask: {definition}\n"
             "Input: {input}", "{output}", few_shot=False),
    Template("{definition}\n\nAn example of the task:\nInput: {example_input}\n"
             "Output: {example_output}\nWhy: {example_explanation}\n\n"
             "Now the same for this input.\nInput: {input}\nOutput:", "{output}",
             few_shot=False),
    # Few-shot: the definition once (FewShotConfig.prefix), then worked positive examples.
    Template("Input: {input}\nOutput:", "{output}", few_shot=True),
)
FEWSHOT = FewShotConfig(k=2, prefix="{definition}\n\n", x_y_delimiter=" ",
                        example_separator="\n\n", exemplar_split="examples")
STYLES = ("zs_noopt", "fs_noopt")


class TaskSource(RecordSource):
  """One task: its instances as `split` (the first `limit` of them) and its positive
  examples as the "examples" split, the few-shot pool."""

  def __init__(self, task_file: TaskFile, split: str, limit: Optional[int] = None):
    self.task_file, self._split, self._limit = task_file, split, limit
    super().__init__(splits=[split, "examples"] if task_file.positive_examples else [split])

  def __repr__(self):
    return f"natural_instructions.TaskSource({self.task_file.path})"

  def num_input_examples(self, split: str) -> int:
    if split == self._split:
      total = len(self.task_file.spans)
      return total if self._limit is None else min(total, self._limit)
    return super().num_input_examples(split)

  def _raw(self, split):
    if split == "examples":
      path = self.task_file.path
      return records_lib.LoadedRecords(
          [(f"{path}: Positive Examples[{i}]", {"input": e["input"], "output": [e["output"]]})
           for i, e in enumerate(self.task_file.positive_examples)])
    return InstanceRecords(self.task_file.path, self.task_file.spans, self._limit)


def cluster_name(category: str) -> str:
  return re.sub(r"[^a-z0-9]+", "_", category.lower()).strip("_") or "uncategorized"


def _read_split(path: str, split_dir: str, which: str) -> List[str]:
  file = os.path.join(path, "splits", split_dir, f"{which}_tasks.txt")
  try:
    with open(file, encoding="utf-8") as f:
      lines = [line.strip() for line in f]
  except OSError as e:
    raise RegistrationError(f"{file}: cannot read the split ({e.strerror})") from None
  names = [line for line in lines if line]
  for number, line in enumerate(lines, 1):
    if line and not TASK_NUMBER.match(line):
      raise RegistrationError(f"{file}:{number}: {line!r} is not a task name (taskNNN_...)")
  return names


def _task_file(path: str, name: str, split_file: str) -> TaskFile:
  file = os.path.join(path, "tasks", f"{name}.json")
  if not os.path.isfile(file):
    raise RegistrationError(f"{split_file} names task {name!r}, but {file} does not exist")
  return read_task_file(file)


def _keep(task: TaskFile, languages, categories, drop_mmlu_overlap: bool) -> bool:
  if drop_mmlu_overlap and task.number in MMLU_OVERLAP:
    return False
  if languages is not None and not all(set(task.languages[k]) <= set(languages)
                                       for k in LANGUAGE_KEYS):
    return False
  return categories is None or bool(set(task.categories) & set(categories))


def _register_one(prefix: str, task: TaskFile, split: str, limit: Optional[int],
                  collection: str, seed: int, vocabulary) -> str:
  name = f"{prefix}_{task.name}"
  fewshot = FEWSHOT
  styles = [s for s in STYLES if s == "zs_noopt" or len(task.positive_examples) >= 2]
  if len(task.positive_examples) >= 2:
    fewshot = dataclasses.replace(FEWSHOT, k=min(FEWSHOT.k, len(task.positive_examples) - 1))
  templates = [t for t in TEMPLATES if task.positive_examples or "example_input" not in
               t.fields()]
  example = task.positive_examples[0] if task.positive_examples else {}
  register_task(
      name=name, source=TaskSource(task, split, limit), templates=templates,
      cluster=cluster_name(task.categories[0] if task.categories else ""),
      collection=collection, seed=seed, styles=styles, fewshot=fewshot,
      example_fn=functools.partial(instance_fields, definition=task.definition,
                                   example=example),
      references_field="references", metric_fns=metrics.NATURAL_INSTRUCTIONS,
      vocabulary=vocabulary,
      postprocess_fn=postprocessors.strip_or_references)
  return name


_REGISTERED: Dict[tuple, dict] = {}


@gin.configurable
def natural_instructions(path: str = gin.REQUIRED, *, split_dir: str = "default",
                         languages: Optional[Sequence[str]] = ("English",),
                         categories: Optional[Sequence[str]] = None,
                         drop_mmlu_overlap: bool = True, eval_instances: int = 100,
                         prefix: str = "niv2", collection: str = "niv2",
                         task_cap: int = TASK_CAP, vocabulary_file: Optional[str] = None,
                         seed: int = 0) -> dict:
  """Registers a checkout's split; returns {"train": [...], "test": [...] task names,
  "mixture": training mixture, "eval_mixture": the test tasks' evaluation mixture}.

  `languages` keeps tasks whose input, output and instruction languages are all among
  them (None: every language); `categories` keeps tasks in any of them (None: all);
  `drop_mmlu_overlap` leaves out task numbers 664-667 and 685-737 as FLAN 2022 does.
  `vocabulary_file` is the SentencePiece model to tokenize with (the initial checkpoint's
  spiece.model); None: flan-tune's default vocabulary.
  Calling again with the same arguments returns the same names (gin may call it from
  both the training and the evaluation config).
  """
  key = (os.path.abspath(path), split_dir, tuple(languages or ()) if languages else None,
         tuple(categories) if categories else None, drop_mmlu_overlap, eval_instances,
         prefix, collection, task_cap, vocabulary_file, seed)
  if key in _REGISTERED:
    return _REGISTERED[key]
  if not os.path.isdir(os.path.join(path, "tasks")):
    raise RegistrationError(f"{path}: not a natural-instructions checkout (no tasks/ folder)")
  split_files = {which: os.path.join(path, "splits", split_dir, f"{which}_tasks.txt")
                 for which in ("train", "test", "excluded")}
  listed = {which: _read_split(path, split_dir, which) for which in split_files}
  excluded = set(listed["excluded"])
  files = {which: [_task_file(path, name, split_files[which]) for name in listed[which]
                   if name not in excluded] for which in ("train", "test")}
  if categories is not None:
    known = {c for tasks in files.values() for t in tasks for c in t.categories}
    unknown = sorted(set(categories) - known)
    if unknown:
      raise RegistrationError(f"natural_instructions: unknown categories {unknown}; the "
                              f"split's tasks have {sorted(known)}")
  kept = {which: [t for t in tasks if _keep(t, languages, categories, drop_mmlu_overlap)]
          for which, tasks in files.items()}
  for which, tasks in kept.items():
    if not tasks:
      raise RegistrationError(f"natural_instructions: no {which} task of {split_files[which]} "
                              f"is left after the filters (languages={languages}, "
                              f"categories={categories})")
  vocabulary = sentencepiece_vocabulary(vocabulary_file)
  names = {"train": [_register_one(prefix, t, "train", None, collection, seed, vocabulary)
                     for t in kept["train"]],
           "test": [_register_one(prefix, t, "test", eval_instances, collection, seed,
                                  vocabulary) for t in kept["test"]]}
  spec = MixtureSpec(caps={collection: task_cap},
                     style_weights={style: 1.0 for style in STYLES})
  names["mixture"] = prefix
  register_mixture(prefix, names["train"], spec)
  names["eval_mixture"] = f"{prefix}_test_eval"
  register_eval_mixture(names["eval_mixture"], names["test"], styles=STYLES)
  _REGISTERED[key] = names
  return names
