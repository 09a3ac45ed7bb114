"""Random-access records: one split of a source as a sequence that reads record i alone.

Training samples a mixture by index (which task, which example, which epoch), so a split
must give record i without reading the ones before it, in whichever worker process
asks. The readers here keep only an index in memory (a JSONL file's line offsets, a
Parquet file's row-group sizes), pickle small, and reopen their files in each process.
Every record carries `_origin` ("train.jsonl:17", "part-0.parquet:row group 2, row 9") so
later errors point back to it. Nothing here imports seqio or TensorFlow: input workers
load this module.
"""

import bisect
import collections
import gzip
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from flan_tune.errors import SourceError

ORIGIN = "_origin"
_SCAN_CHUNK = 16 << 20  # bytes read at a time while indexing a file


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


def to_python(value: Any) -> Any:
  """numpy leaves (from tf.data or TFDS data sources) to plain Python values (bytes are
  UTF-8 text)."""
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if isinstance(value, np.ndarray):
    return [to_python(v) for v in value] if value.ndim else to_python(value.item())
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, Mapping):
    return {k: to_python(v) for k, v in value.items()}
  return value


class RawRecords(Sequence):
  """`reader[i]` is (origin, raw mapping) of record i."""

  def __len__(self) -> int:
    raise NotImplementedError

  def __getitem__(self, index: int) -> tuple[str, Any]:
    raise NotImplementedError

  def _check(self, index: int) -> int:
    if not 0 <= index < len(self):
      raise IndexError(f"record {index} of {len(self)}")
    return index


class LoadedRecords(RawRecords):
  """Records already in memory (small files, generators)."""

  def __init__(self, items: Sequence[tuple[str, Any]]):
    self._items = list(items)

  def __len__(self):
    return len(self._items)

  def __getitem__(self, index):
    return self._items[self._check(index)]


class JsonlRecords(RawRecords):
  """A JSONL file read line by line at its byte offsets (16 bytes of index per record).

  `display` is the path errors name (a .jsonl.gz file's, when reading its decompressed
  copy); `index` is `index_lines(path)` when the caller keeps it (memory-mapped)."""

  def __init__(self, path: str, display: Optional[str] = None, index: Optional[tuple] = None):
    self.path, self.display = path, display or path
    self._starts, self._ends, self._lines = index or index_lines(path, self.display)
    self._fd = None

  def __len__(self):
    return len(self._starts)

  def __getitem__(self, index):
    index = self._check(index)
    if self._fd is None:
      self._fd = _open_fd(self.path, self.display)
    start = int(self._starts[index])
    text = os.pread(self._fd, int(self._ends[index]) - start, start)
    line = index + 1 if self._lines is None else int(self._lines[index])
    origin = f"{self.display}:{line}"
    try:
      return origin, json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      detail = f"{e.msg} at column {e.colno}" if hasattr(e, "colno") else str(e)
      raise SourceError(f"{origin}: invalid JSON ({detail})") from None

  def __getstate__(self):
    return {**self.__dict__, "_fd": None}  # each process opens its own descriptor

  def __del__(self):
    if getattr(self, "_fd", None) is not None:
      os.close(self._fd)


def _open_fd(path: str, display: str) -> int:
  try:
    return os.open(path, os.O_RDONLY)
  except OSError as e:
    raise SourceError(f"{display}: cannot open ({e.strerror})") from None


def index_lines(path: str, display: str):
  """(starts, ends, line numbers or None) of the non-blank lines, scanning in chunks."""
  fd = _open_fd(path, display)
  starts, ends, blank_lines = [], [], []
  try:
    offset = line_start = 0
    while True:
      chunk = os.pread(fd, _SCAN_CHUNK, offset)
      if not chunk:
        break
      newlines = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10) + offset
      starts.append(np.concatenate([[line_start], newlines[:-1] + 1]) if len(newlines)
                    else np.zeros(0, np.int64))
      ends.append(newlines)
      if len(newlines):
        line_start = int(newlines[-1]) + 1
      offset += len(chunk)
    if line_start < offset:  # a last line without a newline
      starts.append(np.array([line_start]))
      ends.append(np.array([offset]))
    starts = np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)
    ends = np.concatenate(ends).astype(np.int64) if ends else np.zeros(0, np.int64)
    # Lines of at most a few bytes may be blank (whitespace only): look at those alone.
    for i in np.flatnonzero(ends - starts <= 8):
      if not os.pread(fd, int(ends[i] - starts[i]), int(starts[i])).strip():
        blank_lines.append(i)
  finally:
    os.close(fd)
  if not blank_lines:
    return starts, ends, None
  keep = np.ones(len(starts), bool)
  keep[blank_lines] = False
  lines = np.flatnonzero(keep).astype(np.int64) + 1
  return starts[keep], ends[keep], lines


def _first_char(path: str, display: str) -> str:
  fd = _open_fd(path, display)
  try:
    head = os.pread(fd, 4096, 0)
  finally:
    os.close(fd)
  stripped = head.lstrip()
  return chr(stripped[0]) if stripped else ""


def json_array_records(path: str) -> LoadedRecords:
  """A file holding one JSON array of objects (as Alpaca's alpaca_data.json is), read
  whole; its records' origins are "path[index]"."""
  with open(path, encoding="utf-8") as f:
    try:
      items = json.load(f)
    except json.JSONDecodeError as e:
      raise SourceError(f"{path}:{e.lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
  if not isinstance(items, list):
    raise SourceError(f"{path}: expected a JSON array of objects")
  return LoadedRecords([(f"{path}[{i}]", item) for i, item in enumerate(items)])


def cache_dir() -> str:
  """Where decompressed copies of .gz files go ($FLAN_TUNE_CACHE_DIR, else
  ~/.cache/flan_tune)."""
  return os.environ.get("FLAN_TUNE_CACHE_DIR") or os.path.join(
      os.path.expanduser("~"), ".cache", "flan_tune")


def cache_stem(kind: str, path: str, version: Optional[int] = None) -> str:
  """Where data derived from a file goes, under `cache_dir()/kind`: named by the file's
  path, size and time (and the format's version), so a changed file gets fresh entries."""
  try:
    stat = os.stat(path)
  except OSError as e:
    raise SourceError(f"{path}: cannot open ({e.strerror})") from None
  key = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}"
  if version is not None:
    key = f"{version}|{key}"
  return os.path.join(cache_dir(), kind, hashlib.sha256(key.encode()).hexdigest()[:24])


def save_array(path: str, array: np.ndarray) -> None:
  """An .npy file written whole or not at all (another process may be reading the cache)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  np.save(path + ".partial.npy", array)
  os.replace(path + ".partial.npy", path)


def save_json(path: str, value: Any) -> None:
  """A JSON file written whole or not at all."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + ".partial", "w") as f:
    json.dump(value, f)
  os.replace(path + ".partial", path)


def decompressed_copy(path: str) -> str:
  """A gzip file's contents as a plain file in `cache_dir()`, written once (streamed, in
  bounded memory) and reused while the file's size and time are unchanged: gzip itself
  cannot be read at an offset."""
  target = f"{cache_stem('decompressed', path)}-{os.path.basename(path)[:-3]}"
  if os.path.exists(target):
    return target
  os.makedirs(os.path.dirname(target), exist_ok=True)
  handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), suffix=".partial")
  try:
    with gzip.open(path, "rb") as source, os.fdopen(handle, "wb") as out:
      shutil.copyfileobj(source, out, _SCAN_CHUNK)
    os.replace(temporary, target)
  except (OSError, EOFError, gzip.BadGzipFile) as e:
    os.unlink(temporary)
    raise SourceError(f"{path}: cannot decompress ({e})") from None
  return target


def jsonl_records(path: str) -> RawRecords:
  """A .jsonl (or .jsonl.gz) file by line offsets; a JSON array file read whole."""
  display = path
  if path.endswith(".gz"):
    path = decompressed_copy(path)
  if _first_char(path, display) == "[":
    return json_array_records(path)
  return JsonlRecords(path, display)


class ParquetRecords(RawRecords):
  """A Parquet file read one row group at a time: record i decodes its row group (the
  last few decoded stay cached), so memory is bounded by the row-group size."""

  CACHED_ROW_GROUPS = 2

  def __init__(self, path: str, columns: Optional[Sequence[str]] = None):
    import pyarrow.parquet as pq

    try:
      parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
      raise SourceError(f"{path}: cannot read as Parquet ({e})") from None
    metadata = parquet.metadata
    # Columns the file lacks are left out here, so the field mapping names them.
    self.path = path
    self.columns = None if columns is None else [
        c for c in columns if c in parquet.schema_arrow.names]
    sizes = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
    self._bounds = np.cumsum([0] + sizes).tolist()
    self._file, self._cache = None, collections.OrderedDict()

  def __len__(self):
    return self._bounds[-1]

  def __getitem__(self, index):
    index = self._check(index)
    group = bisect.bisect_right(self._bounds, index) - 1
    row = index - self._bounds[group]
    table = self._row_group(group)
    return f"{self.path}:row group {group}, row {row}", table.slice(row, 1).to_pylist()[0]

  def _row_group(self, group: int):
    if group in self._cache:
      self._cache.move_to_end(group)
      return self._cache[group]
    import pyarrow.parquet as pq

    if self._file is None:
      self._file = pq.ParquetFile(self.path)
    try:
      table = self._file.read_row_group(group, columns=self.columns)
    except (OSError, ValueError) as e:
      raise SourceError(f"{self.path}:row group {group}: cannot read ({e})") from None
    self._cache[group] = table
    if len(self._cache) > self.CACHED_ROW_GROUPS:
      self._cache.popitem(last=False)
    return table

  def __getstate__(self):
    return {**self.__dict__, "_file": None, "_cache": collections.OrderedDict()}


class TfdsRecords(RawRecords):
  """A TFDS split prepared as ArrayRecord, through `builder.as_data_source` (opened in
  each process on first use)."""

  def __init__(self, name: str, data_dir: Optional[str], split: str):
    self.name, self.data_dir, self.split = name, data_dir, split
    self._source = None
    self._length = len(self._data_source())

  def _data_source(self):
    if self._source is None:
      import tensorflow_datasets as tfds

      self._source = tfds.builder(self.name, data_dir=self.data_dir).as_data_source(
          split=self.split)
    return self._source

  def __len__(self):
    return self._length

  def __getitem__(self, index):
    index = self._check(index)
    return f"{self.name}[{self.split}][{index}]", to_python(self._data_source()[index])

  def __getstate__(self):
    return {**self.__dict__, "_source": None}


class ConcatRecords(RawRecords):
  """Several files of one split, one after the other."""

  def __init__(self, parts: Sequence[RawRecords]):
    self.parts = list(parts)
    self._bounds = np.cumsum([0] + [len(p) for p in self.parts]).tolist()

  def __len__(self):
    return self._bounds[-1]

  def __getitem__(self, index):
    index = self._check(index)
    part = bisect.bisect_right(self._bounds, index) - 1
    return self.parts[part][index - self._bounds[part]]


class MappedArray(Sequence):
  """Rows [start, stop) of a .npy file, memory-mapped where they are read: an index of
  tens of millions of entries costs page cache shared by every process, not memory per
  process, and pickles as its path. Every slice of one file shares one mapping per
  process (thousands of tasks index one file; a mapping each would fault in, and count,
  the same pages thousands of times)."""

  def __init__(self, path: str, start: int = 0, stop: Optional[int] = None):
    self.path = path
    self._array = None
    total = len(self._mapped())
    self.start, self.stop = start, total if stop is None else stop
    if not 0 <= self.start <= self.stop <= total:
      raise ValueError(f"{path}: rows [{start}, {stop}) of {total}")

  def _mapped(self) -> np.ndarray:
    if self._array is None:
      self._array = _MAPPINGS.get(self.path)
      if self._array is None:
        self._array = _MAPPINGS[self.path] = np.load(self.path, mmap_mode="r")
    return self._array

  def __len__(self):
    return self.stop - self.start

  def __getitem__(self, index):
    if isinstance(index, slice):
      start, stop, step = index.indices(len(self))
      return self._mapped()[self.start + start:self.start + stop:step]
    if not 0 <= index < len(self):
      raise IndexError(f"row {index} of {len(self)}")
    return self._mapped()[self.start + index]

  def __getstate__(self):
    return {**self.__dict__, "_array": None}


_MAPPINGS: dict = {}  # .npy path -> its memory map, in this process


class SubsetRecords(RawRecords):
  """The records of `raw` at `indices` (a list, array or MappedArray), in that order:
  one task's rows of files that hold many tasks."""

  def __init__(self, raw: RawRecords, indices: Sequence[int]):
    self.raw, self.indices = raw, indices

  def __len__(self):
    return len(self.indices)

  def __getitem__(self, index):
    return self.raw[int(self.indices[self._check(index)])]


class Records(Sequence):
  """Records as templates see them: raw records mapped to fields (`fields` maps a field
  to a dotted column name), values normalized to text, every record with the first
  record's fields, and `_origin` added. `normalize=False` keeps the values as they are
  (TFDS features, which a task's example_fn maps). Slices are lists."""

  def __init__(self, raw: RawRecords, field_map: Optional[Mapping[str, str]] = None,
               normalize: bool = True):
    self.raw = raw
    self.field_map = dict(field_map) if field_map is not None else None
    self.normalize = normalize
    self._fields = None

  def __len__(self):
    return len(self.raw)

  def __getitem__(self, index):
    if isinstance(index, slice):
      return [self[i] for i in range(*index.indices(len(self)))]
    if index < 0:
      index += len(self)
    origin, raw = self.raw[index]
    record = map_fields(raw, origin, self.field_map) if self.normalize else dict(raw)
    if self._fields is None:
      self._fields = set(record) if index == 0 else set(self[0]) - {ORIGIN}
    if set(record) != self._fields:
      extra, missing = sorted(set(record) - self._fields), sorted(self._fields - set(record))
      raise SourceError(f"{origin}: fields differ from the first record "
                        f"(missing {missing}, extra {extra})")
    record[ORIGIN] = origin
    return record


def map_fields(raw: Any, origin: str, field_map: Optional[Mapping[str, str]]) -> dict:
  if not isinstance(raw, Mapping):
    raise SourceError(f"{origin}: expected an object of fields, got {type(raw).__name__}")
  if field_map is None:
    return {k: normalize_value(v, origin, k) for k, v in raw.items()}
  record = {}
  for field, column in field_map.items():
    value = raw
    for part in column.split("."):
      if not isinstance(value, Mapping) or part not in value:
        raise SourceError(f"{origin}: no column {column!r} (mapped to field {field!r}); "
                          f"the record has {sorted(raw)}")
      value = value[part]
    record[field] = normalize_value(value, origin, field)
  return record
