"""The model behind one interface, T5X's way: `EncoderDecoderModel` has the network's
`loss_fn`, `score_batch` and `predict_batch` as pure functions of (params, batch), and
`ShardedModel` compiles the scoring and decoding once on a device mesh under the
logical-axis rules. Training jits `loss_sums` inside its own step (gradients, microbatches),
evaluation and inference call the compiled pair.

ShardedModel splits the params as training splits them (`partitioning.param_shardings`),
batches over the data axis, and returns results replicated; so a model that needed model
parallelism or FSDP to train scores and decodes on the same mesh.
"""

import dataclasses
import functools
from collections.abc import Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from flan_tune.model import decoding, network
from flan_tune.runtime import features, losses, partitioning

Array = jax.Array
PyTree = object
Batch = Mapping[str, Array]


def model_inputs(batch: Batch) -> dict[str, Array]:
  """The network's keyword arguments from a feature batch."""
  return {name: batch[name] for name in features.MODEL_INPUTS if name in batch}


@dataclasses.dataclass(frozen=True)
class EncoderDecoderModel:
  """A T5 network with its training loss (z-loss and normalization, see `losses`)."""
  network: network.T5
  z_loss: float = 1e-4
  normalization: losses.LossNormalization | str = "tokens"
  fixed_factor: float | None = None

  def __post_init__(self):
    # Validated at construction rather than at the first trace.
    object.__setattr__(self, "normalization", losses.LossNormalization(self.normalization))
    if self.normalization is losses.LossNormalization.FIXED:
      losses.denominator({}, self.normalization, self.fixed_factor)

  def loss_sums(self, params: PyTree, batch: Batch,
                dropout_rng: Array | None = None) -> dict[str, Array]:
    """The batch's summed loss and metric terms (`losses.loss_sums`), dropout on when given
    a key: sums add over microbatches, then `normalize` divides once."""
    logits = self.network.apply({"params": params}, **model_inputs(batch),
                                enable_dropout=dropout_rng is not None,
                                rngs={"dropout": dropout_rng} if dropout_rng is not None else {})
    return losses.loss_sums(logits, batch, self.z_loss, self.normalization)

  def normalize(self, sums: Mapping[str, Array]) -> tuple[Array, dict[str, Array]]:
    """(loss, reported metrics) from summed terms."""
    return losses.normalize(sums, self.normalization, self.fixed_factor)

  def denominator(self, sums: Mapping[str, Array]) -> Array:
    return losses.denominator(sums, self.normalization, self.fixed_factor)

  def loss_fn(self, params: PyTree, batch: Batch,
              dropout_rng: Array | None = None) -> tuple[Array, dict[str, Array]]:
    """One batch's (loss, metrics): loss, z_loss, accuracy, num_tokens, num_examples."""
    return self.normalize(self.loss_sums(params, batch, dropout_rng))

  def score_batch(self, params: PyTree, batch: Batch) -> Array:
    """Each row's log-likelihood of its decoder_target_tokens (B,)."""
    return decoding.score(self.network, params, batch)

  def predict_batch(self, params: PyTree, encoder_input_tokens: Array, *,
                    max_decode_length: int, **decoding_options) -> Array:
    """Decoded ids (B, max_decode_length), 0 after EOS (`decoding.generate`'s options)."""
    return decoding.generate(self.network, params, encoder_input_tokens,
                             max_decode_length=max_decode_length, **decoding_options).tokens


class ShardedModel:
  """`score_batch` and `predict_batch` of a T5 on `mesh` (default: every device, data
  parallel). Decoding options are fixed here, so each compiles once per batch shape."""

  def __init__(self, model: EncoderDecoderModel, max_decode_length: int,
               mesh: Mesh | None = None, rules: partitioning.Rules | None = None,
               **decoding_options):
    self.model = model
    self.mesh = mesh or partitioning.MeshConfig().make_mesh()
    self.rules = rules or partitioning.STANDARD_RULES
    self.param_shardings = partitioning.param_shardings(
        self.mesh, self.rules, network.abstract_variables(model.network)["params"])
    self._predict = self._compile(functools.partial(
        model.predict_batch, max_decode_length=max_decode_length, **decoding_options))
    self._score = self._compile(model.score_batch)

  def _compile(self, fn):
    """fn(params, batch) jitted: params as trained, rows over "data", results replicated."""
    rows = partitioning.batch_sharding(self.mesh, self.rules)
    return partitioning.run_in(self.mesh, self.rules, jax.jit(
        fn, in_shardings=(self.param_shardings, rows),
        out_shardings=NamedSharding(self.mesh, P())))

  def place(self, params: PyTree) -> PyTree:
    """Host params onto the mesh, each device receiving only its shards."""
    return partitioning.shard_params(params, self.param_shardings)

  def check_batch_size(self, batch_size: int) -> None:
    partitioning.check_batch_size(batch_size, self.mesh, self.rules)

  def predict_batch(self, params: PyTree, encoder_input_tokens: np.ndarray) -> np.ndarray:
    """Decoded ids (B, max_decode_length), 0 after EOS."""
    return np.asarray(self._predict(params, encoder_input_tokens))

  def score_batch(self, params: PyTree, batch: Mapping[str, np.ndarray]) -> np.ndarray:
    """Each row's log-likelihood of its decoder_target_tokens (B,)."""
    return np.asarray(self._score(params, dict(batch)))

  def lower_predict(self, params: PyTree, encoder_input_tokens: np.ndarray):
    """The compiled decoding's lowering (memory analysis, tests)."""
    return self._predict.lower(params, encoder_input_tokens)
