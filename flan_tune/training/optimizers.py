"""Gin-configurable optimizers and learning-rate schedules (T5X defaults).

Each factory returns an `optax.GradientTransformation`; `max_grad_norm` chains a global-norm
clip in front, so the optimizer sees the clipped gradient (T5X's
`global_norm_clip_threshold`). Schedules are `optax.Schedule`s of the step number.
"""

import gin
import jax.numpy as jnp
import optax


@gin.configurable
def constant_schedule(learning_rate: float = 1e-3) -> optax.Schedule:
  """T5's fine-tuning default (1e-3; Flan-T5 used 5e-4)."""
  return optax.constant_schedule(learning_rate)


@gin.configurable
def rsqrt_schedule(base_learning_rate: float = 1.0, warmup_steps: int = 10_000
                   ) -> optax.Schedule:
  """T5X's pretraining schedule: base / sqrt(max(step, warmup_steps)), flat during warmup."""
  floor = max(warmup_steps, 1)  # step 0 with no warmup would divide by zero

  def schedule(step):
    return base_learning_rate * jnp.sqrt(1.0 / jnp.maximum(step, floor).astype(jnp.float32))
  return schedule


@gin.configurable
def linear_warmup_linear_decay(peak_learning_rate: float = 1e-3, warmup_steps: int = 1000,
                               total_steps: int = 100_000, end_learning_rate: float = 0.0
                               ) -> optax.Schedule:
  """0 -> peak over warmup_steps, then linearly to end_learning_rate at total_steps."""
  return optax.join_schedules(
      [optax.linear_schedule(0.0, peak_learning_rate, warmup_steps),
       optax.linear_schedule(peak_learning_rate, end_learning_rate,
                             max(total_steps - warmup_steps, 1))],
      boundaries=[warmup_steps])


@gin.configurable
def linear_warmup_cosine_decay(peak_learning_rate: float = 1e-3, warmup_steps: int = 1000,
                               total_steps: int = 100_000, end_learning_rate: float = 0.0
                               ) -> optax.Schedule:
  """0 -> peak over warmup_steps, then a half cosine to end_learning_rate at total_steps."""
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=peak_learning_rate, warmup_steps=warmup_steps,
      decay_steps=max(total_steps, warmup_steps + 1), end_value=end_learning_rate)


def with_gradient_clipping(tx: optax.GradientTransformation,
                           max_grad_norm: float | None) -> optax.GradientTransformation:
  """Clips the gradient to `max_grad_norm` global L2 norm before `tx` sees it."""
  if max_grad_norm is None:
    return tx
  if max_grad_norm <= 0:
    raise ValueError(f"max_grad_norm must be positive, got {max_grad_norm}")
  return optax.chain(optax.clip_by_global_norm(max_grad_norm), tx)


@gin.configurable
def adafactor(learning_rate_schedule: optax.ScalarOrSchedule,
              min_dim_size_to_factor: int = 128,
              decay_rate: float = 0.8,
              step_offset: int = 0,
              multiply_by_parameter_scale: bool = True,
              clipping_threshold: float | None = 1.0,
              momentum: float | None = None,
              epsilon1: float = 1e-30,
              weight_decay_rate: float | None = None,
              max_grad_norm: float | None = None) -> optax.GradientTransformation:
  """`optax.adafactor` with T5X's defaults and T5X's argument names.

  Mapping: epsilon1 -> eps, step_offset -> decay_offset, momentum (T5X beta1); the rest
  keep their names. T5X's epsilon2 (floor of the parameter scale) is optax's fixed 1e-3.
  Second-moment decay is 1 - (step - step_offset + 1)**-decay_rate in both, and both apply
  update clipping, then learning rate * max(1e-3, rms(param)), then momentum and
  (not learning-rate-scaled) weight decay, in that order.

  Differences from T5X's Adafactor, none of which apply to float32, unscanned parameters
  (the default here):
  - Factoring: optax always uses the heuristic (the two largest dims, both >= 128).
    T5X with logical factor rules marks a scanned model's `layers` axis as a batch axis,
    so there the update-clipping RMS and parameter scale are per layer; optax computes
    them over the whole stacked (layers, ...) array.
  - Precision: T5X keeps v_row/v_col/v in float32 and computes in float32; optax keeps
    them in the parameter dtype (keep master parameters in float32).
  - T5X's max_parameter_scale, skip_nan_updates and weight_decay_rate_lr_exponent have no
    equivalent.
  """
  tx = optax.adafactor(
      learning_rate=learning_rate_schedule,
      min_dim_size_to_factor=min_dim_size_to_factor,
      decay_rate=decay_rate,
      decay_offset=step_offset,
      multiply_by_parameter_scale=multiply_by_parameter_scale,
      clipping_threshold=clipping_threshold,
      momentum=momentum,
      weight_decay_rate=weight_decay_rate,
      eps=epsilon1)
  return with_gradient_clipping(tx, max_grad_norm)


def planned(name: str | None = None) -> optax.GradientTransformation:
  """The optimizer a run would build, for planning memory: `name` ("adafactor", "adamw"),
  else gin's `train.optimizer` (its own bindings apply), else Adafactor. The schedule
  does not change the state's shapes, so it is a constant one."""
  factory = {"adafactor": adafactor, "adamw": adamw}.get(name)
  if factory is None:
    try:
      bound = gin.query_parameter("train.optimizer")
    except ValueError:
      bound = adafactor
    factory = (bound.scoped_configurable_fn
               if isinstance(bound, gin.config.ConfigurableReference) else bound)
  return factory(learning_rate_schedule=constant_schedule())


@gin.configurable
def adamw(learning_rate_schedule: optax.ScalarOrSchedule,
          b1: float = 0.9,
          b2: float = 0.999,
          eps: float = 1e-8,
          weight_decay: float = 0.01,
          weight_decay_mask=None,
          max_grad_norm: float | None = None) -> optax.GradientTransformation:
  """`optax.adamw`: decoupled weight decay, scaled by the learning rate.

  `weight_decay_mask` (a tree of bools or a function of the params) limits the decay,
  e.g. to leave layer-norm scales alone; by default every parameter decays.
  """
  tx = optax.adamw(learning_rate_schedule, b1=b1, b2=b2, eps=eps,
                   weight_decay=weight_decay, mask=weight_decay_mask)
  return with_gradient_clipping(tx, max_grad_norm)
