"""Per-device memory of a training run, planned before any device exists.

`plan` answers "does T5 XXL train on data=64 x model=4 at batch 512, 512/128 tokens,
and with how much to spare?" without a mesh of real devices: the mesh is a
`jax.sharding.AbstractMesh`, and the state's shardings come from the trainer's own
`train_state.state_shardings` (the partitioning rules, their replication fallback for
dimensions a mesh axis does not divide, and the optimizer state following its
parameters). Parameter and optimizer-state shapes come from `jax.eval_shape` of the real
model and optimizer initializers, so those two rows are exact; nothing is allocated.

Rows, per device, in bytes:
  params       float32 parameter shards (TrainState.params, and .frozen under
               parameter-efficient tuning).
  optimizer    optimizer-state shards plus the step counter: Adafactor's factored
               v_row / v_col (replicated) and unfactored v, AdamW's mu and nu, ...; for
               the trained parameters only.
  gradients    one float32 gradient per trained parameter, sharded like it (the step
               holds the whole gradient tree before the update: its norm is a metric);
               with microbatches, a second copy, the accumulator.
  batch        the step's int32 input features (packed: 3 encoder and 5 decoder ones).
  activations  analytic, see `activation_bytes`.
The compiled step's arguments are params + optimizer + batch (less the (1,)-shaped
placeholders Adafactor keeps for unused slots, which jit prunes as unused arguments but
the state still holds); its temporaries are the gradients and the activations.
tests/test_memory_plan.py checks both against `compiled.memory_analysis()` on CPU devices.
"""

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AbstractMesh, AxisType

from flan_tune.errors import FlanTuneError
from flan_tune.model import peft as peft_lib
from flan_tune.model.config import T5Config
from flan_tune.runtime import features, partitioning
from flan_tune.training import train_state

PyTree = Any

# Packed EncDecFeatureConverter features the train step receives (all int32).
ENCODER_FEATURES, DECODER_FEATURES = features.ENCODER, features.DECODER

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
ROWS = ("params", "optimizer", "gradients", "batch", "activations")


class PlanError(FlanTuneError):
  """A planner input that cannot describe a run; the message names the flag."""


def parse_memory(text: str, flag: str = "--device_memory") -> int:
  """'80GiB', '16GB', '1.5TiB', '512MiB' or plain bytes -> bytes."""
  match = _MEMORY.match(str(text))
  unit = match and match.group(2).lower()
  if not match or unit not in _UNITS:
    raise PlanError(f"{flag}={text!r} is not a memory size (e.g. 80GiB, 16GB, 512MiB)")
  value = int(float(match.group(1)) * _UNITS[unit])
  if value <= 0:
    raise PlanError(f"{flag}={text!r} must be positive")
  return value


def parse_mesh(text: str, flag: str = "--mesh") -> dict[str, int]:
  """'data=64,model=4' -> {'data': 64, 'model': 4}; a missing axis is 1."""
  sizes = {}
  for part in str(text).split(","):
    name, _, value = part.partition("=")
    name = name.strip()
    if name not in partitioning.MESH_AXES or not value.strip().isdigit() or name in sizes:
      raise PlanError(f"{flag}={text!r}: expected data=N,model=M (positive ints)")
    sizes[name] = int(value)
  if any(size < 1 for size in sizes.values()):
    raise PlanError(f"{flag}={text!r}: axis sizes must be positive")
  return {name: sizes.get(name, 1) for name in partitioning.MESH_AXES}


def abstract_mesh(mesh_shape: Mapping[str, int]) -> AbstractMesh:
  """A ("data", "model") mesh of the given sizes that needs no devices."""
  sizes = tuple(mesh_shape[name] for name in partitioning.MESH_AXES)
  return AbstractMesh(sizes, partitioning.MESH_AXES,
                      axis_types=(AxisType.Auto,) * len(sizes))


def shard_bytes(shapes: PyTree, shardings: PyTree) -> int:
  """Bytes one device holds of a tree of ShapeDtypeStructs under matching shardings."""
  total = 0
  for leaf, sharding in zip(jax.tree.leaves(shapes), jax.tree.leaves(shardings)):
    total += math.prod(sharding.shard_shape(leaf.shape)) * np.dtype(leaf.dtype).itemsize
  return total


def state_bytes(shapes: train_state.TrainState,
                shardings: train_state.TrainState) -> dict[str, int]:
  """Exact per-device params (trained and frozen) / optimizer (+ step) bytes of an
  abstract state, and the trained params' alone."""
  trained = shard_bytes(shapes.params, shardings.params)
  return {"params": trained + shard_bytes(shapes.frozen, shardings.frozen),
          "optimizer": (shard_bytes(shapes.opt_state, shardings.opt_state)
                        + shard_bytes(shapes.step, shardings.step)),
          "trained": trained}


def batch_bytes(rows: int, lengths: Mapping[str, int]) -> int:
  """int32 features of `rows` (per-device) rows."""
  return 4 * rows * (len(ENCODER_FEATURES) * lengths["inputs"]
                     + len(DECODER_FEATURES) * lengths["targets"])


def _split(size: int, ways: int) -> float:
  """A dimension's per-device size: split when the mesh axis divides it, as _fit_spec."""
  return size / ways if size % ways == 0 else size


def _attention_bytes(cfg: T5Config, rows: int, q_len: int, kv_len: int, ways: int,
                     saves: str) -> float:
  """One attention block's saved tensors. saves: "all", "dots" or "projections"."""
  s = jnp.dtype(cfg.activation_dtype).itemsize
  heads = _split(cfg.num_heads, ways)
  q = rows * q_len * heads * cfg.d_kv * s
  kv = rows * kv_len * heads * cfg.d_kv * s
  scores = rows * heads * q_len * kv_len
  out = rows * q_len * cfg.d_model * s
  if saves == "projections":  # q, k, v and the output projection
    return q + 2 * kv + out
  if saves == "dots":  # ... plus the float32 logits and the attended values
    return 2 * q + 2 * kv + out + 4 * scores
  dropout = 1 + s if cfg.dropout_rate > 0 else 0
  # normed input, q, k, v, attended; float32 softmax (+ its dtype copy); dropout mask.
  return (rows * q_len * cfg.d_model * s + 2 * q + 2 * kv
          + scores * (4 + (s if s != 4 else 0) + dropout))


def _mlp_bytes(cfg: T5Config, rows: int, length: int, ways: int, saves: str) -> float:
  """One MLP block's saved tensors (gated: each wi output, the activation, the product)."""
  s = jnp.dtype(cfg.activation_dtype).itemsize
  hidden = rows * length * _split(cfg.d_ff, ways) * s
  residual = rows * length * cfg.d_model * s
  branches = len(cfg.mlp_activations)
  if saves in ("dots", "projections"):  # wi outputs and the wo output
    return branches * hidden + residual
  products = 2 * branches if branches > 1 else 2
  dropout = rows * length * _split(cfg.d_ff, ways) * (1 + s) if cfg.dropout_rate > 0 else 0
  return residual + products * hidden + dropout


def _layer_bytes(cfg: T5Config, rows: int, lengths: Mapping[str, int], ways: int,
                 decoder: bool, saves: str) -> float:
  """Saved tensors of one encoder or decoder layer, its input included."""
  s = jnp.dtype(cfg.activation_dtype).itemsize
  q_len = lengths["targets"] if decoder else lengths["inputs"]
  total = rows * q_len * cfg.d_model * s  # the layer's input (what full remat keeps)
  total += _attention_bytes(cfg, rows, q_len, q_len, ways, saves)
  if decoder:
    total += _attention_bytes(cfg, rows, q_len, lengths["inputs"], ways, saves)
  if saves == "all" and s != 4:  # each RMSNorm keeps its float32 input
    total += (3 if decoder else 2) * rows * q_len * cfg.d_model * 4
  return total + _mlp_bytes(cfg, rows, q_len, ways, saves)


def activation_bytes(cfg: T5Config, rows: int, lengths: Mapping[str, int],
                     model_ways: int) -> int:
  """Analytic peak of what the forward pass keeps for the backward pass, per device.

  `rows` is the per-device microbatch (batch / data / microbatches); tensors split over
  "model" where the model's logical constraints put them (heads, mlp, vocab) and the
  size divides, and are replicated over it otherwise (embed). Counted, per layer:
    remat "none": the layer input, each normed input (and, in bfloat16, its float32
      copy), q/k/v/attended, the float32 softmax (plus its bfloat16 copy and dropout
      mask), and the MLP's wi outputs, activation and product (plus dropout mask);
    "dots": the layer input and the outputs of every matmul (q, k, v, float32 logits,
      attended, out, wi_*, wo); "dots_with_no_batch_dims": the same without the two
      attention einsums (the projections only); "full": the layer input only.
  Plus, for every policy: the embeddings, the encoder output, the float32 logits and
  their softmax and gradient, the relative position biases, and a transient of two
  layers' worth of the "none" set (the layer being differentiated, rematerialised or
  not, and its gradients). Not counted: XLA's fusion scratch and all-gather buffers of
  FSDP weights (the tests bound the difference). scan_layers does not change the count,
  though XLA keeps about 1.4x more for a scanned stack without remat (measured on CPU).
  """
  saves = {"none": "all", "full": None, "dots": "dots",
           "dots_with_no_batch_dims": "projections"}[cfg.remat_policy]
  s = jnp.dtype(cfg.activation_dtype).itemsize
  li, lt = lengths["inputs"], lengths["targets"]

  def stack(decoder, layer_saves):
    count = cfg.num_decoder_layers if decoder else cfg.num_encoder_layers
    length = lt if decoder else li
    if layer_saves is None:
      per_layer = rows * length * cfg.d_model * s
    else:
      per_layer = _layer_bytes(cfg, rows, lengths, model_ways, decoder, layer_saves)
    return count * per_layer

  layers = stack(False, saves) + stack(True, saves)
  transient = 2 * max(_layer_bytes(cfg, rows, lengths, model_ways, decoder, "all")
                      for decoder in (False, True))
  heads = _split(cfg.num_heads, model_ways)
  biases = rows * heads * (li * li + lt * lt) * s
  edges = rows * (2 * li + 2 * lt) * cfg.d_model * s  # embeddings, final norms
  logits = rows * lt * _split(cfg.vocab_size, model_ways) * (s + 4 + 4)
  return int(layers + transient + biases + edges + logits)


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
  """Per-device bytes of each row, the total, and whether it fits."""

  mesh: dict[str, int]
  rules: str
  batch_size: int
  lengths: dict[str, int]
  num_microbatches: int
  rows_per_device: int
  bytes: dict[str, int]
  device_memory: int | None
  headroom: float
  num_params: int
  method: str = "full"
  trainable_params: int = 0

  @property
  def total(self) -> int:
    return sum(self.bytes.values())

  @property
  def usable(self) -> int | None:
    return None if self.device_memory is None else int(self.device_memory
                                                       * (1 - self.headroom))

  @property
  def fits(self) -> bool | None:
    return None if self.device_memory is None else self.total <= self.usable

  def to_json(self) -> dict[str, Any]:
    return {**dataclasses.asdict(self), "total": self.total, "usable": self.usable,
            "fits": self.fits}


def check_inputs(mesh_shape: Mapping[str, int], batch_size: int, num_microbatches: int,
                 headroom: float) -> int:
  """The per-device microbatch rows; errors name the flag that cannot be met."""
  data = mesh_shape["data"]
  if batch_size < 1:
    raise PlanError(f"--batch_size={batch_size} must be positive")
  if num_microbatches < 1:
    raise PlanError(f"--num_microbatches={num_microbatches} must be positive")
  if batch_size % (data * num_microbatches):
    raise PlanError(f"--batch_size={batch_size} does not split over --mesh data={data}"
                    + (f" x --num_microbatches={num_microbatches}"
                       if num_microbatches > 1 else "")
                    + " (the batch must divide evenly)")
  if not 0 <= headroom < 1:
    raise PlanError(f"--headroom={headroom} must be in [0, 1)")
  return batch_size // (data * num_microbatches)


def plan(config: T5Config, optimizer: optax.GradientTransformation,
         mesh_shape: Mapping[str, int], rules: str, batch_size: int,
         lengths: Mapping[str, int], *, num_microbatches: int = 1,
         device_memory: int | None = None, headroom: float = 0.1,
         peft: peft_lib.PeftConfig = train_state.FULL) -> MemoryPlan:
  """The per-device memory plan of one training configuration."""
  if rules not in partitioning.RULE_SETS:
    raise PlanError(f"rules {rules!r} (--rules or MeshConfig.rules) is not a rule set "
                    f"(choose from {', '.join(sorted(partitioning.RULE_SETS))})")
  rows = check_inputs(mesh_shape, batch_size, num_microbatches, headroom)
  model = peft.network(config)
  shapes, shardings = train_state.abstract_state_and_shardings(
      abstract_mesh(mesh_shape), partitioning.axis_rules(rules), model, optimizer, peft)
  state = state_bytes(shapes, shardings)
  trained = state.pop("trained")
  # The soft prompt lengthens every encoder row.
  encoder = dict(lengths, inputs=lengths["inputs"] + (peft.prompt_length
                                                       if peft.method == "prompt" else 0))
  sizes = {**state,
           "gradients": trained * (2 if num_microbatches > 1 else 1),
           "batch": batch_bytes(batch_size // mesh_shape["data"], lengths),
           "activations": activation_bytes(config, rows, encoder, mesh_shape["model"])}
  return MemoryPlan(mesh=dict(mesh_shape), rules=rules, batch_size=batch_size,
                    lengths=dict(lengths), num_microbatches=num_microbatches,
                    rows_per_device=rows, bytes=sizes, device_memory=device_memory,
                    headroom=headroom,
                    num_params=peft_lib.count(shapes.params) + peft_lib.count(shapes.frozen),
                    method=peft.method, trainable_params=peft_lib.count(shapes.params))


def format_bytes(value: int) -> str:
  """Binary units, 3 significant digits: 1.23 GiB."""
  for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
    if value >= size:
      return f"{value / size:.3g} {unit}"
  return f"{value} B"


def format_plan(p: MemoryPlan, config: T5Config) -> str:
  """The readable table `flan-tune plan` prints."""
  mesh = " x ".join(f"{name}={size}" for name, size in p.mesh.items())
  lines = [
      f"T5 d_model={config.d_model} {config.num_encoder_layers}+{config.num_decoder_layers} "
      f"layers, {p.num_params / 1e9:.3g}B params; activations {config.dtype}, "
      f"remat {config.remat_policy}{', scanned' if config.scan_layers else ''}",
      f"tuning {p.method}: {p.trainable_params:,} trained params "
      f"({100 * p.trainable_params / max(p.num_params, 1):.3g}%)",
      f"mesh {mesh} ({math.prod(p.mesh.values())} devices), rules {p.rules}",
      f"batch {p.batch_size} at inputs={p.lengths['inputs']},targets={p.lengths['targets']}"
      f" in {p.num_microbatches} microbatch{'es' if p.num_microbatches > 1 else ''}: "
      f"{p.rows_per_device} rows per device",
      "",
      f"{'per device':<14}{'bytes':>16}{'':>4}{'share':>7}"]
  for name in ROWS:
    value = p.bytes[name]
    lines.append(f"{name:<14}{value:>16,}{format_bytes(value):>12}"
                 f"{100 * value / max(p.total, 1):>6.1f}%")
  lines.append(f"{'total':<14}{p.total:>16,}{format_bytes(p.total):>12}")
  if p.device_memory is not None:
    lines.append(f"fits {format_bytes(p.device_memory)} with {100 * p.headroom:.0f}% headroom "
                 f"({format_bytes(p.usable)} usable): {'yes' if p.fits else 'NO'}"
                 f" ({format_bytes(abs(p.usable - p.total))} "
                 f"{'to spare' if p.fits else 'short'})")
  return "\n".join(lines)


def format_methods(plans: list[MemoryPlan]) -> str:
  """The same run tuned each way: what trains and what each device holds."""
  lines = [f"{'by method':<10}{'trained params':>18}{'optimizer':>12}{'gradients':>12}"
           f"{'activations':>13}{'total':>12}"]
  for p in plans:
    lines.append(f"{p.method:<10}{p.trainable_params:>18,}"
                 f"{format_bytes(p.bytes['optimizer']):>12}{format_bytes(p.bytes['gradients']):>12}"
                 f"{format_bytes(p.bytes['activations']):>13}{format_bytes(p.total):>12}")
  return "\n".join(lines)
