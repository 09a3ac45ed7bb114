"""Training input on Grain: a mixture read by position, rendered in worker processes,
packed in windows, batched; its position is two numbers per data shard.

    MixtureSampler           position -> (member, example, pass)      mixtures.sampling
    .map(TokenizeExample)    render in that pass's template, tokenize, trim, EOS
    .batch(W, PackWindow)    best-fit rows of W consecutive examples
    [shard::num_shards]      each data shard takes every num_shards-th window
    .mp_prefetch(workers)    windows rendered in parallel processes, delivered in order
    ShardRows                rows -> batches, position = (window, row)

A window is packed from an empty pool of rows, so window w's rows depend on nothing
before it: resuming at any position renders one window, and the batches do not depend on
the number of workers. Nothing here imports seqio or TensorFlow (workers import this
module); `input_pipeline` resolves the registered tasks into `Member`s.
"""

import dataclasses
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import grain
import numpy as np

from flan_tune.mixtures.sampling import Draw, MixtureSampler
from flan_tune.tasks.render import ExemplarPool, PromptRenderer, Rendered, example_fields
from flan_tune.tasks.spec import InstructionTask
from flan_tune.tasks.templates import PromptStyle
from flan_tune.training import packing

# Examples per packing window. Best fit over 32 open rows loses the partly filled rows
# left when a window closes: about 1% at the demo's 256/64 with 4096; resuming renders at
# most one window.
WINDOW = 4096


class Tokenizer:
  """A seqio vocabulary's `encode`, carried to workers without seqio where the
  vocabulary is SentencePiece (its model bytes) or bytes; any other kind is pickled as
  it is (its worker then imports seqio)."""

  def __init__(self, vocabulary):
    import seqio  # the main process has it; workers only unpickle

    self.eos_id = int(vocabulary.eos_id)
    self._sp_model = self._byte_offset = self._vocabulary = None
    if isinstance(vocabulary, seqio.SentencePieceVocabulary):
      self._sp_model = vocabulary.sp_model
    elif type(vocabulary) is seqio.ByteVocabulary:  # pylint: disable=unidiomatic-typecheck
      self._byte_offset = vocabulary._num_special_tokens  # pylint: disable=protected-access
    else:
      self._vocabulary = vocabulary
    self._processor = None

  def encode(self, text: str) -> list[int]:
    if self._sp_model is not None:
      if self._processor is None:
        import sentencepiece

        self._processor = sentencepiece.SentencePieceProcessor(model_proto=self._sp_model)
      return self._processor.EncodeAsIds(text)
    if self._byte_offset is not None:
      return [b + self._byte_offset for b in text.encode("utf-8")]
    return list(self._vocabulary.encode(text))

  def __getstate__(self):
    return {**self.__dict__, "_processor": None}


@dataclasses.dataclass(frozen=True)
class Member:
  """One mixture member as workers need it: a task stripped of what only seqio uses,
  its training split's records and, for few-shot styles, the exemplar split's."""
  name: str
  task: InstructionTask
  style: PromptStyle
  records: Sequence[Mapping[str, Any]]
  exemplar_records: Optional[Sequence[Mapping[str, Any]]]
  tokenizer: Tokenizer


class TokenizeExample:
  """Draw -> (inputs, targets) int32 token ids, trimmed to the lengths with EOS last, as
  seqio's tokenize + append_eos_after_trim give them."""

  def __init__(self, members: Sequence[Member], lengths: Mapping[str, int]):
    self.members = list(members)
    self.lengths = {"inputs": int(lengths["inputs"]), "targets": int(lengths["targets"])}
    self._renderers = {}

  def _renderer(self, index: int) -> PromptRenderer:
    renderer = self._renderers.get(index)
    if renderer is None:
      member = self.members[index]
      pool = (ExemplarPool(member.task, member.exemplar_records)
              if member.task.draws_exemplars(member.style) else None)
      renderer = PromptRenderer(member.task, member.style,
                                count_tokens=lambda text: len(member.tokenizer.encode(text)),
                                max_input_tokens=self.lengths["inputs"], pool=pool)
      self._renderers[index] = renderer
    return renderer

  def render(self, draw: Draw) -> Rendered:
    """The drawn example's text, in that pass's template."""
    member = self.members[draw.member]
    fields = example_fields(member.task, member.records[draw.example])
    return self._renderer(draw.member).render(fields, epoch=draw.epoch)

  def __call__(self, draw: Draw) -> tuple[np.ndarray, np.ndarray]:
    rendered = self.render(draw)
    tokenizer = self.members[draw.member].tokenizer
    return (trimmed_ids(tokenizer.encode(rendered.inputs), tokenizer, self.lengths["inputs"]),
            trimmed_ids(tokenizer.encode(rendered.targets), tokenizer,
                        self.lengths["targets"]))

  def __getstate__(self):
    return {**self.__dict__, "_renderers": {}}


def trimmed_ids(ids: Sequence[int], tokenizer: Tokenizer, length: int) -> np.ndarray:
  """Token ids cut to `length` with EOS last (seqio's append_eos_after_trim)."""
  return np.asarray(list(ids[:length - 1]) + [tokenizer.eos_id], np.int32)


class PackWindow:
  """A window of examples -> rows, as {feature: [rows, length] int32}: best fit from an
  empty pool (`pack`), or one padded row per example."""

  def __init__(self, lengths: Mapping[str, int], pack: bool):
    self.inputs_length, self.targets_length = int(lengths["inputs"]), int(lengths["targets"])
    self.pack = pack

  def __call__(self, examples: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict:
    if self.pack:
      packer = packing.BestFitPacker({"inputs": self.inputs_length,
                                      "targets": self.targets_length})
      rows = [row for inputs, targets in examples for row in packer.add(inputs, targets)]
      rows += packer.flush()
    else:
      rows = [packing.make_padded_row(inputs, targets, self.inputs_length, self.targets_length)
              for inputs, targets in examples]
    return {name: np.stack([row[name] for row in rows]) for name in rows[0]}


@dataclasses.dataclass(frozen=True)
class Plan:
  """Everything that decides the rows: the sampler, the members, the lengths."""
  sampler: MixtureSampler
  members: Sequence[Member]
  lengths: Mapping[str, int]
  pack: bool = True
  window: int = WINDOW


def windows(plan: Plan) -> grain.MapDataset:
  """The mixture's packed windows by index (window w = positions [w*W, (w+1)*W))."""
  examples = grain.MapDataset.source(plan.sampler).map(TokenizeExample(plan.members,
                                                                       plan.lengths))
  return examples.batch(plan.window, drop_remainder=True,
                        batch_fn=PackWindow(plan.lengths, plan.pack))


def exit_with_parent(worker_index: int, worker_count: int) -> None:
  """Runs in each input worker: it exits once the trainer that started it is gone, even
  when the trainer was killed (SIGKILL, preemption) and could not stop it."""
  del worker_index, worker_count
  parent = os.getppid()

  def watch():
    while os.getppid() == parent:
      time.sleep(1.0)
    os._exit(1)  # pylint: disable=protected-access

  threading.Thread(target=watch, daemon=True, name="exit_with_parent").start()


def _use_default_absl_flags() -> None:
  """Grain's worker pool reads absl flags; a program that never parsed them (ours parse
  with argparse, tests with pytest) gets their defaults instead of an error."""
  from absl import flags

  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


class ShardRows:
  """Rows of one data shard (windows shard, shard + num_shards, ...), taken in blocks;
  `position` = (the shard's window, rows of it already taken)."""

  def __init__(self, plan: Plan, shard: int, num_shards: int, num_workers: int,
               position: tuple[int, int] = (0, 0)):
    self.window, self.row = position
    first = shard + self.window * num_shards
    shard_windows = windows(plan)[first::num_shards].to_iter_dataset(
        grain.ReadOptions(num_threads=1, prefetch_buffer_size=2))
    if num_workers > 0:
      _use_default_absl_flags()
      shard_windows = shard_windows.mp_prefetch(grain.MultiprocessingOptions(
          num_workers=num_workers, per_worker_buffer_size=2),
                                                worker_init_fn=exit_with_parent)
    self._iterator = iter(shard_windows)
    self._current = None  # fetched by the first take, so errors surface there

  @property
  def position(self) -> tuple[int, int]:
    return self.window, self.row

  def take(self, count: int) -> dict[str, np.ndarray]:
    parts = []
    if self._current is None:
      self._current = self._next_window()
    while count:
      available = len(self._current["encoder_input_tokens"]) - self.row
      if not available:
        self._current = self._next_window()
        self.window, self.row = self.window + 1, 0
        continue
      used = min(available, count)
      parts.append({k: v[self.row:self.row + used] for k, v in self._current.items()})
      self.row += used
      count -= used
    if len(parts) == 1:
      return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  def _next_window(self) -> dict[str, np.ndarray]:
    # Copied out of the worker's shared memory, which is then released at once.
    return {name: np.array(rows) for name, rows in next(self._iterator).items()}

  def close(self) -> None:
    close = getattr(self._iterator, "close", None)
    if close is not None:
      close()
