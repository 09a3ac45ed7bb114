"""`flan-tune infer` (T5X's infer.py) and `flan-tune generate`: a checkpoint's predictions.

`infer` reads a task or mixture (its split, rendered as evaluation renders it) or a JSONL
file of {"inputs": ...} rows (optionally "targets", scored with `score`), decodes on a
device mesh as `eval` does, and writes one JSONL row per input. Rows are written and
flushed a chunk at a time, so a killed run, rerun with the same command, continues after
the last complete row. `generate` decodes instructions given on the command line or read
from standard input, one per line.
"""

import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from flan_tune.errors import FlanTuneError, SourceError
from flan_tune.model.config import T5Config
from flan_tune.runtime import partitioning
from flan_tune.runtime.model import EncoderDecoderModel, ShardedModel

EOS_ID = 1


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
  """greedy, beam (num_beams, length_penalty_alpha) or sample (temperature, top_k, seed)."""
  method: str = "greedy"
  num_beams: int = 4
  length_penalty_alpha: float = 0.6
  temperature: float = 1.0
  top_k: int = 0
  seed: int = 0

  def generate_kwargs(self) -> dict:
    import jax

    kwargs = {"method": self.method}
    if self.method == "beam":
      kwargs.update(num_beams=self.num_beams, length_penalty_alpha=self.length_penalty_alpha)
    if self.method == "sample":
      kwargs.update(temperature=self.temperature, top_k=self.top_k,
                    rng=jax.random.key(self.seed))
    return kwargs


@dataclasses.dataclass(frozen=True)
class Row:
  inputs: str
  targets: str | None
  task: str | None
  inputs_ids: np.ndarray
  targets_ids: np.ndarray | None


def load_model(checkpoint_path: str, lengths: dict, options: DecodeOptions,
               mesh_config: partitioning.MeshConfig | None = None):
  """(ShardedModel, placed params) of anything `eval` takes, on the gin-bound mesh."""
  from flan_tune.runtime import model_setup

  base = model_setup.initial_config(checkpoint_path, "checkpoint")
  config = model_setup.reconcile(T5Config(), model_setup.gin_bound_fields(), base,
                                 f"checkpoint {checkpoint_path!r}")
  mesh_config = mesh_config or partitioning.MeshConfig()
  sharded = ShardedModel(EncoderDecoderModel(model_setup.network_for(checkpoint_path, config)),
                         lengths["targets"],
                         mesh_config.make_mesh(), mesh_config.axis_rules(),
                         **options.generate_kwargs())
  return sharded, model_setup.load_initial_params(checkpoint_path, config,
                                                  sharded.param_shardings)


def vocabulary_for(checkpoint_path: str, vocabulary_file: str | None = None):
  """The given SentencePiece file, else the checkpoint's spiece.model, else the default."""
  from flan_tune.tasks.vocabularies import sentencepiece_vocabulary
  from flan_tune.runtime import model_setup

  return sentencepiece_vocabulary(vocabulary_file or
                                  model_setup.initial_vocabulary_file(checkpoint_path))


def _ids(vocabulary, text: str, length: int) -> np.ndarray:
  ids = list(vocabulary.encode(text))[:length - 1] + [EOS_ID]
  return np.asarray(ids, np.int32)


def jsonl_rows(path: str, vocabulary, lengths: dict) -> list[Row]:
  rows = []
  try:
    with open(path, encoding="utf-8") as f:
      lines = list(f)
  except OSError as e:
    raise SourceError(f"{path}: cannot read ({e.strerror})") from None
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except json.JSONDecodeError as e:
      raise SourceError(f"{path}:{number}: invalid JSON ({e.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get("inputs"), str):
      raise SourceError(f"{path}:{number}: each row needs a string 'inputs'")
    targets = record.get("targets")
    if targets is not None and not isinstance(targets, str):
      raise SourceError(f"{path}:{number}: 'targets' must be a string")
    rows.append(Row(record["inputs"], targets, None,
                    _ids(vocabulary, record["inputs"], lengths["inputs"]),
                    None if targets is None else _ids(vocabulary, targets,
                                                      lengths["targets"])))
  return rows


def task_rows(name: str, split: str, lengths: dict) -> tuple[list[Row], object]:
  """A task's or mixture's split as evaluation renders it (members in name order), and
  its vocabulary."""
  import seqio

  provider = seqio.get_mixture_or_task(name)
  tasks = provider.tasks if isinstance(provider, seqio.Mixture) else [provider]
  rows = []
  for task in sorted(tasks, key=lambda t: t.name):
    if split not in task.splits:
      continue
    dataset = task.get_dataset(dict(lengths), split=split, shuffle=False)
    for example in dataset.as_numpy_iterator():
      rows.append(Row(example["inputs_pretokenized"].decode(),
                      example["targets_pretokenized"].decode(), task.name,
                      np.asarray(example["inputs"], np.int32),
                      np.asarray(example["targets"], np.int32)))
  if not rows:
    raise FlanTuneError(f"{name!r} has no examples in split {split!r}")
  return rows, tasks[0].output_features["inputs"].vocabulary


def _padded(arrays: Sequence[np.ndarray], length: int) -> np.ndarray:
  out = np.zeros((len(arrays), length), np.int32)
  for i, ids in enumerate(arrays):
    out[i, :len(ids)] = ids[:length]
  return out


def _decoded(vocabulary, tokens: np.ndarray) -> str:
  ids = tokens.tolist()
  if EOS_ID in ids:
    ids = ids[:ids.index(EOS_ID)]
  return vocabulary.decode([i for i in ids if i > 0])


def predict_rows(sharded: ShardedModel, params, rows: Sequence[Row], vocabulary,
                 lengths: dict, batch_size: int, score: bool) -> Iterator[dict]:
  """Output rows for `rows`, in order; batches are padded to `batch_size` so each
  function compiles once."""
  for start in range(0, len(rows), batch_size):
    chunk = list(rows[start:start + batch_size])
    padded = chunk + [chunk[-1]] * (batch_size - len(chunk))
    tokens = _padded([r.inputs_ids for r in padded], lengths["inputs"])
    predictions = sharded.predict_batch(params, tokens)
    scores = None
    if score and all(r.targets_ids is not None for r in padded):
      scores = sharded.score_batch(params, {
          "encoder_input_tokens": tokens,
          "decoder_target_tokens": _padded([r.targets_ids for r in padded],
                                           lengths["targets"])})
    for i, row in enumerate(chunk):
      out = {"inputs": row.inputs, "prediction": _decoded(vocabulary, predictions[i])}
      if row.task is not None:
        out["task"] = row.task
      if row.targets is not None:
        out["targets"] = row.targets
      if scores is not None:
        out["score"] = float(scores[i])
      yield out


def completed_rows(path: str) -> int:
  """Rows already written whole; a last row cut short by a kill is removed."""
  if not os.path.exists(path):
    return 0
  with open(path, "rb") as f:
    data = f.read()
  keep = data.rfind(b"\n") + 1
  if keep < len(data):
    with open(path, "r+b") as f:
      f.truncate(keep)
  return data[:keep].count(b"\n")


class Progress:
  """A progress line on standard error, redrawn as chunks finish."""

  def __init__(self, total: int, done: int):
    self.total, self.done, self._start, self._first = total, done, time.perf_counter(), done

  def advance(self, rows: int) -> None:
    self.done += rows
    rate = (self.done - self._first) / max(time.perf_counter() - self._start, 1e-9)
    filled = round(20 * self.done / max(self.total, 1))
    print(f"\rinfer: {self.done}/{self.total} [{'#' * filled}{'.' * (20 - filled)}] "
          f"{rate:.1f} rows/s", end="" if self.done < self.total else "\n",
          file=sys.stderr, flush=True)


def infer(checkpoint_path: str, source: str, output: str, *, split: str = "validation",
          lengths: dict, batch_size: int = 32, chunk_size: int = 256, score: bool = False,
          options: DecodeOptions = DecodeOptions(), vocabulary_file: str | None = None,
          mesh_config: partitioning.MeshConfig | None = None) -> int:
  """Writes predictions for every row of `source` to `output` (JSONL), continuing after
  the rows an earlier run completed; returns the number of rows in `output`."""
  if source.endswith(".jsonl"):
    vocabulary = vocabulary_for(checkpoint_path, vocabulary_file)
    rows = jsonl_rows(source, vocabulary, lengths)
  else:
    rows, vocabulary = task_rows(source, split, lengths)
  done = completed_rows(output)
  if done >= len(rows):
    print(f"infer: {output} already holds all {len(rows)} rows", file=sys.stderr)
    return done
  sharded, params = load_model(checkpoint_path, lengths, options, mesh_config)
  sharded.check_batch_size(batch_size)
  progress = Progress(len(rows), done)
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, "a", encoding="utf-8") as f:
    for start in range(done, len(rows), chunk_size):
      chunk = rows[start:start + chunk_size]
      lines = [json.dumps(out) + "\n" for out in predict_rows(
          sharded, params, chunk, vocabulary, lengths, batch_size, score)]
      f.writelines(lines)
      f.flush()
      os.fsync(f.fileno())
      progress.advance(len(chunk))
  return len(rows)


def generate(checkpoint_path: str, instructions: Iterable[str], *, lengths: dict,
             options: DecodeOptions = DecodeOptions(), vocabulary_file: str | None = None,
             mesh_config: partitioning.MeshConfig | None = None) -> Iterator[str]:
  """Each instruction's decoded answer, one at a time (an interactive loop reads lazily)."""
  vocabulary = vocabulary_for(checkpoint_path, vocabulary_file)
  sharded, params = load_model(checkpoint_path, lengths, options, mesh_config)
  batch = partitioning.data_parallel_size(sharded.mesh, sharded.rules)
  for instruction in instructions:
    row = Row(instruction, None, None, _ids(vocabulary, instruction, lengths["inputs"]), None)
    (out,) = list(predict_rows(sharded, params, [row], vocabulary, lengths, batch, False))
    yield out["prediction"]
