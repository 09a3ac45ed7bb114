"""The model as evaluation and inference use it (T5X's `score_batch` / `predict_batch`),
compiled once on a device mesh under the logical-axis rules.

The params are split as training splits them (`partitioning.param_shardings`), batches
over the data axis, and results come back replicated; so a model that needed model
parallelism or FSDP to train scores and decodes on the same mesh.
"""

import functools
from collections.abc import Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from flan_tune.model import decoding, network
from flan_tune.runtime import partitioning

PyTree = object


class ShardedModel:
  """`score_batch` and `predict_batch` of a T5 on `mesh` (default: every device, data
  parallel). Decoding options are fixed here, so each compiles once per batch shape."""

  def __init__(self, model: network.T5, max_decode_length: int, mesh: Mesh | None = None,
               rules: partitioning.Rules | None = None, **decoding_options):
    self.model = model
    self.mesh = mesh or partitioning.MeshConfig().make_mesh()
    self.rules = rules or partitioning.STANDARD_RULES
    self.param_shardings = partitioning.param_shardings(
        self.mesh, self.rules, network.abstract_variables(model)["params"])
    rows = partitioning.batch_sharding(self.mesh, self.rules)
    replicated = NamedSharding(self.mesh, P())
    self._generate = partitioning.run_in(self.mesh, self.rules, jax.jit(
        functools.partial(decoding.generate, model, max_decode_length=max_decode_length,
                          **decoding_options),
        in_shardings=(self.param_shardings, rows), out_shardings=replicated))
    self._score = partitioning.run_in(self.mesh, self.rules, jax.jit(
        functools.partial(decoding.score, model), in_shardings=(self.param_shardings, rows),
        out_shardings=replicated))

  def place(self, params: PyTree) -> PyTree:
    """Host params onto the mesh, each device receiving only its shards."""
    return partitioning.shard_params(params, self.param_shardings)

  def check_batch_size(self, batch_size: int) -> None:
    partitioning.check_batch_size(batch_size, self.mesh, self.rules)

  def predict_batch(self, params: PyTree, encoder_input_tokens: np.ndarray) -> np.ndarray:
    """Decoded ids (B, max_decode_length), 0 after EOS."""
    return np.asarray(self._generate(params, encoder_input_tokens).tokens)

  def score_batch(self, params: PyTree, batch: Mapping[str, np.ndarray]) -> np.ndarray:
    """Each row's log-likelihood of its decoder_target_tokens (B,)."""
    return np.asarray(self._score(params, dict(batch)))

  def lower_predict(self, params: PyTree, encoder_input_tokens: np.ndarray):
    """The compiled decoding's lowering (memory analysis, tests)."""
    return self._generate.lower(params, encoder_input_tokens)
