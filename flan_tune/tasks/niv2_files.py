"""Natural Instructions v2 task files (allenai/natural-instructions): a file's metadata,
where its instances lie, and instance i read alone.

A task file is one JSON object whose `Instances` array holds thousands of examples.
Parsing 1,600 of them whole at registration takes minutes; instead each file is scanned
once for its instances' byte spans (`json_spans`), and that index, with the file's other
keys, is kept in `records.cache_dir()` while the file is unchanged. Nothing here imports
seqio or TensorFlow: input workers load this module (tasks/natural_instructions.py
registers the collection).
"""

import dataclasses
import json
import os
import re
from typing import Any, Mapping, Optional

from flan_tune.errors import SourceError
from flan_tune.tasks import records as records_lib
from flan_tune.tasks.json_spans import array_item_spans, parse_item

LANGUAGE_KEYS = ("Input_language", "Output_language", "Instruction_language")
TASK_NUMBER = re.compile(r"^task(\d+)_")
_INDEX_VERSION = 1


@dataclasses.dataclass(frozen=True)
class TaskFile:
  """One task file's metadata and where its instances lie (memory-mapped)."""
  name: str
  path: str
  definition: str
  positive_examples: tuple
  categories: tuple
  languages: Mapping[str, tuple]
  spans: records_lib.MappedArray  # [n, 2] byte offsets of the instances

  @property
  def number(self) -> int:
    return int(TASK_NUMBER.match(self.name).group(1))


def _strings(value: Any, where: str, key: str) -> tuple:
  values = [value] if isinstance(value, str) else value
  if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
    raise SourceError(f"{where}: {key!r} must be a string or a list of strings")
  return tuple(values)


def _positive(item: Any, where: str) -> dict:
  if not isinstance(item, Mapping) or not isinstance(item.get("input"), str) or not (
      isinstance(item.get("output"), str)):
    raise SourceError(f"{where}: a positive example needs string 'input' and 'output'")
  explanation = item.get("explanation") or ""
  return {"input": item["input"], "output": item["output"],
          "explanation": explanation if isinstance(explanation, str) else str(explanation)}


def read_task_file(path: str) -> TaskFile:
  """A task file's metadata and instance index, from the cache when the file is
  unchanged, else by scanning it (and caching the result)."""
  name = os.path.basename(path)[:-len(".json")]
  index = records_lib.cache_stem("natural_instructions", path, _INDEX_VERSION)
  if not os.path.exists(index + ".json"):
    with open(path, "rb") as f:
      data = f.read()
    spans, others = array_item_spans(data, "Instances", path)
    records_lib.save_array(index + ".npy", spans)
    others.pop("Instances")
    records_lib.save_json(index + ".json", others)
  with open(index + ".json") as f:
    meta = json.load(f)
  for key in ("Definition", "Positive Examples", "Categories") + LANGUAGE_KEYS:
    if key not in meta:
      raise SourceError(f"{path}: no {key!r} key")
  definition = " ".join(_strings(meta["Definition"], path, "Definition")).strip()
  if not definition:
    raise SourceError(f"{path}: 'Definition' is empty")
  if not isinstance(meta["Positive Examples"], list):
    raise SourceError(f"{path}: 'Positive Examples' must be a list")
  positives = tuple(_positive(item, f"{path}: Positive Examples[{i}]")
                    for i, item in enumerate(meta["Positive Examples"]))
  return TaskFile(name, path, definition, positives,
                  _strings(meta["Categories"], path, "Categories"),
                  {key: _strings(meta[key], path, key) for key in LANGUAGE_KEYS},
                  records_lib.MappedArray(index + ".npy"))


class InstanceRecords(records_lib.RawRecords):
  """A task file's instances, each read and parsed alone at its byte span, as
  {"input": text, "output": [references]}."""

  def __init__(self, path: str, spans: records_lib.MappedArray, limit: Optional[int] = None):
    self.path, self.spans = path, spans
    self._length = len(spans) if limit is None else min(limit, len(spans))
    self._fd = None

  def __len__(self):
    return self._length

  def __getitem__(self, index):
    index = self._check(index)
    if self._fd is None:
      self._fd = os.open(self.path, os.O_RDONLY)
    start, end = (int(x) for x in self.spans[index])
    origin = f"{self.path}: Instances[{index}]"
    item = parse_item(os.pread(self._fd, end - start, start), origin)
    output = item.get("output") if isinstance(item, Mapping) else None
    output = [output] if isinstance(output, str) else output
    if not isinstance(item.get("input") if isinstance(item, Mapping) else None, str) or not (
        isinstance(output, list) and output and all(isinstance(o, str) for o in output)):
      raise SourceError(f"{origin}: an instance needs a string 'input' and a non-empty "
                        "'output' list of strings")
    return origin, {"input": item["input"], "output": output}

  def __getstate__(self):
    return {**self.__dict__, "_fd": None}

  def __del__(self):
    if getattr(self, "_fd", None) is not None:
      os.close(self._fd)


def instance_fields(raw: Mapping[str, Any], *, definition: str, example: Mapping) -> dict:
  """example_fn: an instance or positive example with the task's definition and inline
  example; `output` is the first reference, `references` all of them."""
  return {"definition": definition, "input": raw["input"], "output": raw["output"][0],
          "references": raw["output"], "example_input": example.get("input", ""),
          "example_output": example.get("output", ""),
          "example_explanation": example.get("explanation", "")}
