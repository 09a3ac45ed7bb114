"""The train and eval steps: pure functions of (state, batch, rng), then jit on a mesh.

`make_train_step` builds `(state, batch, rng) -> (state, metrics)` from the model's
`loss_sums` (runtime.model). The batch is split by rows into microbatches; `jax.lax.scan`
adds their gradients and loss sums, and the sum is divided once by the model's
`denominator`, so any number of microbatches gives the same update as one (up to float
rounding). Dropout keys come from `fold_in(rng, state.step)` (and the microbatch index),
so a step is reproducible from (state, batch, rng) alone, e.g. after a restart from a
checkpoint.

`compile_train_step` jits the step with the state's shardings, donates the old state and
traces inside `partitioning.activate`, so the model's logical constraints bind.
The step never raises on a non-finite loss (that would need a host sync in the step);
the loop calls `check_finite` on the metrics it fetches anyway.
"""

import math
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from flan_tune.errors import NonFiniteLossError
from flan_tune.model import peft
from flan_tune.runtime import partitioning
from flan_tune.runtime.model import EncoderDecoderModel
from flan_tune.training.train_state import TrainState

Array = jax.Array
PyTree = Any
Batch = Mapping[str, Array]
TrainStep = Callable[[TrainState, Batch, Array], tuple[TrainState, dict[str, Array]]]
EvalStep = Callable[[PyTree, Batch], dict[str, Array]]


def split_microbatches(batch: Batch, num_microbatches: int) -> dict[str, Array]:
  """(batch, ...) features -> (num_microbatches, batch / num_microbatches, ...).

  Microbatch i takes rows i, i + n, i + 2n, ...: each device's contiguous block of the
  data-sharded batch holds rows of every microbatch, so splitting moves no data."""
  def split(x):
    rows = x.shape[0]
    if rows % num_microbatches:
      raise ValueError(f"batch of {rows} rows does not split into {num_microbatches} "
                       f"microbatches")
    x = x.reshape((rows // num_microbatches, num_microbatches) + x.shape[1:])
    return jnp.swapaxes(x, 0, 1)
  return {name: split(value) for name, value in batch.items()}


def _logical_batch_constraint(batch: Batch) -> dict[str, Array]:
  """Keep each microbatch split over "data" (a no-op outside partitioning.activate)."""
  return {name: nn.with_logical_constraint(value, partitioning.BATCH_AXES[:value.ndim])
          for name, value in batch.items()}


def make_train_step(model: EncoderDecoderModel, optimizer: optax.GradientTransformation, *,
                    num_microbatches: int = 1, dropout: bool = True,
                    learning_rate_schedule: optax.Schedule | None = None) -> TrainStep:
  """A pure `(state, batch, rng) -> (state, metrics)` for jit.

  Metrics (float32 scalars): loss, z_loss, accuracy, num_tokens, num_examples, grad_norm
  (of the averaged gradient, before any clipping in the optimizer) and, with the
  schedule the optimizer was built with, learning_rate (the rate this update used)."""
  if num_microbatches < 1:
    raise ValueError(f"num_microbatches must be >= 1, got {num_microbatches}")

  def sums_fn(params, frozen, microbatch, dropout_rng):
    sums = model.loss_sums(peft.merge(params, frozen), microbatch,
                           dropout_rng if dropout else None)
    return sums["loss"], sums

  grad_fn = jax.grad(sums_fn, has_aux=True)  # only the trainable params' gradients

  def accumulate(params, frozen, batch, dropout_rng):
    """(summed gradients, summed loss_sums) over the microbatches."""
    if num_microbatches == 1:
      return grad_fn(params, frozen, batch, dropout_rng)
    microbatches = split_microbatches(batch, num_microbatches)

    def body(carry, inputs):
      index, microbatch = inputs
      grads, sums = grad_fn(params, frozen, _logical_batch_constraint(microbatch),
                            jax.random.fold_in(dropout_rng, index))
      return jax.tree.map(jnp.add, carry, (grads, sums)), None

    first = jax.tree.map(lambda x: x[0], microbatches)
    zeros = jax.tree.map(jnp.zeros_like,
                         jax.eval_shape(grad_fn, params, frozen, first, dropout_rng))
    (grads, sums), _ = jax.lax.scan(
        body, zeros, (jnp.arange(num_microbatches), microbatches))
    return grads, sums

  def train_step(state: TrainState, batch: Batch, rng: Array):
    dropout_rng = jax.random.fold_in(rng, state.step)
    grads, sums = accumulate(state.params, state.frozen, batch, dropout_rng)
    divisor = model.denominator(sums)
    grads = jax.tree.map(lambda g: g / divisor, grads)
    _, metrics = model.normalize(sums)
    metrics["grad_norm"] = optax.tree.norm(grads)
    if learning_rate_schedule is not None:
      metrics["learning_rate"] = jnp.asarray(learning_rate_schedule(state.step), jnp.float32)
    return state.apply_gradients(grads, optimizer), metrics

  return train_step


def make_eval_step(model: EncoderDecoderModel) -> EvalStep:
  """A pure `(params, batch) -> metrics` without dropout: the train step's loss metrics."""
  def eval_step(params: PyTree, batch: Batch) -> dict[str, Array]:
    return model.loss_fn(params, batch)[1]

  return eval_step


def compile_train_step(train_step: TrainStep, mesh: Mesh, rules: partitioning.Rules,
                       state_shardings: TrainState,
                       batch_sharding: NamedSharding) -> TrainStep:
  """jit with the state's shardings, the old state donated (its buffers become the new
  state's), every feature split by `batch_sharding`, the rng and metrics replicated."""
  replicated = NamedSharding(mesh, P())
  jitted = jax.jit(train_step, in_shardings=(state_shardings, batch_sharding, replicated),
                   out_shardings=(state_shardings, replicated), donate_argnums=(0,))
  return partitioning.run_in(mesh, rules, jitted)


def compile_eval_step(eval_step: EvalStep, mesh: Mesh, rules: partitioning.Rules,
                      param_shardings: PyTree, batch_sharding: NamedSharding) -> EvalStep:
  """jit for `make_eval_step`'s function; pass `state_shardings(...).params`."""
  jitted = jax.jit(eval_step, in_shardings=(param_shardings, batch_sharding),
                   out_shardings=NamedSharding(mesh, P()))
  return partitioning.run_in(mesh, rules, jitted)


def check_finite(metrics: Mapping[str, Any], step: int) -> None:
  """Raises NonFiniteLossError if the fetched loss is NaN or infinite.

  Call it before saving a checkpoint, so the last one saved is still a good state."""
  loss = float(np.asarray(jax.device_get(metrics["loss"])))
  if not math.isfinite(loss):
    raise NonFiniteLossError(
        f"loss is {loss} at step {int(step)}; the last checkpoint is kept")
