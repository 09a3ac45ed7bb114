"""The published FLAN 2022 submix files, mixed as Flan-T5 was trained.

The released data (e.g. the `*_submix_original` datasets, or a mirror's
`{flan,t0,niv2,cot,dialog}_{zs,fs}_{opt,noopt}_train.jsonl.gz`) holds rows already
rendered with FLAN's templates: `inputs, targets, task_source, task_name,
template_type`. `flan2022_submix(files)` registers one prerendered task per
(task_name, template_type) of each submix, with the rows as they are, and a mixture
with FLAN 2022's submix weights and per-task caps over the real row counts.

The files are tens of GB, so nothing is loaded whole: one pass over each file records, in
`records.cache_dir()`, each row's task and where the rows lie (a .gz file is decompressed
and a Parquet file copied as JSONL once, since neither can give one row cheaply). Later
registrations read that record; training reads each drawn row alone, at its offset.
"""

import glob
import hashlib
import json
import os
import re
from typing import Dict, List, Mapping, Optional, Sequence, Union

import gin
import numpy as np

from flan_tune.errors import RegistrationError, SourceError
from flan_tune.mixtures import MixtureSpec, register_mixture
from flan_tune.tasks import Template, register_task
from flan_tune.tasks import records as records_lib
from flan_tune.tasks.sources import RecordSource
from flan_tune.tasks.templates import PromptStyle
from flan_tune.tasks.vocabularies import sentencepiece_vocabulary

# Flan 2022's top-level weights (Chung et al. 2022) and the per-task caps of each submix.
SUBMIX_WEIGHTS = {"flan2021": 0.4, "t0": 0.32, "niv2": 0.2, "cot": 0.05, "dialog": 0.03}
SUBMIX_CAPS = {"flan2021": 30000, "t0": 20000, "niv2": 5000, "cot": 100000, "dialog": 200000}
COLUMNS = ("inputs", "targets", "task_source", "task_name", "template_type")
KEY_COLUMNS = ("task_source", "task_name", "template_type")
_INDEX_VERSION = 1
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.]+")
AS_IS = Template("{inputs}", "{targets}")
_SEPARATOR = "\x1f"  # joins a row's (source, name, type) into one key

Files = Union[str, Sequence[str]]


def style_of(template_type: str, where: str) -> PromptStyle:
  """The prompt style a row's template_type names: zero- or few-shot, and options, no
  options or chain of thought ("zs_opt", "fs_noopt", "cot_fs_opt", "zsopt", ...)."""
  text = template_type.lower()
  shot = "fs" if re.search(r"fs|few", text) else "zs" if re.search(r"zs|zero", text) else None
  kind = ("cot" if "cot" in text else "noopt" if "noopt" in text else
          "opt" if "opt" in text else None)
  if shot is None or kind is None:
    raise SourceError(f"{where}: template_type {template_type!r} names no prompt style "
                      "(expected zs/fs with opt, noopt or cot, e.g. 'fs_noopt')")
  return PromptStyle(f"{shot}_{kind}")


def _expand(patterns: Files, submix: str) -> List[str]:
  patterns = [patterns] if isinstance(patterns, (str, os.PathLike)) else list(patterns)
  paths = []
  for pattern in patterns:
    found = sorted(glob.glob(os.fspath(pattern))) if glob.has_magic(os.fspath(pattern)) \
        else [os.fspath(pattern)]
    if not found or not all(os.path.isfile(p) for p in found):
      raise RegistrationError(f"flan2022 submix {submix!r}: no file {os.fspath(pattern)!r}")
    paths += found
  if not paths:
    raise RegistrationError(f"flan2022 submix {submix!r}: no files given")
  return paths


class FileIndex:
  """One file's rows: each row's task as a code into `keys` (source, name, type), and the
  lines' byte offsets of the JSONL its rows are read from; all memory-mapped from the cache.

  Parquet cannot give one row without decoding its row group (training drew 7x fewer
  batches/s that way in tools/bench_collections.py, with 1,000-row groups), so with
  `copy_parquet` the first pass also writes the rows as JSONL into the cache, as a .gz
  file is decompressed once; without it rows are read from their row groups."""

  def __init__(self, path: str, copy_parquet: bool = True):
    self.path, self.copy_parquet = path, copy_parquet
    reads_row_groups = path.endswith(".parquet") and not copy_parquet
    self.stem = records_lib.cache_stem("flan2022", path, _INDEX_VERSION) + (
        "-row-groups" if reads_row_groups else "")
    if not os.path.exists(self.stem + ".json"):
      self._build()
    with open(self.stem + ".json") as f:
      meta = json.load(f)
    self.keys = [tuple(k) for k in meta["keys"]]
    self.data_path = meta["data_path"]
    self.codes = records_lib.MappedArray(self.stem + ".codes.npy")

  def records(self) -> records_lib.RawRecords:
    if self.data_path.endswith(".parquet"):
      return records_lib.ParquetRecords(self.path, list(COLUMNS))
    index = tuple(records_lib.MappedArray(f"{self.stem}.{name}.npy")
                  for name in ("starts", "ends", "lines"))
    return records_lib.JsonlRecords(self.data_path, self.path, index=index)

  def _build(self):
    parquet = self.path.endswith(".parquet")
    if parquet and not self.copy_parquet:
      data_path, joined = self.path, _parquet_rows(self.path)
    else:
      if parquet:
        data_path = self.stem + ".rows.jsonl"
        joined = _parquet_rows(self.path, copy_to=data_path)
      else:
        data_path = (records_lib.decompressed_copy(self.path) if self.path.endswith(".gz")
                     else self.path)
      starts, ends, lines = records_lib.index_lines(data_path, self.path)
      if lines is None:
        lines = np.arange(1, len(starts) + 1, dtype=np.int64)
      for name, array in (("starts", starts), ("ends", ends), ("lines", lines)):
        records_lib.save_array(f"{self.stem}.{name}.npy", array)
      if not parquet:
        joined = _jsonl_keys(data_path, self.path, len(starts))
    keys, codes = np.unique(joined, return_inverse=True) if len(joined) else ([], [])
    records_lib.save_array(self.stem + ".codes.npy", np.asarray(codes, np.int32).reshape(-1))
    records_lib.save_json(self.stem + ".json", {"path": self.path, "data_path": data_path,
                                     "keys": [k.split(_SEPARATOR) for k in keys]})


def _parquet_rows(path: str, copy_to: Optional[str] = None) -> np.ndarray:
  """Each row's joined (source, name, type), reading only those columns, or every column
  when the rows are also copied as JSON lines to `copy_to` (a row per line)."""
  import pyarrow.compute as pc
  import pyarrow.parquet as pq

  try:
    parquet = pq.ParquetFile(path)
  except (OSError, ValueError) as e:
    raise SourceError(f"{path}: cannot read as Parquet ({e})") from None
  missing = [c for c in COLUMNS if c not in parquet.schema_arrow.names]
  if missing:
    raise SourceError(f"{path}: no column(s) {missing}; the file has "
                      f"{parquet.schema_arrow.names}")
  parts = []
  if copy_to:
    os.makedirs(os.path.dirname(copy_to), exist_ok=True)
  out = open(copy_to + ".partial", "w", encoding="utf-8") if copy_to else None
  try:
    for batch in parquet.iter_batches(columns=list(COLUMNS if out else KEY_COLUMNS),
                                      batch_size=1 << 14):
      columns = [batch.column(c) for c in KEY_COLUMNS]
      if any(c.null_count for c in columns):
        raise SourceError(f"{path}: null {list(KEY_COLUMNS)} values")
      parts.append(np.asarray(pc.binary_join_element_wise(*columns, _SEPARATOR)
                              .to_numpy(zero_copy_only=False), dtype=object))
      if out:
        out.writelines(json.dumps(row) + "\n" for row in batch.to_pylist())
  finally:
    if out:
      out.close()
  if copy_to:
    os.replace(copy_to + ".partial", copy_to)
  return np.concatenate(parts) if parts else np.zeros(0, object)


def _jsonl_keys(path: str, display: str, count: int) -> np.ndarray:
  """Each non-blank line's joined (source, name, type), in the order `index_lines` gives."""
  keys = np.empty(count, object)
  row = 0
  with open(path, "rb") as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        value = json.loads(line)
      except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceError(f"{display}:{number}: invalid JSON ({getattr(e, 'msg', e)})") from None
      if not isinstance(value, dict) or not all(isinstance(value.get(c), str) for c in COLUMNS):
        found = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise SourceError(f"{display}:{number}: a row needs string columns {list(COLUMNS)}; "
                          f"it has {found}")
      keys[row] = _SEPARATOR.join(value[c] for c in KEY_COLUMNS)
      row += 1
  return keys


class SubmixTaskSource(RecordSource):
  """One task's rows of a submix: `rows` (global row numbers over the submix's files,
  memory-mapped) of the files' records."""

  def __init__(self, description: str, files_records: records_lib.RawRecords,
               rows: records_lib.MappedArray):
    self._description, self._files_records, self._rows = description, files_records, rows
    super().__init__(splits=["train"], fields={c: c for c in COLUMNS})

  def __repr__(self):
    return f"flan2022.SubmixTaskSource({self._description})"

  def num_input_examples(self, split: str) -> int:
    return len(self._rows) if split == "train" else super().num_input_examples(split)

  def _raw(self, split):
    return records_lib.SubsetRecords(self._files_records, self._rows)


def submix_tasks(paths: Sequence[str], copy_parquet: bool = True) -> tuple:
  """(records of every file, {(task_name, style): rows}, {(task_name, style): sources})
  of a submix's files, its row order cached for the set of files."""
  indexes = [FileIndex(path, copy_parquet) for path in paths]
  stem = os.path.join(records_lib.cache_dir(), "flan2022", hashlib.sha256(
      "|".join(index.stem for index in indexes).encode()).hexdigest()[:24])
  if not os.path.exists(stem + ".tasks.json"):
    _build_order(stem, indexes)
  with open(stem + ".tasks.json") as f:
    tasks = json.load(f)
  parts = [index.records() for index in indexes]
  records = parts[0] if len(parts) == 1 else records_lib.ConcatRecords(parts)
  rows, sources = {}, {}
  for name, style, task_sources, low, high in tasks:
    rows[name, style] = records_lib.MappedArray(stem + ".order.npy", low, high)
    sources[name, style] = task_sources
  return records, rows, sources


def _build_order(stem: str, indexes: Sequence[FileIndex]) -> None:
  """Every row's global number, grouped by (task_name, style); the groups' bounds."""
  groups: Dict[tuple, int] = {}
  sources: Dict[tuple, set] = {}
  codes = []
  for index in indexes:
    local = np.empty(len(index.keys), np.int64)
    for code, (source, name, template_type) in enumerate(index.keys):
      style = style_of(template_type, f"{index.path}: task {name!r}").value
      local[code] = groups.setdefault((name, style), len(groups))
      sources.setdefault((name, style), set()).add(source)
    codes.append(local[np.asarray(index.codes[:], np.int64)] if len(local) else
                 np.zeros(0, np.int64))
  codes = np.concatenate(codes) if codes else np.zeros(0, np.int64)
  order = np.argsort(codes, kind="stable")
  bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(groups)))])
  records_lib.save_array(stem + ".order.npy", order.astype(np.int64))
  records_lib.save_json(stem + ".tasks.json", [
      [name, style, sorted(sources[name, style]), int(bounds[g]), int(bounds[g + 1])]
      for (name, style), g in sorted(groups.items(), key=lambda kv: kv[1])])


def _seqio_name(prefix: str, submix: str, task_name: str, style: str, taken: set) -> str:
  """`{prefix}_{submix}_{task_name}_{style}` in the characters seqio takes; a hash of the
  task name is added where two task names differ only in the others."""
  base = f"{prefix}_{submix}_{_NAME_UNSAFE.sub('_', task_name).strip('_')}"
  if f"{base}_{style}" in taken:
    base += "_" + hashlib.sha256(task_name.encode()).hexdigest()[:6]
  return f"{base}_{style}"


def _register_one(prefix: str, submix: str, task_name: str, style: str, records, rows,
                  sources: Sequence[str], taken: set, common: Mapping) -> str:
  """One prerendered task: a (task_name, template type) of a submix, as its rows are."""
  name = _seqio_name(prefix, submix, task_name, style, taken)
  taken.add(name)
  description = f"{submix} {task_name!r} {style} ({', '.join(sources)})"
  register_task(
      name=name, source=SubmixTaskSource(description, records, rows),
      templates=[AS_IS], cluster=submix, collection=submix, styles=[style], prerendered=True,
      rank_classification=False, **common)
  return name


_REGISTERED: Dict[tuple, dict] = {}


@gin.configurable
def flan2022_submix(files: Mapping[str, Files] = gin.REQUIRED, *, prefix: str = "flan2022",
                    weights: Optional[Mapping[str, float]] = None,
                    caps: Optional[Mapping[str, int]] = None,
                    vocabulary_file: Optional[str] = None, copy_parquet: bool = True,
                    seed: int = 0) -> dict:
  """Registers the submixes' tasks and the mixture `prefix`; returns {"tasks": {submix:
  [task names]}, "mixture": prefix, "rows": {submix: rows}}.

  `files` maps a submix ("flan2021", "t0", "niv2", "cot", "dialog", or any name given a
  weight) to its files: paths or glob patterns of Parquet, JSONL or JSONL.gz. `weights`
  and `caps` override FLAN 2022's (SUBMIX_WEIGHTS, SUBMIX_CAPS) per submix; a submix
  without files is left out and the others' weights renormalized. `vocabulary_file` is
  the SentencePiece model to tokenize with (the initial checkpoint's spiece.model); None:
  flan-tune's default vocabulary. `copy_parquet` writes Parquet rows once into the cache
  as JSONL, read a line at a time (see FileIndex); False reads their row groups. Calling
  again with the same arguments returns the same names.
  """
  weights = {**SUBMIX_WEIGHTS, **(weights or {})}
  caps = {**SUBMIX_CAPS, **(caps or {})}
  key = (prefix, json.dumps({k: files[k] for k in sorted(files)}, default=str),
         json.dumps(weights, sort_keys=True), json.dumps(caps, sort_keys=True),
         vocabulary_file, copy_parquet, seed)
  if key in _REGISTERED:
    return _REGISTERED[key]
  if not files:
    raise RegistrationError("flan2022_submix: no files given; map a submix to its files, "
                            "e.g. {'flan2021': '/data/flan2021/*.parquet'}")
  unknown = sorted(set(files) - set(weights))
  if unknown:
    raise RegistrationError(f"flan2022_submix: no weight for submix(es) {unknown}; known "
                            f"{sorted(weights)} (pass weights={{name: weight}})")
  common = {"seed": seed, "vocabulary": sentencepiece_vocabulary(vocabulary_file)}
  names: Dict[str, List[str]] = {}
  rows: Dict[str, int] = {}
  taken: set = set()
  for submix in sorted(files):
    records, task_rows, task_sources = submix_tasks(_expand(files[submix], submix),
                                                    copy_parquet)
    names[submix] = [_register_one(prefix, submix, task_name, style, records, selected,
                                   task_sources[task_name, style], taken, common)
                     for (task_name, style), selected in sorted(task_rows.items())]
    rows[submix] = sum(len(r) for r in task_rows.values())
  spec = MixtureSpec(collection_weights={s: weights[s] for s in names},
                     caps={s: caps[s] for s in names if s in caps},
                     style_weights={style.value: 1.0 for style in PromptStyle})
  register_mixture(prefix, [n for submix in sorted(names) for n in names[submix]], spec)
  result = {"tasks": names, "mixture": prefix, "rows": rows}
  _REGISTERED[key] = result
  return result
