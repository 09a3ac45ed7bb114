"""Data sources: JSONL (.jsonl, .jsonl.gz), Parquet, CSV/TSV, Python generators and TFDS.

Each source is a seqio DataSource (seqio tasks, evaluation and caching work as before)
that also gives its splits as random-access `records.Records`, which training's Grain
input reads by index (flan_tune.training.grain_input). JSONL and Parquet files are read
by index, never whole, so files larger than memory work; CSV files and generators are
small and load once. TFDS datasets prepared as ArrayRecord are read through TFDS's
random-access data sources. Every record carries `_origin` ("train.jsonl:17") so errors
point back to it.
"""

import csv
import os
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import seqio
import tensorflow as tf

from flan_tune.errors import SourceError
from flan_tune.tasks import records as records_lib
from flan_tune.tasks.records import ORIGIN, normalize_value, to_python  # noqa: F401

Paths = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


class RecordSource(seqio.DataSource):
  """A seqio DataSource over random-access records, built per split by `_raw(split)`."""

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

  def _raw(self, split: str) -> records_lib.RawRecords:
    raise NotImplementedError

  def records(self, split: str) -> Sequence[dict]:
    """The split's records by index; the first is read now, so a file that cannot be
    opened, or lacks a mapped column, fails here."""
    if split not in self.splits:
      raise SourceError(f"{self!r} has no split {split!r}; it has {list(self.splits)}")
    if split not in self._records:
      split_records = records_lib.Records(self._raw(split), self._field_map)
      if len(split_records):
        split_records[0]  # pylint: disable=pointless-statement
      self._records[split] = split_records
    return self._records[split]

  def num_input_examples(self, split: str) -> int:
    return len(self.records(split))

  def get_dataset(self, split: str = "train", shuffle: bool = True,
                  seed: Optional[int] = None, shard_info=None, *,
                  sequence_length=None, use_cached=False, num_epochs=1) -> tf.data.Dataset:
    """tf.data over the whole split, read into memory (evaluation and seqio's paths;
    training reads records by index instead)."""
    split_records = self.records(split)
    indices = range(len(split_records))
    if shard_info is not None:
      indices = indices[shard_info.index::shard_info.num_shards]
    rows = [split_records[i] for i in indices]
    ds = tf.data.Dataset.from_tensor_slices(_columns(rows, split))
    if shuffle and rows:
      ds = ds.shuffle(len(rows), seed=seed)
    return ds


class InMemorySource(RecordSource):
  """Records loaded once per split by `_read(split)` and checked whole when loaded."""

  def _read(self, split: str) -> Iterable[tuple]:
    """Yields (origin, raw mapping) pairs for a split."""
    raise NotImplementedError

  def _raw(self, split):
    return records_lib.LoadedRecords(list(self._read(split)))

  def records(self, split: str) -> list:
    split_records = super().records(split)
    if not isinstance(split_records, list):
      split_records = self._records[split] = list(split_records)
    return split_records


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


class _Files:
  """Splits given as {split: path or paths}."""

  def _set_files(self, files: Mapping[str, Paths]) -> list:
    if not files:
      raise SourceError(f"{type(self).__name__} needs at least one split: {{'train': path}}")
    self._files = {split: _as_path_list(paths) for split, paths in files.items()}
    return list(self._files)

  def __repr__(self):
    return f"{type(self).__name__}({self._files})"


class JsonlSource(_Files, RecordSource):
  """One JSON object per line (.jsonl, or .jsonl.gz, decompressed once into
  `records.cache_dir()`), read by line offsets; `fields` maps field names to (dotted)
  column names. A file holding one JSON array of objects (as Alpaca's
  `alpaca_data.json` is) is read whole; its records' origins are "path[index]"."""

  def __init__(self, files: Mapping[str, Paths], fields: Optional[Mapping[str, str]] = None):
    super().__init__(splits=self._set_files(files), fields=fields)

  def _raw(self, split):
    return _concat([records_lib.jsonl_records(path) for path in self._files[split]])


class ParquetSource(_Files, RecordSource):
  """Parquet files read one row group at a time; `fields` maps fields to columns (only
  the mapped top-level columns are decoded)."""

  def __init__(self, files: Mapping[str, Paths], fields: Optional[Mapping[str, str]] = None):
    super().__init__(splits=self._set_files(files), fields=fields)

  def _raw(self, split):
    columns = None if self._field_map is None else sorted(
        {column.split(".")[0] for column in self._field_map.values()})
    return _concat([records_lib.ParquetRecords(path, columns) for path in self._files[split]])


def _concat(parts: list) -> records_lib.RawRecords:
  return parts[0] if len(parts) == 1 else records_lib.ConcatRecords(parts)


class LoadedJsonlSource(_Files, InMemorySource):
  """JSONL read whole when first used, for sources that filter or reshape records as
  they read them (the `_read` of tasks/instruct.py's sources)."""

  def __init__(self, files: Mapping[str, Paths], fields: Optional[Mapping[str, str]] = None):
    super().__init__(splits=self._set_files(files), fields=fields)

  def _read(self, split):
    for path in self._files[split]:
      yield from records_lib.jsonl_records(path)


class CsvSource(_Files, InMemorySource):
  """CSV or TSV with a header row; the delimiter follows the extension unless given."""

  def __init__(self, files, fields=None, delimiter: Optional[str] = None):
    self._delimiter = delimiter
    super().__init__(splits=self._set_files(files), fields=fields)

  def _open(self, path: str):
    try:
      return open(path, encoding="utf-8", newline="")
    except OSError as e:
      raise SourceError(f"{path}: cannot open ({e.strerror})") from None

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

  def _array_record_builder(self):
    """The dataset's builder when it is prepared as ArrayRecord, else None."""
    import tensorflow_datasets as tfds

    try:
      builder = self.tfds_dataset.builder
      return builder if builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD else None
    except (tfds.core.registered.DatasetNotFoundError, AssertionError, OSError):
      return None

  def array_records(self, split: str) -> Optional[records_lib.Records]:
    """The split read by index through TFDS's random-access data source, when the
    dataset is prepared as ArrayRecord; None otherwise (it only streams)."""
    if self._array_record_builder() is None:
      return None
    loader = self.tfds_dataset
    return records_lib.Records(records_lib.TfdsRecords(
        loader.resolved_tfds_name(), loader.data_dir, loader._map_split(split)),  # pylint: disable=protected-access
                               normalize=False)

  def get_dataset(self, split=None, shuffle=True, seed=None, shard_info=None, *,
                  sequence_length=None, use_cached=False, num_epochs=1) -> tf.data.Dataset:
    """seqio's, except for ArrayRecord datasets, which TFDS reads only by index: those
    stream from their data source (evaluation's path)."""
    builder = self._array_record_builder()
    if builder is None:
      return super().get_dataset(split, shuffle, seed, shard_info,
                                 sequence_length=sequence_length, use_cached=use_cached,
                                 num_epochs=num_epochs)
    source = builder.as_data_source(split=self.tfds_dataset._map_split(split))  # pylint: disable=protected-access
    order = list(range(len(source)))
    if shard_info is not None:
      order = order[shard_info.index::shard_info.num_shards]
    ds = tf.data.Dataset.from_generator(lambda: (source[i] for i in order),
                                        output_signature=builder.info.features.get_tensor_spec())
    if shuffle:
      ds = ds.shuffle(max(len(order), 1), seed=seed)
    return ds.repeat(num_epochs)


def random_access_records(source: seqio.DataSource, split: str) -> Optional[Sequence[dict]]:
  """A split as records read by index, or None where the source only streams (a seqio
  source of another kind, a TFDS dataset not prepared as ArrayRecord)."""
  if isinstance(source, RecordSource):
    return source.records(split)
  if isinstance(source, TfdsSource):
    return source.array_records(split)
  return None


def tfds_source(tfds_name: str, splits=None, num_examples: Optional[Mapping[str, int]] = None,
                tfds_data_dir: Optional[str] = None) -> TfdsSource:
  """A TFDS dataset as a source; pair it with an `example_fn` that maps features to fields.

  `splits` is a list of names or {name: TFDS split or slice}, e.g.
  {"train": "train[:95%]", "validation": "train[95%:]"}; `num_examples` declares sizes.
  """
  if not splits:
    raise SourceError(f"TFDS {tfds_name}: name its splits, e.g. splits=('train', 'validation')")
  return TfdsSource(tfds_name, splits, num_examples, tfds_data_dir)
