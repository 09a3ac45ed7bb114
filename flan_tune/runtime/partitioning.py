"""Device mesh, logical-axis rules and shardings: T5X's partitioning.py on current JAX.

The model names every parameter and activation axis logically (batch, embed, mlp, ...;
see flan_tune.model.network); a rule set maps those names to the mesh axes "data" and
"model". Parameters get NamedShardings from their logical axes, batches are split over
"data", and `activate` makes the model's `with_logical_constraint`s bind while tracing.
Nothing here uses `jax.experimental.pjit` or `with mesh:`; meshes have Auto axis types so
shardings propagate from the annotations.
"""

import contextlib
import dataclasses
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import flax.linen as nn
import gin
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from flan_tune.errors import PartitioningError

PyTree = Any
Rules = tuple[tuple[str, str | tuple[str, ...] | None], ...]

MESH_AXES = ("data", "model")

# Names that never shard: sequence positions, relative-position buckets, scanned layers,
# the soft prompt and LoRA's rank (flan_tune.model.peft).
_UNSHARDED_RULES: Rules = (
    ("length", None),
    ("relpos_buckets", None),
    ("abspos_buckets", None),
    ("layers", None),
    ("stack", None),
    ("mlp_activations", None),
    ("prompt_length", None),
    ("prompt_embed", None),
    ("lora_rank", None),
)

# T5X standard 1-D rules: data parallelism on the batch, Megatron-style model parallelism
# on vocab / mlp / heads; embed stays replicated.
STANDARD_RULES: Rules = (
    ("batch", "data"),
    ("vocab", "model"),
    ("embed", None),
    ("mlp", "model"),
    ("heads", "model"),
    ("kv", None),
    ("joined_kv", "model"),
) + _UNSHARDED_RULES

# T5X's parameter_partitioning_dims=2 (ZeRO-3-like FSDP): parameters' embed also over
# "data". Rules are priority-ordered and a mesh axis is used once per array, so in an
# activation (batch, length, embed) the batch takes "data" first and embed falls back to
# replicated; in a parameter (vocab, embed) embed is free to take "data".
FSDP_RULES: Rules = (
    ("batch", "data"),
    ("vocab", "model"),
    ("mlp", "model"),
    ("heads", "model"),
    ("kv", None),
    ("joined_kv", "model"),
    ("embed", "data"),
) + _UNSHARDED_RULES

RULE_SETS: dict[str, Rules] = {"standard": STANDARD_RULES, "fsdp": FSDP_RULES}

BATCH_AXES = ("batch", "length")


def axis_rules(name: str) -> Rules:
  """The rule set called `name` ("standard" or "fsdp")."""
  if name not in RULE_SETS:
    raise PartitioningError(
        f"MeshConfig.rules={name!r} is not a rule set (choose from {sorted(RULE_SETS)})")
  return RULE_SETS[name]


@gin.configurable
@dataclasses.dataclass(frozen=True)
class MeshConfig:
  """Mesh axis sizes (-1: whatever the device count leaves) and the rule set to use.

  The default is pure data parallelism over every device of every process."""

  data: int = -1
  model: int = 1
  rules: str = "standard"

  def axis_sizes(self, num_devices: int) -> tuple[int, int]:
    """(data, model) for `num_devices` devices, with a -1 derived."""
    return resolve_axis_sizes({"data": self.data, "model": self.model}, num_devices)

  def make_mesh(self, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A ("data", "model") mesh over `devices` (default: jax.devices(), all processes)."""
    devices = list(jax.devices() if devices is None else devices)
    sizes = self.axis_sizes(len(devices))
    return jax.make_mesh(sizes, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES),
                         devices=devices)

  def axis_rules(self) -> Rules:
    return axis_rules(self.rules)


def resolve_axis_sizes(sizes: Mapping[str, int], num_devices: int) -> tuple[int, ...]:
  """Axis sizes with at most one -1 filled in; errors name the gin binding at fault."""
  derived = [name for name, size in sizes.items() if size == -1]
  if len(derived) > 1:
    raise PartitioningError(
        "at most one of " + ", ".join(f"MeshConfig.{n}" for n in derived) + " may be -1")
  for name, size in sizes.items():
    if isinstance(size, bool) or not isinstance(size, int) or (size < 1 and size != -1):
      raise PartitioningError(f"MeshConfig.{name}={size!r} must be a positive int or -1")
  fixed = {name: size for name, size in sizes.items() if size != -1}
  product = math.prod(fixed.values())
  if derived:
    if num_devices % product:
      culprit = ", ".join(f"MeshConfig.{n}={s}" for n, s in fixed.items() if s > 1)
      raise PartitioningError(f"{culprit or 'the mesh'} does not divide {num_devices} devices")
    fixed[derived[0]] = num_devices // product
  elif product != num_devices:
    bindings = " x ".join(f"MeshConfig.{n}={s}" for n, s in fixed.items())
    raise PartitioningError(f"{bindings} = {product} devices, but there are {num_devices}")
  return tuple(fixed[name] for name in sizes)


def _axis_size(mesh: Mesh, mesh_axes: str | tuple[str, ...] | None) -> int:
  if mesh_axes is None:
    return 1
  names = (mesh_axes,) if isinstance(mesh_axes, str) else mesh_axes
  return math.prod(mesh.shape[name] for name in names)


def _fit_spec(mesh: Mesh, spec: P, shape: tuple[int, ...]) -> tuple[P, list[str]]:
  """`spec` with every dimension its mesh axes do not divide replicated, and what changed."""
  entries = list(spec) + [None] * (len(shape) - len(spec))
  dropped = []
  for dim, (mesh_axes, size) in enumerate(zip(entries, shape)):
    if mesh_axes is not None and size % _axis_size(mesh, mesh_axes):
      dropped.append(f"dim {dim} ({size}) over {mesh_axes!r} ({_axis_size(mesh, mesh_axes)})")
      entries[dim] = None
  return P(*entries), dropped


def _path_name(path) -> str:
  return "/".join(str(getattr(key, "key", getattr(key, "name", key))) for key in path)


def param_specs(mesh: Mesh, rules: Rules, abstract_variables: PyTree) -> PyTree:
  """Mesh PartitionSpecs for a boxed (logically partitioned) params or variables tree.

  A dimension that its mesh axes do not divide (3 heads over model=2) is replicated, as
  T5X does, and one warning lists the affected parameters."""
  logical = nn.get_partition_spec(abstract_variables)
  shapes = nn.unbox(abstract_variables)
  replicated = []

  def to_mesh(path, leaf, logical_spec):
    spec = nn.logical_to_mesh_axes(tuple(logical_spec), rules)
    spec, dropped = _fit_spec(mesh, spec, tuple(np.shape(leaf)))
    replicated.extend(f"{_path_name(path)}: {d}" for d in dropped)
    return spec

  specs = jax.tree_util.tree_map_with_path(to_mesh, shapes, logical)
  if replicated:
    logging.warning("partitioning: mesh axes do not divide these parameter dimensions; "
                    "replicating them instead:\n  %s", "\n  ".join(replicated))
  return specs


def param_shardings(mesh: Mesh, rules: Rules, abstract_variables: PyTree) -> PyTree:
  """NamedShardings (same tree as the unboxed params) for jit's in/out_shardings."""
  specs = param_specs(mesh, rules, abstract_variables)
  return jax.tree.map(lambda spec: NamedSharding(mesh, spec), specs,
                      is_leaf=lambda x: isinstance(x, P))


def shard_params(params: PyTree, shardings: PyTree) -> PyTree:
  """Places (unboxed) params on the mesh; each device receives only its shard."""
  return jax.device_put(nn.unbox(params), shardings)


def batch_spec(rules: Rules, ndim: int = 2) -> P:
  """The mesh spec of a (batch, length, ...) array: batch over data, the rest replicated."""
  spec = nn.logical_to_mesh_axes(BATCH_AXES[:ndim], rules)
  return P(*(list(spec) + [None] * (ndim - len(spec))))


def batch_sharding(mesh: Mesh, rules: Rules, ndim: int = 2) -> NamedSharding:
  """NamedSharding of a (batch, length) feature array."""
  return NamedSharding(mesh, batch_spec(rules, ndim))


def data_parallel_size(mesh: Mesh, rules: Rules) -> int:
  """How many ways the batch dimension is split."""
  return _axis_size(mesh, batch_spec(rules, 1)[0])


def check_batch_size(global_batch_size: int, mesh: Mesh, rules: Rules) -> None:
  """Fails early, naming the numbers, where the batch cannot split evenly."""
  ways = data_parallel_size(mesh, rules)
  if global_batch_size % ways:
    raise PartitioningError(
        f"global batch size {global_batch_size} is not divisible by the data-parallel size "
        f"{ways} (mesh {dict(mesh.shape)}); change the batch size or MeshConfig.data")
  processes = jax.process_count()
  if global_batch_size % processes:
    raise PartitioningError(f"global batch size {global_batch_size} is not divisible by "
                            f"the {processes} processes that each feed a part of it")


@contextlib.contextmanager
def activate(mesh: Mesh, rules: Rules) -> Iterator[None]:
  """Mesh and rules for tracing, so the model's with_logical_constraints take effect.

  Trace (first call of a jitted function) inside this context: jit's cache does not
  see the flax rules, so a function traced outside keeps no constraints."""
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    yield


def run_in(mesh: Mesh, rules: Rules, jitted: Callable) -> Callable:
  """Calls `jitted` inside activate(mesh, rules), where its first call traces it."""
  def call(*args):
    with activate(mesh, rules):
      return jitted(*args)

  def lower(*args):
    with activate(mesh, rules):
      return jitted.lower(*args)

  call.lower = lower
  return call


def make_global_batch(local_batch: Mapping[str, np.ndarray], mesh: Mesh,
                      sharding: NamedSharding | None = None) -> dict[str, jax.Array]:
  """Global arrays from this process's rows of each feature (its seqio shard).

  Every process calls it with its own equal-sized piece; the default sharding splits
  the batch over "data" (both rule sets agree). Arrays of other rank keep the leading
  batch dimension's sharding and replicate the rest."""
  spec = (sharding or batch_sharding(mesh, STANDARD_RULES)).spec
  out = {}
  for name, value in local_batch.items():
    value = np.asarray(value)
    entries = (list(spec) + [None] * value.ndim)[:value.ndim]
    out[name] = jax.make_array_from_process_local_data(NamedSharding(mesh, P(*entries)), value)
  return out
