"""Losses against a plain numpy reference on tiny arrays."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_tune.runtime import losses

VOCAB = 5


def _np_token_loss(logits, targets, z_loss):
  """Reference: -log softmax[target] + z_loss * logsumexp**2, per token."""
  logits = np.asarray(logits, np.float64)
  peak = logits.max(-1, keepdims=True)
  log_z = (peak + np.log(np.exp(logits - peak).sum(-1, keepdims=True)))[..., 0]
  target_logit = np.take_along_axis(logits, targets[..., None], -1)[..., 0]
  return log_z - target_logit + z_loss * log_z**2, z_loss * log_z**2


def _packed_batch(seed=0):
  """Three rows: two packed (3 and 2 examples) and one unpacked-with-padding."""
  rng = np.random.default_rng(seed)
  segments = np.array([[1, 1, 2, 2, 2, 3, 0, 0],
                       [1, 1, 1, 1, 1, 2, 2, 0],
                       [1, 1, 1, 0, 0, 0, 0, 0]], np.int32)
  weights = (segments > 0).astype(np.float32)
  targets = rng.integers(0, VOCAB, segments.shape).astype(np.int32) * (segments > 0)
  logits = rng.normal(size=segments.shape + (VOCAB,)).astype(np.float32) * 3
  batch = {"decoder_target_tokens": targets, "decoder_loss_weights": weights,
           "decoder_segment_ids": segments}
  return logits, batch


def test_cross_entropy_matches_hand_computed_values():
  logits = np.array([[[0.0, 0.0], [2.0, 0.0]]], np.float32)
  targets = np.array([[0, 1]])
  loss, z_term = losses.cross_entropy_with_z_loss(logits, targets, z_loss=0.0)
  np.testing.assert_allclose(loss, [[np.log(2.0), np.log(1 + np.exp(2.0))]], rtol=1e-6)
  np.testing.assert_allclose(z_term, 0.0)


def test_cross_entropy_z_loss_term_and_weights():
  logits, batch = _packed_batch()
  targets, weights = batch["decoder_target_tokens"], batch["decoder_loss_weights"]
  loss, z_term = losses.cross_entropy_with_z_loss(logits, targets, weights, z_loss=0.1)
  want_loss, want_z = _np_token_loss(logits, targets, 0.1)
  np.testing.assert_allclose(loss, want_loss * weights, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(z_term, want_z * weights, rtol=1e-5, atol=1e-6)
  assert np.all(np.asarray(loss)[weights == 0] == 0)
  assert np.all(np.asarray(z_term)[weights > 0] > 0)


def test_bfloat16_logits_give_float32_loss():
  logits, batch = _packed_batch()
  loss, _ = losses.cross_entropy_with_z_loss(jnp.asarray(logits, jnp.bfloat16),
                                             batch["decoder_target_tokens"])
  assert loss.dtype == jnp.float32


def test_padding_does_not_change_the_loss():
  logits, batch = _packed_batch()
  noisy = logits.copy()
  noisy[batch["decoder_loss_weights"] == 0] = 100.0  # garbage where there is padding
  for normalization in ("tokens", "sequence"):
    clean_loss, _ = losses.loss_and_metrics(logits, batch, 1e-4, normalization)
    noisy_loss, _ = losses.loss_and_metrics(noisy, batch, 1e-4, normalization)
    np.testing.assert_allclose(clean_loss, noisy_loss, rtol=1e-6)


def test_tokens_and_fixed_normalization():
  logits, batch = _packed_batch()
  weights = batch["decoder_loss_weights"]
  token_loss, token_z = _np_token_loss(logits, batch["decoder_target_tokens"], 1e-4)
  total = (token_loss * weights).sum()
  loss, metrics = losses.loss_and_metrics(logits, batch, 1e-4, "tokens")
  np.testing.assert_allclose(loss, total / 16, rtol=1e-5)
  np.testing.assert_allclose(metrics["z_loss"], (token_z * weights).sum() / 16, rtol=1e-5)
  assert metrics["num_tokens"] == 16 and metrics["num_examples"] == 6
  fixed, _ = losses.loss_and_metrics(logits, batch, 1e-4, "fixed", fixed_factor=2048 * 114)
  np.testing.assert_allclose(fixed, total / (2048 * 114), rtol=1e-5)
  with pytest.raises(ValueError, match="fixed_factor"):
    losses.loss_and_metrics(logits, batch, 1e-4, "fixed")


def test_sequence_normalization_is_the_mean_of_example_means():
  logits, batch = _packed_batch()
  token_loss, _ = _np_token_loss(logits, batch["decoder_target_tokens"], 1e-4)
  segments = batch["decoder_segment_ids"]
  example_means = [token_loss[row][segments[row] == seg].mean()
                   for row, seg in [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (2, 1)]]
  loss, metrics = losses.loss_and_metrics(logits, batch, 1e-4, "sequence")
  np.testing.assert_allclose(loss, np.mean(example_means), rtol=1e-5)
  assert metrics["num_examples"] == 6


def test_sequence_normalization_without_segment_ids_averages_rows():
  logits, batch = _packed_batch()
  del batch["decoder_segment_ids"]
  weights = batch["decoder_loss_weights"]
  token_loss, _ = _np_token_loss(logits, batch["decoder_target_tokens"], 1e-4)
  row_means = (token_loss * weights).sum(1) / weights.sum(1)
  loss, metrics = losses.loss_and_metrics(logits, batch, 1e-4, "sequence")
  np.testing.assert_allclose(loss, row_means.mean(), rtol=1e-5)
  assert metrics["num_examples"] == 3


def test_accuracy_counts_only_real_tokens():
  logits = np.zeros((1, 3, VOCAB), np.float32)
  logits[0, :, 2] = 1.0  # predicts token 2 everywhere
  batch = {"decoder_target_tokens": np.array([[2, 1, 2]]),
           "decoder_loss_weights": np.array([[1.0, 1.0, 0.0]])}
  _, metrics = losses.loss_and_metrics(logits, batch)
  np.testing.assert_allclose(metrics["accuracy"], 0.5)


@pytest.mark.parametrize("normalization", ["tokens", "fixed", "sequence"])
def test_microbatch_accumulation_equals_the_full_batch(normalization):
  logits, batch = _packed_batch()
  full_loss, full_metrics = losses.loss_and_metrics(logits, batch, 1e-4, normalization, 64.0)
  parts = [losses.loss_sums(logits[rows], {k: v[rows] for k, v in batch.items()}, 1e-4,
                            normalization) for rows in (slice(0, 1), slice(1, 3))]
  summed = jax.tree.map(lambda *xs: sum(xs), *parts)
  loss, metrics = losses.normalize(summed, normalization, 64.0)
  np.testing.assert_allclose(loss, full_loss, rtol=1e-6)
  for name, value in full_metrics.items():
    np.testing.assert_allclose(metrics[name], value, rtol=1e-6)


@pytest.mark.parametrize("normalization", ["tokens", "sequence"])
def test_accumulated_gradients_equal_the_full_batch_gradient(normalization):
  logits, batch = _packed_batch()

  def full(x):
    return losses.loss_and_metrics(x, batch, 1e-4, normalization)[0]

  def summed(x, rows):
    return losses.loss_sums(x, {k: v[rows] for k, v in batch.items()}, 1e-4,
                            normalization)["loss"]

  want = jax.grad(full)(logits)
  sums = [losses.loss_sums(logits[r], {k: v[r] for k, v in batch.items()}, 1e-4,
                           normalization) for r in (slice(0, 2), slice(2, 3))]
  total = jax.tree.map(lambda *xs: sum(xs), *sums)
  grads = np.concatenate([jax.grad(summed)(logits[r], r) for r in (slice(0, 2), slice(2, 3))])
  np.testing.assert_allclose(grads / losses.denominator(total, normalization), want,
                             rtol=1e-5, atol=1e-7)
