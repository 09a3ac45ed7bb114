"""Training input: per-host shards of a mixture, packed into batches, resumable.

Two paths give the same kind of batches (EncDecFeatureConverter's packed features):
- Grain (`grain_input`), for every mixture whose members are tasks registered with
  `register_task` over sources that read by index (JSONL, Parquet, CSV, generators,
  TFDS ArrayRecord). Start-up and memory do not grow with the number of members, worker
  processes render, and the position is two numbers per data shard, so a resume at any
  step costs one window of rendering.
- tf.data (`tfdata_input`), seqio's own pipeline, for a mixture with any other member (a
  seqio task registered elsewhere, TFDS not in ArrayRecord). It is logged as the slow
  path: its resume replays every batch consumed.

The data is cut into `num_shards` data shards (default: one per process). Each host
reads its own consecutive shards and yields batch_size // process_count rows, shard by
shard; `partitioning.make_global_batch` joins the hosts' rows in process order. So a
global batch is shard 0's rows, then shard 1's, ... whatever the number of processes:
with num_shards fixed, one process and many give the same batches, and a run may resume
on a different number of hosts.
"""

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import gin
import numpy as np
import seqio

from flan_tune.errors import CheckpointError, FlanTuneError, MixtureError, PartitioningError
from flan_tune.mixtures import builder as mixtures
from flan_tune.mixtures import sampling
from flan_tune.tasks import registry, sources, vocabularies
from flan_tune.training import grain_input, packing, tfdata_input

# The state's version names the path that saved it: 1 tf.data (batches consumed, replayed
# on restore), 2 Grain (a window and row per data shard).
TFDATA_STATE, GRAIN_STATE = 1, 2


@gin.configurable
@dataclasses.dataclass(frozen=True)
class TrainInput:
  """What to read and how; `batch_size` is global (all hosts together). `num_shards`
  None means one shard per process. `packer` ("best_fit" or "seqio", which takes the
  tf.data path) applies when `pack` is set. `num_workers` processes render for the
  Grain path (None: half the host's cores, at least 1, at most 8; 0: in this process);
  the batches do not depend on it. `pack_window` examples are packed together (Grain).
  `shuffle` permutes each task's examples anew every pass; tasks interleave at random
  either way."""

  def __post_init__(self):
    if self.packer not in packing.PACKERS:
      raise FlanTuneError(f"TrainInput.packer={self.packer!r} must be one of "
                          f"{', '.join(packing.PACKERS)}")
    for name, minimum in (("num_workers", 0), ("pack_window", 1)):
      value = getattr(self, name)
      if value is not None and (isinstance(value, bool) or not isinstance(value, int) or
                                value < minimum):
        raise FlanTuneError(f"TrainInput.{name}={value!r} must be an int >= {minimum}")
    if self.mixture_or_task_module:
      registry.import_modules([self.mixture_or_task_module])

  mixture_or_task_name: str = "flan_offline"
  task_feature_lengths: Mapping[str, int] = dataclasses.field(
      default_factory=lambda: {"inputs": 512, "targets": 128})
  batch_size: int = 64
  split: str = "train"
  seed: int = 0
  pack: bool = True
  packer: str = "best_fit"
  shuffle: bool = True
  use_cached: bool = False
  num_shards: int | None = None
  num_workers: int | None = None
  pack_window: int = grain_input.WINDOW
  # A module or .py file that registers the task (T5X's MIXTURE_OR_TASK_MODULE).
  mixture_or_task_module: str | None = None
  # Collections registered from gin before this config exists, as calls gin makes:
  # [@natural_instructions()]; what they return (the names registered) is kept here.
  collections: Sequence[Any] = ()

  def shards(self, process_count: int) -> int:
    return process_count if self.num_shards is None else self.num_shards

  def workers(self) -> int:
    if self.num_workers is None:
      return max(1, min(8, (os.cpu_count() or 2) // 2))
    return self.num_workers

  def fingerprint(self, process_count: int = 1, grain_path: bool = False) -> str:
    """A digest of everything that decides the global batch stream, so a saved position
    is never replayed against a different stream."""
    fields = dataclasses.asdict(self)
    fields["task_feature_lengths"] = dict(sorted(self.task_feature_lengths.items()))
    fields["num_shards"] = self.shards(process_count)
    del fields["num_workers"]  # the stream does not depend on it
    del fields["collections"]  # the mixture's name and members decide it
    window = fields.pop("pack_window")
    if grain_path:
      fields["pipeline"] = f"grain/{window}"
    # seqio's packing (and none) gives the streams saved before `packer` existed, so
    # their positions stay valid; best fit records its pool size, which shapes the rows.
    packer = fields.pop("packer")
    if self.pack and packer == "best_fit":
      fields["packer"] = f"best_fit/{packing.POOL_SIZE}"
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _provider(name: str) -> seqio.DatasetProviderBase:
  return mixtures.registered_provider(name, "TrainInput.mixture_or_task_name")


def check_fits_model(cfg: TrainInput, vocab_size: int,
                     vocabulary_file: str | None = None) -> None:
  """Refuses, before any data is read, lengths the encoder-decoder cannot take,
  vocabularies whose ids the model's embedding cannot hold and, given the SentencePiece
  file a checkpoint was trained with, a task that tokenizes differently."""
  lengths = dict(cfg.task_feature_lengths)
  if set(lengths) != {"inputs", "targets"}:
    raise MixtureError(f"TrainInput.task_feature_lengths={lengths!r}: an encoder-decoder "
                       "needs exactly the features 'inputs' and 'targets'")
  for name, length in lengths.items():
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
      raise MixtureError(f"TrainInput.task_feature_lengths[{name!r}]={length!r} must be a "
                         "positive int")
  features = _provider(cfg.mixture_or_task_name).output_features
  for name in lengths:
    if name not in features:
      raise MixtureError(f"{cfg.mixture_or_task_name!r} has no output feature {name!r} "
                         f"(it has {sorted(features)})")
    size = features[name].vocabulary.vocab_size
    if size > vocab_size:
      raise MixtureError(
          f"{cfg.mixture_or_task_name!r}: the {name!r} vocabulary has {size} ids but the "
          f"model's T5Config.vocab_size is {vocab_size}; use a model gin whose vocab_size is "
          f">= {size} (e.g. models/offline_demo.gin for the offline collection)")
    vocabulary = features[name].vocabulary
    if vocabulary_file and not vocabularies.matches_sentencepiece_file(vocabulary,
                                                                       vocabulary_file):
      raise MixtureError(
          f"{cfg.mixture_or_task_name!r}: the {name!r} feature tokenizes with "
          f"{type(vocabulary).__name__}, not with {vocabulary_file}, the vocabulary the "
          "initial checkpoint was trained with; register the task with vocabulary="
          "seqio.SentencePieceVocabulary(<that file>) (flan_tune.model.hf."
          "vocabulary_from_hf(<checkpoint dir>) for a transformers checkpoint)")


def local_batch_size(cfg: TrainInput, process_count: int) -> int:
  """Rows each host contributes; fails early, naming the numbers, if they do not split."""
  shards = cfg.shards(process_count)
  if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1 or (
      shards % process_count):
    raise PartitioningError(f"TrainInput.num_shards={cfg.num_shards!r} must be a positive "
                            f"multiple of the {process_count} processes")
  if cfg.batch_size < 1 or cfg.batch_size % shards:
    raise PartitioningError(
        f"TrainInput.batch_size={cfg.batch_size} must be a positive multiple of the "
        f"{shards} data shards ({process_count} processes) that each fill 1/{shards} of "
        "every batch")
  return cfg.batch_size // process_count


def host_shards(cfg: TrainInput, process_index: int, process_count: int) -> range:
  """The data shards this host reads (checks the shard arithmetic first)."""
  local_batch_size(cfg, process_count)
  if not 0 <= process_index < process_count:
    raise PartitioningError(f"process_index {process_index} is not in [0, {process_count})")
  per_host = cfg.shards(process_count) // process_count
  return range(process_index * per_host, (process_index + 1) * per_host)


def make_dataset(cfg: TrainInput, process_index: int = 0, process_count: int = 1):
  """This host's batches through tf.data (the slow path), whatever the mixture."""
  shards = host_shards(cfg, process_index, process_count)
  return tfdata_input.host_batches(cfg, _provider(cfg.mixture_or_task_name), shards,
                                   cfg.shards(process_count),
                                   local_batch_size(cfg, process_count) // len(shards))


def grain_plan(cfg: TrainInput, rates: Mapping[str, float] | None = None
               ) -> tuple[grain_input.Plan | None, str]:
  """The Grain plan of the mixture, or None and why it must take the tf.data path.
  `rates` ({seqio task: rate}) replace the named mixture's (inspect uses them)."""
  if rates is None:
    _provider(cfg.mixture_or_task_name)  # an unknown name fails, naming close ones
    rates = mixtures.mixture_rates(cfg.mixture_or_task_name)
  if cfg.pack and cfg.packer == "seqio":
    return None, "TrainInput.packer='seqio' packs with seqio's converter"
  members, sizes, tasks, tokenizers = [], {}, {}, {}
  for member in sorted(rates):
    variant = registry.get_variant(member)
    if variant is None or variant.scoring:
      return None, f"member {member!r} is not a task registered with register_task"
    task = variant.task
    records = sources.random_access_records(task.source, cfg.split)
    exemplars = (sources.random_access_records(task.source, task.fewshot.exemplar_split)
                 if task.draws_exemplars(variant.style) else None)
    if records is None or (task.draws_exemplars(variant.style) and exemplars is None):
      return None, f"member {member!r} reads {task.source!r}, which only streams"
    vocabulary = seqio.get_mixture_or_task(member).output_features["inputs"].vocabulary
    # One per distinct vocabulary: each is pickled to every worker.
    key = getattr(vocabulary, "sp_model", None) or id(vocabulary)
    if key not in tokenizers:
      tokenizers[key] = grain_input.Tokenizer(vocabulary)
    tokenizer = tokenizers[key]
    if task.name not in tasks:  # one stripped copy per task, shared by its styles
      tasks[task.name] = dataclasses.replace(task, source=None, vocabulary=None,
                                             metric_fns=(), postprocess_fn=None)
    members.append(grain_input.Member(member, tasks[task.name], variant.style, records,
                                      exemplars, tokenizer))
    sizes[member] = len(records)
  _, sampler = sampling.sampler_for(rates, sizes, cfg.seed, cfg.shuffle)
  return grain_input.Plan(sampler, members, dict(cfg.task_feature_lengths), cfg.pack,
                          cfg.pack_window), ""


class DataIterator:
  """Batches of numpy arrays with a position that can be saved and resumed exactly.

  `state()` is a small JSON dict: on the Grain path each data shard's (window, row),
  gathered from every host; on the tf.data path the batches consumed, which `restore`
  skips by producing and dropping them (the slow path's replay). The pipeline starts at
  the first batch, so a restore right after construction builds it once. Call `state()`
  on every process at once (it is a collective across hosts), and `close()` at the end."""

  def __init__(self, cfg: TrainInput, process_index: int = 0, process_count: int = 1):
    self.cfg = cfg
    self.process_index = process_index
    self.process_count = process_count
    self._shards = host_shards(cfg, process_index, process_count)
    self._rows = local_batch_size(cfg, process_count) // len(self._shards)
    self.plan, why = grain_plan(cfg)
    if self.plan is None:
      logging.warning("TrainInput: %r is read through tf.data, the slow path (start-up and "
                      "memory grow with its members, and a resume replays every batch "
                      "consumed): %s", cfg.mixture_or_task_name, why)
    self.fingerprint = cfg.fingerprint(process_count, grain_path=self.plan is not None)
    self._consumed = 0
    self._positions = [(0, 0)] * len(self._shards)  # where the streams start (Grain)
    self._streams, self._iterator = [], None  # started by the first batch

  @property
  def grain_path(self) -> bool:
    return self.plan is not None

  def _start(self) -> None:
    if self.grain_path:
      workers = self.cfg.workers()
      per_shard = -(-workers // len(self._shards)) if workers else 0
      num_shards = self.cfg.shards(self.process_count)
      self._streams = [grain_input.ShardRows(self.plan, shard, num_shards, per_shard, position)
                       for shard, position in zip(self._shards, self._positions)]
      return
    ds = make_dataset(self.cfg, self.process_index, self.process_count)
    skip = self._consumed
    self._iterator = ds.skip(skip).as_numpy_iterator() if skip else ds.as_numpy_iterator()

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if not self._streams and self._iterator is None:
      self._start()
    if self.grain_path:
      parts = [stream.take(self._rows) for stream in self._streams]
      batch = parts[0] if len(parts) == 1 else {
          k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    else:
      batch = next(self._iterator)
    self._consumed += 1
    return batch

  @property
  def batches_consumed(self) -> int:
    return self._consumed

  def state(self) -> dict[str, Any]:
    state = {"version": GRAIN_STATE if self.grain_path else TFDATA_STATE,
             "batches_consumed": self._consumed, "fingerprint": self.fingerprint,
             "mixture_or_task_name": self.cfg.mixture_or_task_name, "seed": self.cfg.seed}
    if self.grain_path:
      state["shards"] = self._all_shard_positions()
    return state

  def _all_shard_positions(self) -> list[list[int]]:
    local = np.asarray([stream.position for stream in self._streams] if self._streams
                       else self._positions, np.int64)
    if self.process_count > 1:
      from jax.experimental import multihost_utils

      local = np.asarray(multihost_utils.process_allgather(local)).reshape(-1, 2)
    return local.tolist()

  def restore(self, state: Mapping[str, Any]) -> None:
    """Continues from `state`; refuses a state saved from a different stream."""
    version = GRAIN_STATE if self.grain_path else TFDATA_STATE
    if state.get("version") not in (TFDATA_STATE, GRAIN_STATE):
      raise CheckpointError(f"data iterator state version {state.get('version')!r} is not "
                            f"{TFDATA_STATE} or {GRAIN_STATE}")
    if state.get("fingerprint") != self.fingerprint or state["version"] != version:
      raise CheckpointError(
          f"the data iterator state was saved for a different input configuration "
          f"(fingerprint {state.get('fingerprint')}, mixture "
          f"{state.get('mixture_or_task_name')!r}, seed {state.get('seed')}, "
          f"{_PATHS[state['version']]} path) than this one ({self.fingerprint}, "
          f"{self.cfg.mixture_or_task_name!r}, seed {self.cfg.seed}, "
          f"{self.cfg.shards(self.process_count)} data shards, {_PATHS[version]} path); "
          "resuming would replay other batches. Restore with the original TrainInput (and "
          "TrainInput.num_shards set to the original process count if that changed; "
          "TrainInput.packer='seqio' for a run saved before best-fit packing became the "
          "default).")
    if self.grain_path:
      positions = state["shards"]
      if len(positions) != self.cfg.shards(self.process_count):
        raise CheckpointError(f"the data iterator state has {len(positions)} data shards, "
                              f"this input {self.cfg.shards(self.process_count)}")
      self._positions = [tuple(positions[shard]) for shard in self._shards]
    self.close()
    self._consumed = int(state["batches_consumed"])

  def close(self) -> None:
    """Stops the worker processes (the Grain path); the next batch starts them again."""
    if self._streams:
      self._positions = [stream.position for stream in self._streams]
    for stream in self._streams:
      stream.close()
    self._streams, self._iterator = [], None


_PATHS = {TFDATA_STATE: "tf.data", GRAIN_STATE: "Grain"}
