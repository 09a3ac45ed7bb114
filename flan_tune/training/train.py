"""The training loop: T5X's train.py for this project, configured entirely by gin.

`train(model_dir, train_steps=...)` builds the mesh, the model (from the gin-bound
T5Config), the optimizer and the sharded state; resumes from the latest complete
checkpoint in MODEL_DIR (state and data position together) or starts fresh; then runs
the compiled step until `train_steps` optimizer updates have been applied in total.

Every step's metrics are fetched (the loss must be checked for NaN before the next save
anyway) and appended as one JSON line to MODEL_DIR/train_metrics.jsonl. A resumed run
appends to the same file, so steps after the last checkpoint of an interrupted run may
appear twice; the later line is the one the final state descends from.

SIGTERM (a preempted or cancelled job) sets a flag; the loop saves at the next step
boundary and returns normally, so the process exits 0 and a rerun resumes there.
"""

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import gin
import jax
import numpy as np
import optax

from flan_tune.errors import FlanTuneError
from flan_tune.model import network
from flan_tune.model.config import T5Config
from flan_tune.training import checkpoints, optimizers, partitioning, train_state, trainer
from flan_tune.training.input_pipeline import DataIterator, TrainInput

METRICS_FILE = "train_metrics.jsonl"


class _StopRequest:
  """Set by SIGTERM; read by the loop at step boundaries (a handler must not save)."""

  def __init__(self):
    self.requested = False

  def __call__(self, signum, frame):
    del frame
    logging.warning("received signal %d; saving at the next step boundary", signum)
    self.requested = True


@contextlib.contextmanager
def _handle_sigterm() -> Iterator[_StopRequest]:
  """Installs the flag-setting SIGTERM handler for the loop's duration, then restores
  the previous one. Signals can only be handled in the main thread; elsewhere (e.g. a
  thread in a test) the loop simply runs without it."""
  stop = _StopRequest()
  if threading.current_thread() is not threading.main_thread():
    yield stop
    return
  previous = signal.signal(signal.SIGTERM, stop)
  try:
    yield stop
  finally:
    signal.signal(signal.SIGTERM, previous)


def _scalars(metrics) -> dict[str, float]:
  return {name: float(np.asarray(value)) for name, value in metrics.items()}


class _Progress:
  """A console line every `every` steps: rates are over the steps since the last line."""

  def __init__(self, every: int, first_step: int):
    self.every = every
    self._step, self._time, self._tokens = first_step, time.perf_counter(), 0.0

  def update(self, step: int, metrics: dict[str, float]) -> None:
    self._tokens += metrics.get("num_tokens", 0.0)
    if self.every < 1 or step % self.every:
      return
    now = time.perf_counter()
    elapsed = max(now - self._time, 1e-9)
    line = (f"step {step}: {(step - self._step) / elapsed:.2f} steps/s, "
            f"{self._tokens / elapsed:.0f} target tokens/s, loss {metrics['loss']:.4f}")
    if "learning_rate" in metrics:
      line += f", learning rate {metrics['learning_rate']:.3g}"
    print(line, flush=True)
    self._step, self._time, self._tokens = step, now, 0.0


@gin.configurable
def train(model_dir: str = gin.REQUIRED, *,
          train_steps: int = gin.REQUIRED,
          learning_rate_schedule: optax.Schedule = gin.REQUIRED,
          optimizer: Callable[..., optax.GradientTransformation] = optimizers.adafactor,
          train_input: TrainInput | None = None,
          mesh_config: partitioning.MeshConfig | None = None,
          checkpoint_config: checkpoints.CheckpointConfig | None = None,
          seed: int = 0,
          num_microbatches: int = 1,
          z_loss: float = 1e-4,
          loss_normalization: str = "tokens",
          log_every: int = 10) -> train_state.TrainState:
  """Trains until the state has `train_steps` updates; returns the final state.

  `optimizer` is a factory taking `learning_rate_schedule` (gin: `@adafactor`, not
  `@adafactor()`), so the step can report the rate each update used. The configs left
  as None are built from their gin bindings (TrainInput.*, MeshConfig.*, ...)."""
  if train_steps < 0:
    raise FlanTuneError(f"train.train_steps={train_steps} must be >= 0")
  train_input = train_input or TrainInput()
  mesh_config = mesh_config or partitioning.MeshConfig()
  checkpoint_config = checkpoint_config or checkpoints.CheckpointConfig()
  os.makedirs(model_dir, exist_ok=True)

  mesh = mesh_config.make_mesh()
  rules = mesh_config.axis_rules()
  partitioning.check_batch_size(train_input.batch_size, mesh, rules)
  # Built before the model: an unknown mixture fails here, in seconds.
  data = DataIterator(train_input, jax.process_index(), jax.process_count())
  checkpointer = None
  try:
    model = network.T5(T5Config())
    tx = optimizer(learning_rate_schedule=learning_rate_schedule)
    shardings = train_state.state_shardings(mesh, rules, model, tx)
    checkpointer = checkpoints.Checkpointer(model_dir, checkpoint_config)
    if checkpointer.latest_step() is None:
      state = train_state.create(model, tx, jax.random.key(seed), shardings)
    else:
      target = checkpoints.abstract_like(train_state.abstract_state(model, tx), shardings)
      state, data_state = checkpointer.restore(target)
      data.restore(data_state)
    step = int(state.step)
    logging.info("training from step %d to %d in %s", step, train_steps, model_dir)
    step_fn = trainer.compile_train_step(
        trainer.make_train_step(model, tx, z_loss=z_loss, normalization=loss_normalization,
                                num_microbatches=num_microbatches,
                                learning_rate_schedule=learning_rate_schedule),
        mesh, rules, shardings, partitioning.batch_sharding(mesh, rules))
    state = _run_loop(state, step, train_steps, step_fn, data, checkpointer, mesh, rules,
                      dropout_rng=jax.random.fold_in(jax.random.key(seed), 1),
                      model_dir=model_dir, log_every=log_every)
  finally:
    if checkpointer is not None:
      checkpointer.close()  # waits for saves in flight, also when a step failed
    # A live tf.data iterator over an infinite stream can block interpreter exit.
    del data
  return state


def _run_loop(state, step, train_steps, step_fn, data, checkpointer, mesh, rules, *,
              dropout_rng, model_dir, log_every):
  """Steps, metrics, checkpoints; returns at train_steps or after a SIGTERM save."""
  batch_sharding = partitioning.batch_sharding(mesh, rules)
  progress = _Progress(log_every, step)
  last_saved = step
  writer = (open(os.path.join(model_dir, METRICS_FILE), "a")
            if jax.process_index() == 0 else None)
  try:
    with _handle_sigterm() as stop:
      while step < train_steps and not stop.requested:
        batch = partitioning.make_global_batch(next(data), mesh, batch_sharding)
        state, metrics = step_fn(state, batch, dropout_rng)
        step += 1
        metrics = _scalars(jax.device_get(metrics))
        trainer.check_finite(metrics, step)  # before saving: the last save stays good
        if writer is not None:
          writer.write(json.dumps({"step": step, **metrics}) + "\n")
          writer.flush()
        progress.update(step, metrics)
        if checkpointer.save(step, state, data.state()):
          last_saved = step
      if stop.requested:
        print(f"stopping at step {step} on SIGTERM", flush=True)
      if step != last_saved:
        checkpointer.save(step, state, data.state(), force=True)
  finally:
    if writer is not None:
      writer.close()
  return state
