"""The training state (step, params, optimizer state) and its shardings.

Under parameter-efficient tuning (`flan_tune.model.peft`) `params` holds only what trains
(a soft prompt, LoRA adapters) and `frozen` the pretrained rest: the optimizer state and
the checkpoints (`checkpointed()`) cover `params` alone, and the model runs on
`model_params()`, the two merged. For full tuning `frozen` is None.

`TrainState` is a plain pytree, so jit can shard and donate it as a whole. The optimizer
itself is not part of the state: it holds functions, not arrays, and the trainer closes
over it. `create` runs the initializer under jit with the state's out_shardings, so each
device materialises only its own shards and a large model never exists on one device.

Optimizer-state sharding: an optimizer-state leaf whose tree path ends with a parameter's
path and whose shape equals that parameter's (Adam's mu and nu, Adafactor's unfactored v,
momentum) takes the parameter's sharding, so it costs the same memory per device as the
parameter. Everything else is replicated: step counts, Adafactor's factored v_row / v_col
(one vector per matrix, 1/d of its size) and the (1,)-shaped placeholders Adafactor keeps
in the slots it does not use. Matching on the path suffix, not on the whole state's
structure, also covers masked (optax.masked) and chained transformations.
"""

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from flan_tune.model import network, peft as peft_lib
from flan_tune.runtime import partitioning

PyTree = Any


@flax.struct.dataclass
class TrainState:
  """What changes from one step to the next; every field is a pytree of arrays."""

  step: jax.Array  # int32 scalar: the number of optimizer updates applied so far
  params: PyTree   # unboxed float32 parameters that train
  opt_state: optax.OptState
  frozen: PyTree = None  # parameters that do not (parameter-efficient tuning)

  def model_params(self) -> PyTree:
    return peft_lib.merge(self.params, self.frozen)

  def checkpointed(self) -> "TrainState":
    """What a checkpoint holds: everything but the frozen pretrained parameters."""
    return self.replace(frozen=None)

  def apply_gradients(self, grads: PyTree, optimizer: optax.GradientTransformation
                      ) -> "TrainState":
    """One optimizer update; the step advances by one."""
    updates, opt_state = optimizer.update(grads, self.opt_state, self.params)
    return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                        opt_state=opt_state)


FULL = peft_lib.PeftConfig()


def _state_of(params: PyTree, optimizer: optax.GradientTransformation,
              peft: peft_lib.PeftConfig) -> TrainState:
  trainable, frozen = peft_lib.split(params, peft)
  return TrainState(step=jnp.zeros((), jnp.int32), params=trainable,
                    opt_state=optimizer.init(trainable), frozen=frozen)


def _initial_state(model: network.T5, optimizer: optax.GradientTransformation,
                   peft: peft_lib.PeftConfig, rng: jax.Array) -> TrainState:
  return _state_of(network.unbox(network.init_variables(model, rng)["params"]), optimizer,
                   peft)


def _traced(model: network.T5, optimizer: optax.GradientTransformation,
            peft: peft_lib.PeftConfig) -> tuple[PyTree, TrainState]:
  """(the boxed abstract params, the abstract state) from one trace of the model's
  initialiser: tracing an XXL model takes seconds, so nothing here traces it twice."""
  boxed = network.abstract_variables(model)["params"]
  state = jax.eval_shape(functools.partial(_state_of, optimizer=optimizer, peft=peft),
                         network.unbox(boxed))
  return boxed, state


def abstract_state(model: network.T5, optimizer: optax.GradientTransformation,
                   peft: peft_lib.PeftConfig = FULL) -> TrainState:
  """The state as jax.ShapeDtypeStructs: shapes and dtypes without allocating anything."""
  return _traced(model, optimizer, peft)[1]


def create(model: network.T5, optimizer: optax.GradientTransformation, rng: jax.Array,
           shardings: TrainState | None = None,
           peft: peft_lib.PeftConfig = FULL) -> TrainState:
  """A fresh state, initialised directly into `shardings` (from `state_shardings`).

  Without shardings it lands on the default device. The initializer is traced outside
  `partitioning.activate` on purpose: its dummy 1x1 batch need not split over "data", and
  only the parameters' placement (out_shardings) matters here."""
  init = functools.partial(_initial_state, model, optimizer, peft)
  return jax.jit(init, out_shardings=shardings)(rng)


def from_params(params: PyTree, optimizer: optax.GradientTransformation,
                shardings: TrainState, peft: peft_lib.PeftConfig = FULL) -> TrainState:
  """Step 0 from given (already placed) params, e.g. an initial checkpoint's, holding
  every parameter of the model `peft` builds; the optimizer state is initialised directly
  into its shardings."""
  init = functools.partial(_state_of, optimizer=optimizer, peft=peft)
  return jax.jit(init, out_shardings=shardings, donate_argnums=0)(params)


def new_parameters(model: network.T5, base: PyTree, rng: jax.Array, shardings: PyTree,
                   peft: peft_lib.PeftConfig) -> PyTree:
  """The parameters `peft` adds to a pretrained `base` (its initialisers' values), placed
  by `shardings` (the whole model's); only those are computed, the rest is `base`."""
  def init(rng):
    params = network.unbox(network.init_variables(model, rng)["params"])
    return peft_lib.split(params, peft)[0]
  trainable_shardings = peft_lib.split(shardings, peft)[0]
  return peft_lib.merge(jax.jit(init, out_shardings=trainable_shardings)(rng), base)


def _path_key(entry) -> str:
  return str(getattr(entry, "key", getattr(entry, "name", getattr(entry, "idx", entry))))


def _optimizer_state_shardings(mesh: Mesh, params: PyTree, param_shardings: PyTree,
                               opt_state: PyTree) -> PyTree:
  """Each optimizer-state leaf: its parameter's sharding if path suffix and shape match."""
  by_path = {}
  for (path, leaf), sharding in zip(jax.tree_util.tree_leaves_with_path(params),
                                    jax.tree.leaves(param_shardings)):
    by_path[tuple(_path_key(e) for e in path)] = (leaf.shape, sharding)
  replicated = NamedSharding(mesh, P())

  def sharding_of(path, leaf):
    keys = tuple(_path_key(e) for e in path)
    for start in range(len(keys)):
      shape, sharding = by_path.get(keys[start:], (None, None))
      if sharding is not None:
        return sharding if shape == leaf.shape else replicated
    return replicated

  return jax.tree_util.tree_map_with_path(sharding_of, opt_state)


def abstract_state_and_shardings(mesh: Mesh, rules: partitioning.Rules, model: network.T5,
                                 optimizer: optax.GradientTransformation,
                                 peft: peft_lib.PeftConfig = FULL
                                 ) -> tuple[TrainState, TrainState]:
  """`abstract_state` and `state_shardings` together, from one trace of the model."""
  boxed, shapes = _traced(model, optimizer, peft)
  params, frozen = peft_lib.split(partitioning.param_shardings(mesh, rules, boxed), peft)
  return shapes, TrainState(
      step=NamedSharding(mesh, P()), params=params,
      opt_state=_optimizer_state_shardings(mesh, shapes.params, params, shapes.opt_state),
      frozen=frozen)


def state_shardings(mesh: Mesh, rules: partitioning.Rules, model: network.T5,
                    optimizer: optax.GradientTransformation,
                    peft: peft_lib.PeftConfig = FULL) -> TrainState:
  """NamedShardings for every leaf of the state: for `create`, jit and checkpoint restore.

  Parameters follow the rules (`partitioning.param_shardings`); the optimizer state
  follows its parameters as the module docstring describes; the step is replicated."""
  return abstract_state_and_shardings(mesh, rules, model, optimizer, peft)[1]
