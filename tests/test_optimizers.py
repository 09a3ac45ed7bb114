"""Schedules, Adafactor/AdamW behaviour and their gin bindings."""

import math

import gin
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from flan_tune.training import optimizers


@pytest.fixture
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _values(schedule, steps):
  return [float(schedule(jnp.asarray(step))) for step in steps]


def test_constant_schedule():
  np.testing.assert_allclose(_values(optimizers.constant_schedule(5e-4), [0, 7, 10**6]),
                             [5e-4] * 3)


def test_rsqrt_schedule_is_flat_during_warmup_then_decays():
  schedule = optimizers.rsqrt_schedule(base_learning_rate=1.0, warmup_steps=10_000)
  np.testing.assert_allclose(_values(schedule, [0, 5000, 10_000, 40_000, 1_000_000]),
                             [0.01, 0.01, 0.01, 0.005, 0.001], rtol=1e-6)


def test_linear_warmup_linear_decay():
  schedule = optimizers.linear_warmup_linear_decay(1.0, warmup_steps=10, total_steps=110,
                                                   end_learning_rate=0.0)
  np.testing.assert_allclose(_values(schedule, [0, 5, 10, 60, 110, 200]),
                             [0.0, 0.5, 1.0, 0.5, 0.0, 0.0], atol=1e-6)


def test_linear_warmup_cosine_decay():
  schedule = optimizers.linear_warmup_cosine_decay(2.0, warmup_steps=10, total_steps=110,
                                                   end_learning_rate=0.0)
  want = [0.0, 1.0, 2.0, 1.0 + math.cos(math.pi * 0.25), 1.0, 0.0]
  np.testing.assert_allclose(_values(schedule, [0, 5, 10, 35, 60, 110]), want, atol=1e-5)


def _params():
  return {"big": jnp.ones((256, 128)) * 0.5, "thin": jnp.ones((256, 4)) * 0.5,
          "vector": jnp.ones((8,)) * 0.5}


def _states(state, cls):
  return [s for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, cls))
          if isinstance(s, cls)]


def test_adafactor_factors_only_params_with_two_large_dims():
  params = _params()
  (factored,) = _states(optimizers.adafactor(1e-3).init(params), optax.FactoredState)
  assert factored.v_row["big"].shape == (128,) and factored.v_col["big"].shape == (256,)
  assert factored.v["big"].shape == (1,)
  for name in ("thin", "vector"):
    assert factored.v[name].shape == params[name].shape
    assert factored.v_row[name].shape == (1,) and factored.v_col[name].shape == (1,)


def _quadratic(params):
  return sum(jnp.sum(jnp.square(p - 2.0)) for p in jax.tree.leaves(params))


@pytest.mark.parametrize("make", [
    lambda: optimizers.adafactor(optimizers.constant_schedule(0.1)),
    lambda: optimizers.adafactor(0.1, momentum=0.9, max_grad_norm=1.0),
    lambda: optimizers.adamw(optimizers.rsqrt_schedule(0.3, warmup_steps=1), max_grad_norm=1.0),
])
def test_updates_are_finite_and_reduce_a_quadratic(make):
  tx, params = make(), _params()

  @jax.jit
  def step(params, state):
    updates, state = tx.update(jax.grad(_quadratic)(params), state, params)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(u)) for u in jax.tree.leaves(updates)]))
    return optax.apply_updates(params, updates), state, finite

  state = tx.init(params)
  losses = [float(_quadratic(params))]
  for _ in range(5):
    params, state, finite = step(params, state)
    assert bool(finite)
    losses.append(float(_quadratic(params)))
  assert all(after < before for before, after in zip(losses, losses[1:]))


def test_gradient_clipping_bounds_the_global_norm():
  grads = {"a": jnp.full((3,), 10.0), "b": jnp.full((2, 2), -4.0)}
  tx = optimizers.with_gradient_clipping(optax.identity(), 2.0)
  clipped, _ = tx.update(grads, tx.init(grads))
  assert float(optax.global_norm(clipped)) == pytest.approx(2.0, rel=1e-5)
  small = jax.tree.map(lambda g: g * 1e-3, grads)
  kept, _ = tx.update(small, tx.init(grads))
  np.testing.assert_allclose(kept["a"], small["a"])


def test_optimizers_see_the_clipped_gradient():
  params = {"w": jnp.ones((4,)), "m": jnp.ones((3, 3))}
  grads = jax.tree.map(lambda p: 100.0 * jnp.ones_like(p), params)
  limit = 0.5
  # AdamW's first moment after one step is (1 - b1) * gradient.
  tx = optimizers.adamw(1e-3, b1=0.9, max_grad_norm=limit)
  _, state = tx.update(grads, tx.init(params), params)
  (adam,) = _states(state, optax.ScaleByAdamState)
  seen = jax.tree.map(lambda mu: mu / 0.1, adam.mu)
  assert float(optax.global_norm(seen)) == pytest.approx(limit, rel=1e-4)
  # Adafactor's first second moment (decay 0 at step 0) is gradient**2 + epsilon1.
  tx = optimizers.adafactor(1e-3, max_grad_norm=limit)
  _, state = tx.update(grads, tx.init(params), params)
  (factored,) = _states(state, optax.FactoredState)
  seen = jax.tree.map(jnp.sqrt, factored.v)
  assert float(optax.global_norm(seen)) == pytest.approx(limit, rel=1e-4)


def test_adamw_applies_decoupled_weight_decay():
  params = {"w": jnp.array([1.0, -2.0, 4.0])}
  tx = optimizers.adamw(0.1, weight_decay=0.5)
  zero = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zero, tx.init(params), params)
  np.testing.assert_allclose(updates["w"], -0.1 * 0.5 * params["w"], rtol=1e-6)
  no_decay = optimizers.adamw(0.1, weight_decay=0.0)
  updates, _ = no_decay.update(zero, no_decay.init(params), params)
  np.testing.assert_allclose(updates["w"], 0.0)


def test_gin_binds_schedule_and_optimizer_parameters(clean_gin):
  gin.parse_config("""
      rsqrt_schedule.base_learning_rate = 2.0
      rsqrt_schedule.warmup_steps = 100
      adamw.learning_rate_schedule = @rsqrt_schedule()
      adamw.weight_decay = 0.5
  """)
  assert float(optimizers.rsqrt_schedule()(400)) == pytest.approx(0.1)
  params = {"w": jnp.array([1.0, -2.0])}
  tx = optimizers.adamw()
  updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
  np.testing.assert_allclose(updates["w"], -0.2 * 0.5 * params["w"], rtol=1e-6)


def test_gin_configures_adafactor(clean_gin):
  gin.parse_config("""
      adafactor.learning_rate_schedule = @constant_schedule()
      constant_schedule.learning_rate = 0.01
      adafactor.min_dim_size_to_factor = 4
  """)
  params = _params()
  (factored,) = _states(optimizers.adafactor().init(params), optax.FactoredState)
  assert factored.v_row["thin"].shape == (4,) and factored.v_col["thin"].shape == (256,)


def test_adafactor_first_step_matches_hand_computed_t5x_update():
  # Step 0: decay 0, so v = g**2 + eps and y = sign(g) (rms 1, no clipping); the update is
  # -lr * max(1e-3, rms(param)) * sign(g).
  params = {"w": jnp.array([3.0, -4.0]), "tiny": jnp.array([1e-5, 1e-5])}
  grads = {"w": jnp.array([0.5, -2.0]), "tiny": jnp.array([-1.0, 3.0])}
  tx = optimizers.adafactor(0.1)
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates["w"], -0.1 * math.sqrt(12.5) * np.array([1.0, -1.0]),
                             rtol=1e-5)
  np.testing.assert_allclose(updates["tiny"], -0.1 * 1e-3 * np.array([-1.0, 1.0]), rtol=1e-5)


def test_gradient_clipping_arguments():
  tx = optax.identity()
  assert optimizers.with_gradient_clipping(tx, None) is tx
  with pytest.raises(ValueError, match="max_grad_norm"):
    optimizers.with_gradient_clipping(tx, 0.0)
