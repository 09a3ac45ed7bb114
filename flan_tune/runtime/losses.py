"""Cross entropy with z-loss and T5X's loss normalizations, built for exact accumulation.

A batch's loss is `sum(per-token loss * token weight) / denominator`. The normalizations
differ only in the token weights and the denominator:

  tokens    weight = decoder_loss_weights            denominator = number of target tokens
  fixed     weight = decoder_loss_weights            denominator = fixed_factor (a constant)
  sequence  weight = loss weight / example's tokens  denominator = number of examples

Every per-token weight depends only on its own row (packed examples never span rows), so
the numerators and the counts are plain sums over rows. Gradient accumulation is exact if
each microbatch contributes *sums* (`loss_sums`, differentiate its "loss" entry), the
trainer adds the gradients and the sums over microbatches, and divides once by
`denominator(total_sums, ...)` at the end; `normalize` turns the summed metrics into the
reported values. `loss_and_metrics` does all of this for one batch.
"""

import enum
from collections.abc import Mapping

import jax
import jax.numpy as jnp

Array = jax.Array


class LossNormalization(str, enum.Enum):
  """How the summed loss is divided (see the module docstring)."""
  TOKENS = "tokens"
  FIXED = "fixed"
  SEQUENCE = "sequence"


def cross_entropy_with_z_loss(logits: Array, targets: Array, weights: Array | None = None,
                              z_loss: float = 1e-4) -> tuple[Array, Array]:
  """Per-token (cross entropy + z_loss * log(Z)**2, z-loss term), times `weights`.

  T5X's `cross_entropy_with_logits` on integer targets, in float32 whatever the logits'
  dtype: log(Z) = logsumexp(logits); the z-loss keeps log(Z) near 0 so bfloat16 logits
  stay well conditioned. Both outputs have the targets' shape.
  """
  logits = logits.astype(jnp.float32)
  log_z = jax.nn.logsumexp(logits, axis=-1)
  target_logit = jnp.take_along_axis(logits, targets[..., None].astype(jnp.int32), axis=-1)
  z_term = z_loss * jnp.square(log_z)
  loss = log_z - target_logit[..., 0] + z_term
  if weights is not None:
    weights = weights.astype(jnp.float32)
    loss, z_term = loss * weights, z_term * weights
  return loss, z_term


def _segment_ids(batch: Mapping[str, Array], shape: tuple[int, ...]) -> Array:
  """Packed rows carry decoder_segment_ids; an unpacked row is a single example."""
  segments = batch.get("decoder_segment_ids")
  if segments is None:
    return jnp.ones(shape, jnp.int32)
  return segments.astype(jnp.int32)


def example_token_counts(weights: Array, segment_ids: Array) -> Array:
  """(per-token weight total of the token's example, per-example totals), linear in size.

  Examples are (row, segment id) pairs; ids in a row are below its length + 1, so
  row * (length + 1) + id names each example uniquely without an O(length**2) mask.
  """
  rows, length = weights.shape
  example = jnp.arange(rows, dtype=jnp.int32)[:, None] * (length + 1) + segment_ids
  totals = jax.ops.segment_sum(weights.reshape(-1), example.reshape(-1),
                               num_segments=rows * (length + 1))
  return totals[example], totals


def token_weights(batch: Mapping[str, Array],
                  normalization: LossNormalization | str) -> Array:
  """Per-token weights of the summed loss: raw loss weights, or 1/(example's tokens)."""
  weights = batch["decoder_loss_weights"].astype(jnp.float32)
  if LossNormalization(normalization) is not LossNormalization.SEQUENCE:
    return weights
  per_token, _ = example_token_counts(weights, _segment_ids(batch, weights.shape))
  return jnp.where(per_token > 0, weights / jnp.where(per_token > 0, per_token, 1.0), 0.0)


def loss_sums(logits: Array, batch: Mapping[str, Array], z_loss: float = 1e-4,
              normalization: LossNormalization | str = "tokens") -> dict[str, Array]:
  """Additive float32 sums for one (micro)batch; add them across microbatches.

  "loss" and "z_loss" are weighted by `token_weights` (differentiate "loss"); "correct",
  "tokens" (sum of loss weights) and "examples" (examples with a weighted token) count.
  """
  targets = batch["decoder_target_tokens"]
  raw_weights = batch["decoder_loss_weights"].astype(jnp.float32)
  weights = token_weights(batch, normalization)
  loss, z_term = cross_entropy_with_z_loss(logits, targets, weights, z_loss)
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32) * raw_weights
  _, totals = example_token_counts(raw_weights, _segment_ids(batch, raw_weights.shape))
  return {"loss": loss.sum(), "z_loss": z_term.sum(), "correct": correct.sum(),
          "tokens": raw_weights.sum(), "examples": (totals > 0).sum().astype(jnp.float32)}


def denominator(sums: Mapping[str, Array], normalization: LossNormalization | str,
                fixed_factor: float | None = None) -> Array:
  """What the summed loss (and its gradient) is divided by, once, after accumulation."""
  normalization = LossNormalization(normalization)
  if normalization is LossNormalization.FIXED:
    if fixed_factor is None or fixed_factor <= 0:
      raise ValueError(f"'fixed' loss normalization needs a positive fixed_factor, "
                       f"got {fixed_factor}")
    return jnp.asarray(fixed_factor, jnp.float32)
  count = sums["examples" if normalization is LossNormalization.SEQUENCE else "tokens"]
  return jnp.maximum(count, 1.0)  # an all-padding batch gives loss 0, not NaN


def normalize(sums: Mapping[str, Array], normalization: LossNormalization | str,
              fixed_factor: float | None = None) -> tuple[Array, dict[str, Array]]:
  """(scalar loss, metrics) from summed `loss_sums`; accuracy is always per token."""
  divisor = denominator(sums, normalization, fixed_factor)
  loss = sums["loss"] / divisor
  metrics = {"loss": loss, "z_loss": sums["z_loss"] / divisor,
             "accuracy": sums["correct"] / jnp.maximum(sums["tokens"], 1.0),
             "num_tokens": sums["tokens"], "num_examples": sums["examples"]}
  return loss, metrics


def loss_and_metrics(logits: Array, batch: Mapping[str, Array], z_loss: float = 1e-4,
                     normalization: LossNormalization | str = "tokens",
                     fixed_factor: float | None = None) -> tuple[Array, dict[str, Array]]:
  """(scalar loss, metrics) for a whole batch: `normalize(loss_sums(...))`.

  `logits` are T5's (batch, length, vocab); `batch` holds seqio's EncDecFeatureConverter
  features decoder_target_tokens, decoder_loss_weights and, when packed,
  decoder_segment_ids. Metrics: loss, z_loss, accuracy, num_tokens, num_examples.
  """
  return normalize(loss_sums(logits, batch, z_loss, normalization), normalization,
                   fixed_factor)
