"""Training input: per-host shards of a seqio mixture, packed into batches, resumable.

The data is cut into `num_shards` seqio shards (default: one per process). Each host
reads only its own consecutive shards (`seqio.ShardInfo`) and yields
batch_size // process_count rows, shard by shard; `partitioning.make_global_batch`
joins the hosts' rows in process order. So a global batch is shard 0's rows, then shard
1's, ... whatever the number of processes: with num_shards fixed, one process and many
give the same batches, and a run may resume on a different number of hosts.
Streams repeat forever (num_epochs=None) and are deterministic for a seed, which is what
makes `DataIterator`'s resume exact: it records how many batches were consumed and, on
restore, rebuilds the same dataset and skips that many. tf.data iterator checkpoints are
not used: seqio's pipelines run Python (numpy_function / generators), which tf.data
cannot save.
Packing (`pack=True`) is best fit over a pool of open rows by default (`packing`), which
fills ~98% of the binding feature at the demo's lengths where seqio's next-fit packer
fills ~76%; `packer="seqio"` restores seqio's `EncDecFeatureConverter(pack=True)`.
"""

import dataclasses
import difflib
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import gin
import numpy as np
import seqio
import tensorflow as tf

from flan_tune.errors import CheckpointError, FlanTuneError, MixtureError, PartitioningError
from flan_tune.tasks import registry, vocabularies
from flan_tune.training import packing

STATE_VERSION = 1


@gin.configurable
@dataclasses.dataclass(frozen=True)
class TrainInput:
  """What to read and how; `batch_size` is global (all hosts together). `num_shards`
  None means one shard per process. `packer` ("best_fit" or "seqio") applies when
  `pack` is set."""

  def __post_init__(self):
    if self.packer not in packing.PACKERS:
      raise FlanTuneError(f"TrainInput.packer={self.packer!r} must be one of "
                          f"{', '.join(packing.PACKERS)}")
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
  # A module or .py file that registers the task (T5X's MIXTURE_OR_TASK_MODULE).
  mixture_or_task_module: str | None = None

  def shards(self, process_count: int) -> int:
    return process_count if self.num_shards is None else self.num_shards

  def fingerprint(self, process_count: int = 1) -> str:
    """A digest of everything that decides the global batch stream, so a saved position
    is never replayed against a different stream."""
    fields = dataclasses.asdict(self)
    fields["task_feature_lengths"] = dict(sorted(self.task_feature_lengths.items()))
    fields["num_shards"] = self.shards(process_count)
    # seqio's packing (and none) gives the streams saved before `packer` existed, so
    # their positions stay valid; best fit records its pool size, which shapes the rows.
    packer = fields.pop("packer")
    if self.pack and packer == "best_fit":
      fields["packer"] = f"best_fit/{packing.POOL_SIZE}"
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _provider(name: str) -> seqio.DatasetProviderBase:
  """The registered mixture or task; an unknown name lists the closest registered ones."""
  known = list(seqio.MixtureRegistry.names()) + list(seqio.TaskRegistry.names())
  if name not in known:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else (
        "; is the module that registers it imported (e.g. tasks.offline)?")
    raise MixtureError(f"TrainInput.mixture_or_task_name={name!r} is not a registered "
                       f"seqio mixture or task{hint}")
  return seqio.get_mixture_or_task(name)


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


def make_dataset(cfg: TrainInput, process_index: int = 0,
                 process_count: int = 1) -> tf.data.Dataset:
  """This host's infinite stream of batches (numpy-able dicts of EncDec features)."""
  batch = local_batch_size(cfg, process_count)
  if not 0 <= process_index < process_count:
    raise PartitioningError(f"process_index {process_index} is not in [0, {process_count})")
  shards = cfg.shards(process_count)
  per_host = shards // process_count
  parts = [_shard_batches(cfg, index, shards, batch // per_host)
           for index in range(process_index * per_host, (process_index + 1) * per_host)]
  ds = parts[0] if len(parts) == 1 else tf.data.Dataset.zip(tuple(parts)).map(
      lambda *rows: {name: tf.concat([r[name] for r in rows], 0) for name in rows[0]})
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _shard_batches(cfg: TrainInput, index: int, num_shards: int,
                   rows: int) -> tf.data.Dataset:
  """Batches of `rows` rows from seqio shard `index` of `num_shards`."""
  lengths = dict(cfg.task_feature_lengths)
  ds = _provider(cfg.mixture_or_task_name).get_dataset(
      sequence_length=lengths, split=cfg.split, use_cached=cfg.use_cached,
      shuffle=cfg.shuffle, seed=cfg.seed, num_epochs=None,
      shard_info=seqio.ShardInfo(index=index, num_shards=num_shards))
  if cfg.pack and cfg.packer == "best_fit":
    ds = packing.pack_dataset(ds, lengths)
  else:
    ds = seqio.EncDecFeatureConverter(pack=cfg.pack)(ds, lengths)
  return ds.batch(rows, drop_remainder=True)


class DataIterator:
  """Batches of numpy arrays with a position that can be saved and resumed exactly.

  `state()` is a small JSON dict (batches consumed + config fingerprint). `restore`
  rebuilds the dataset and skips the consumed batches: the skipped ones are still
  produced (rendered, tokenized, packed) and dropped, so resuming at step n costs about
  as much input work as n steps did - acceptable at this project's scale."""

  def __init__(self, cfg: TrainInput, process_index: int = 0, process_count: int = 1):
    self.cfg = cfg
    self.process_index = process_index
    self.process_count = process_count
    self.fingerprint = cfg.fingerprint(process_count)
    self._consumed = 0
    self._start(0)

  def _start(self, skip: int) -> None:
    ds = make_dataset(self.cfg, self.process_index, self.process_count)
    self._iterator = ds.skip(skip).as_numpy_iterator() if skip else ds.as_numpy_iterator()

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batch = next(self._iterator)
    self._consumed += 1
    return batch

  @property
  def batches_consumed(self) -> int:
    return self._consumed

  def state(self) -> dict[str, Any]:
    return {"version": STATE_VERSION, "batches_consumed": self._consumed,
            "fingerprint": self.fingerprint,
            "mixture_or_task_name": self.cfg.mixture_or_task_name, "seed": self.cfg.seed}

  def restore(self, state: Mapping[str, Any]) -> None:
    """Continues from `state`; refuses a state saved from a different stream."""
    if state.get("version") != STATE_VERSION:
      raise CheckpointError(f"data iterator state version {state.get('version')!r} is not "
                            f"{STATE_VERSION}")
    if state.get("fingerprint") != self.fingerprint:
      raise CheckpointError(
          f"the data iterator state was saved for a different input configuration "
          f"(fingerprint {state.get('fingerprint')}, mixture "
          f"{state.get('mixture_or_task_name')!r}, seed {state.get('seed')}) than this one "
          f"({self.fingerprint}, {self.cfg.mixture_or_task_name!r}, seed {self.cfg.seed}, "
          f"{self.cfg.shards(self.process_count)} data shards); resuming would replay other "
          "batches. Restore with the original TrainInput (and TrainInput.num_shards set to "
          "the original process count if that changed; TrainInput.packer='seqio' for a "
          "run saved before best-fit packing became the default).")
    consumed = int(state["batches_consumed"])
    self._start(consumed)
    self._consumed = consumed
