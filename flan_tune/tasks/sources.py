"""Data sources: JSONL, CSV/TSV files and Python generators, plus seqio's TFDS source.

File and generator sources are read once, in Python, into memory. That makes every
malformed line a Python error naming its file and line before any tf.data graph runs,
gives exact example counts for mixture rates, and lets each host take any shard.
Every record carries `_origin` ("train.jsonl:17") so later errors can point back to it.
"""

import csv
import json
import os
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import seqio
import tensorflow as tf

from flan_tune.errors import SourceError

ORIGIN = "_origin"
Paths = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


def normalize_value(value: Any, where: str, field: str):
  """Strings stay, numbers become strings, lists become lists of strings."""
  if isinstance(value, str):
    return value
  if isinstance(value, (int, float)):
    return str(value)
  if isinstance(value, (list, tuple)):
    return [normalize_value(v, where, field) for v in value]
  if value is None:
    raise SourceError(f"{where}: field {field!r} is null")
  raise SourceError(f"{where}: field {field!r} has unsupported type "
                    f"{type(value).__name__} (use strings, numbers or lists of them)")


class InMemorySource(seqio.DataSource):
  """A seqio DataSource over records loaded once per split by `_read(split)`."""

  def __init__(self, splits: Iterable[str], fields: Optional[Mapping[str, str]] = None):
    super().__init__(splits=splits, caching_permitted=False)
    self._field_map = dict(fields) if fields is not None else None
    self._records = {}

  @property
  def declared_fields(self) -> Optional[frozenset]:
    """Field names known before reading, when a field mapping was given."""
    return frozenset(self._field_map) if self._field_map is not None else None

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return True

  def list_shards(self, split: str) -> Sequence[str]:
    return [split]

  def _read(self, split: str) -> Iterable[tuple]:
    """Yields (origin, raw mapping) pairs for a split."""
    raise NotImplementedError

  def records(self, split: str) -> list:
    if split not in self.splits:
      raise SourceError(f"{self!r} has no split {split!r}; it has {list(self.splits)}")
    if split not in self._records:
      self._records[split] = self._load(split)
    return self._records[split]

  def _load(self, split: str) -> list:
    records, fields = [], None
    for origin, raw in self._read(split):
      record = self._map_fields(raw, origin)
      if fields is None:
        fields = set(record)
      elif set(record) != fields:
        extra, missing = sorted(set(record) - fields), sorted(fields - set(record))
        raise SourceError(f"{origin}: fields differ from the first record "
                          f"(missing {missing}, extra {extra})")
      record[ORIGIN] = origin
      records.append(record)
    return records

  def _map_fields(self, raw: Mapping[str, Any], origin: str) -> dict:
    if not isinstance(raw, Mapping):
      raise SourceError(f"{origin}: expected an object of fields, got {type(raw).__name__}")
    if self._field_map is None:
      return {k: normalize_value(v, origin, k) for k, v in raw.items()}
    record = {}
    for field, column in self._field_map.items():
      value = raw
      for part in column.split("."):
        if not isinstance(value, Mapping) or part not in value:
          raise SourceError(f"{origin}: no column {column!r} (mapped to field {field!r}); "
                            f"the record has {sorted(raw)}")
        value = value[part]
      record[field] = normalize_value(value, origin, field)
    return record

  def num_input_examples(self, split: str) -> int:
    return len(self.records(split))

  def get_dataset(self, split: str = "train", shuffle: bool = True,
                  seed: Optional[int] = None, shard_info=None, *,
                  sequence_length=None, use_cached=False, num_epochs=1) -> tf.data.Dataset:
    records = self.records(split)
    if shard_info is not None:
      records = records[shard_info.index::shard_info.num_shards]
    ds = tf.data.Dataset.from_tensor_slices(_columns(records, split))
    if shuffle and records:
      ds = ds.shuffle(len(records), seed=seed)
    return ds


def _columns(records: list, split: str) -> dict:
  if not records:
    raise SourceError(f"split {split!r} has no records")
  columns = {}
  for field in records[0]:
    values = [r[field] for r in records]
    is_list = [isinstance(v, list) for v in values]
    if any(is_list) and not all(is_list):
      bad = records[is_list.index(not is_list[0])][ORIGIN]
      raise SourceError(f"{bad}: field {field!r} mixes lists and single values across records")
    columns[field] = (tf.ragged.constant(values, dtype=tf.string) if is_list[0]
                      else tf.constant(values, dtype=tf.string))
  return columns


def _as_path_list(paths: Paths) -> list:
  if isinstance(paths, (str, os.PathLike)):
    return [os.fspath(paths)]
  return [os.fspath(p) for p in paths]


class _FileSource(InMemorySource):

  def __init__(self, files: Mapping[str, Paths], fields=None):
    if not files:
      raise SourceError(f"{type(self).__name__} needs at least one split: {{'train': path}}")
    self._files = {split: _as_path_list(paths) for split, paths in files.items()}
    super().__init__(splits=list(self._files), fields=fields)

  def __repr__(self):
    return f"{type(self).__name__}({self._files})"

  def _open(self, path: str):
    try:
      return open(path, encoding="utf-8", newline="")
    except OSError as e:
      raise SourceError(f"{path}: cannot open ({e.strerror})") from None


class JsonlSource(_FileSource):
  """One JSON object per line; `fields` maps field names to (dotted) column names.

  A file holding one JSON array of objects (as Alpaca's `alpaca_data.json` is) is read
  too; its records' origins are "path[index]".
  """

  def _read(self, split):
    for path in self._files[split]:
      with self._open(path) as f:
        first = f.read(1)
        while first.isspace():
          first = f.read(1)
        f.seek(0)
        if first == "[":
          yield from self._read_array(path, f)
          continue
        for line_number, line in enumerate(f, start=1):
          if not line.strip():
            continue
          origin = f"{path}:{line_number}"
          try:
            yield origin, json.loads(line)
          except json.JSONDecodeError as e:
            raise SourceError(f"{origin}: invalid JSON ({e.msg} at column {e.colno})") from None

  def _read_array(self, path, f):
    try:
      records = json.load(f)
    except json.JSONDecodeError as e:
      raise SourceError(f"{path}:{e.lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
    for index, record in enumerate(records):
      yield f"{path}[{index}]", record


class CsvSource(_FileSource):
  """CSV or TSV with a header row; the delimiter follows the extension unless given."""

  def __init__(self, files, fields=None, delimiter: Optional[str] = None):
    self._delimiter = delimiter
    super().__init__(files, fields)

  def _read(self, split):
    for path in self._files[split]:
      delimiter = self._delimiter or ("\t" if path.endswith((".tsv", ".tab")) else ",")
      with self._open(path) as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        if reader.fieldnames is None:
          raise SourceError(f"{path}:1: empty file, expected a header row")
        header = set(reader.fieldnames)
        for field, column in (self._field_map or {}).items():
          if column not in header:
            raise SourceError(f"{path}:1: no column {column!r} (mapped to field {field!r}); "
                              f"the header has {reader.fieldnames}")
        for row in reader:
          origin = f"{path}:{reader.line_num}"
          if None in row or None in row.values():
            cells = sum(v is not None for k, v in row.items() if k is not None)
            cells += len(row.get(None, []))
            raise SourceError(f"{origin}: row has {cells} cells where the header has "
                              f"{len(reader.fieldnames)}")
          yield origin, row


class GeneratorSource(InMemorySource):
  """Records from `fn(split)`, a Python generator; seed it with functools.partial."""

  def __init__(self, fn: Callable[[str], Iterable[Mapping[str, Any]]],
               splits: Sequence[str] = ("train", "validation"), fields=None):
    self._fn = fn
    self._fn_name = getattr(fn, "__qualname__", None) or getattr(
        getattr(fn, "func", None), "__qualname__", repr(fn))
    super().__init__(splits=splits, fields=fields)

  def __repr__(self):
    return f"GeneratorSource({self._fn_name})"

  def _read(self, split):
    for index, raw in enumerate(self._fn(split)):
      yield f"{self._fn_name}({split!r})[{index}]", raw


class TfdsSource(seqio.TfdsDataSource):
  """seqio's TFDS source, with split sizes that can be declared up front.

  Mixture rates need example counts when the mixture is registered. Declaring them
  (the TFDS catalog's sizes for the pinned dataset version) lets a collection register
  its mixtures on a machine where the data is not downloaded yet, and under
  `tfds.testing.mock_data`, whose datasets carry no split sizes.
  """

  def __init__(self, tfds_name: str, splits, num_examples: Optional[Mapping[str, int]] = None,
               tfds_data_dir: Optional[str] = None):
    super().__init__(tfds_name=tfds_name, splits=splits, tfds_data_dir=tfds_data_dir)
    self._declared_sizes = dict(num_examples or {})
    unknown = set(self._declared_sizes) - set(self.splits)
    if unknown:
      raise SourceError(f"TFDS {tfds_name}: sizes declared for {sorted(unknown)}, which are "
                        f"not among its splits {list(self.splits)}")

  def __repr__(self):
    return f"TfdsSource({self.tfds_dataset.name})"

  def num_input_examples(self, split: str) -> Optional[int]:
    if split in self._declared_sizes:
      return self._declared_sizes[split]
    return super().num_input_examples(split)


def tfds_source(tfds_name: str, splits=None, num_examples: Optional[Mapping[str, int]] = None,
                tfds_data_dir: Optional[str] = None) -> TfdsSource:
  """A TFDS dataset as a source; pair it with an `example_fn` that maps features to fields.

  `splits` is a list of names or {name: TFDS split or slice}, e.g.
  {"train": "train[:95%]", "validation": "train[95%:]"}; `num_examples` declares sizes.
  """
  if not splits:
    raise SourceError(f"TFDS {tfds_name}: name its splits, e.g. splits=('train', 'validation')")
  return TfdsSource(tfds_name, splits, num_examples, tfds_data_dir)
