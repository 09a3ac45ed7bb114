"""The training loop: T5X's train.py for this project, configured entirely by gin.

`train(model_dir, train_steps=...)` checks the launch (model, data, mesh), builds the
sharded state, resumes from the latest complete checkpoint in MODEL_DIR (state and data
position together) or starts from an initial checkpoint or random weights, and runs the
compiled step until `train_steps` optimizer updates have been applied in total.

Every step's metrics stay on the devices until the next log step or save, so the host
dispatches steps ahead of the devices; there they are fetched together, each step's loss
checked for NaN/Inf (before a save, so none writes a non-finite state), and reported
(`reporting`: console, MODEL_DIR/train_metrics.jsonl, TensorBoard). A resumed run first
drops logged steps past its checkpoint, so the log reads as one run.

SIGTERM (a preempted or cancelled job) sets a flag; the loop saves after the step it
arrived in (on many hosts: after the step the hosts agree on, one step later) and
returns normally, so the process exits 0 and a rerun resumes there.
"""

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator

import gin
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from flan_tune.errors import FlanTuneError
from flan_tune.mixtures import builder
from flan_tune.model import flops, network, peft as peft_lib
from flan_tune.model.config import T5Config
from flan_tune.runtime import checkpoints, model_setup, partitioning
from flan_tune.runtime.model import EncoderDecoderModel
from flan_tune.training import optimizers, reporting, train_state, trainer
from flan_tune.training.input_pipeline import DataIterator, TrainInput, check_fits_model


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


class _StopAgreement:
  """Whether any process got SIGTERM. All must stop after the same step, or the others
  would wait forever in the next step's collectives; the flags are combined on the
  devices, behind the step just dispatched, and read one step later, so no step waits
  on a host-side collective."""

  def __init__(self, mesh):
    self._previous = None
    if jax.process_count() > 1:
      self._flags = NamedSharding(mesh, P(tuple(mesh.axis_names)))
      self._any = jax.jit(jnp.any, out_shardings=NamedSharding(mesh, P()))

  def stop_after(self, requested: bool) -> bool:
    """Called once a step is dispatched: whether every process stops after it."""
    if jax.process_count() == 1:
      return requested
    previous = self._previous
    local = np.full((jax.local_device_count(),), requested)
    self._previous = self._any(jax.make_array_from_process_local_data(self._flags, local))
    return previous is not None and bool(previous)


class _PendingMetrics:
  """Each step's metrics, left on the devices until `flush`: fetching them every step
  would hold the next step until this one finished. A flush checks each step's loss
  before anything is saved, so no save holds a non-finite state, then reports them."""

  def __init__(self, reporter: reporting.Reporter):
    self.reporter, self._steps = reporter, []

  def add(self, step: int, metrics) -> None:
    self._steps.append((step, metrics))

  def flush(self) -> None:
    fetched = jax.device_get([metrics for _, metrics in self._steps])
    for (step, _), metrics in zip(self._steps, fetched):
      metrics = _scalars(metrics)
      trainer.check_finite(metrics, step)
      self.reporter.update(step, metrics)
    self._steps = []


@gin.configurable
def train(model_dir: str = gin.REQUIRED, *,
          train_steps: int = gin.REQUIRED,
          learning_rate_schedule: optax.Schedule = gin.REQUIRED,
          optimizer: Callable[..., optax.GradientTransformation] = optimizers.adafactor,
          train_input: TrainInput | None = None,
          mesh_config: partitioning.MeshConfig | None = None,
          checkpoint_config: checkpoints.CheckpointConfig | None = None,
          initial_checkpoint_path: str | None = None,
          seed: int = 0,
          num_microbatches: int = 1,
          z_loss: float = 1e-4,
          loss_normalization: str = "tokens",
          log_every: int = 10,
          evaluation=None,
          peak_flops_per_device: float | None = None,
          peft: peft_lib.PeftConfig | None = None) -> train_state.TrainState:
  """Trains until the state has `train_steps` updates; returns the final state.

  `optimizer` is a factory taking `learning_rate_schedule` (gin: `@adafactor`, not
  `@adafactor()`), so the step can report the rate each update used. The configs left
  as None are built from their gin bindings (TrainInput.*, MeshConfig.*, ...).
  `initial_checkpoint_path` (a flan-tune model, a transformers T5 directory or another
  run) gives the architecture and the first weights of a new run; a resumed run
  ignores it.
  `evaluation` (gin: `@EvalDuringTraining()`, flan_tune.evaluation.during_training) is
  started with the model, MODEL_DIR, mesh and rules and called after every step with
  (step, params, final); training knows nothing more of evaluation.
  `peak_flops_per_device` is MFU's denominator; None takes the bfloat16 peak of a known
  TPU or GPU (flops.peak_flops_per_device) and reports no MFU elsewhere.
  `peft` (gin: `@PeftConfig()`, runs/prompt_tuning.gin, runs/lora.gin) trains a soft
  prompt or LoRA adapters on the frozen initial checkpoint instead of every parameter."""
  if train_steps < 0:
    raise FlanTuneError(f"train.train_steps={train_steps} must be >= 0")
  train_input = train_input or TrainInput()
  mesh_config = mesh_config or partitioning.MeshConfig()
  checkpoint_config = checkpoint_config or checkpoints.CheckpointConfig()
  peft = peft or peft_lib.PeftConfig()

  # Everything that can be wrong with the launch fails here, before any work.
  base = _pretrained_model(model_dir, peft, initial_checkpoint_path, train_input)
  config = _model_config(model_dir, initial_checkpoint_path)
  check_fits_model(train_input, config.vocab_size,
                   model_setup.initial_vocabulary_file(initial_checkpoint_path))
  mesh = mesh_config.make_mesh()
  rules = mesh_config.axis_rules()
  partitioning.check_batch_size(train_input.batch_size, mesh, rules)
  data = DataIterator(train_input, jax.process_index(), jax.process_count())
  os.makedirs(model_dir, exist_ok=True)
  checkpointer = None
  try:
    model = EncoderDecoderModel(peft.network(config), z_loss, loss_normalization)
    tx = optimizer(learning_rate_schedule=learning_rate_schedule)
    shapes, shardings = train_state.abstract_state_and_shardings(mesh, rules, model.network,
                                                                 tx, peft)
    checkpointer = checkpoints.Checkpointer(model_dir, checkpoint_config)
    model_setup.write_run_config(model_dir, config)
    if peft.frozen_base:
      model_setup.write_peft(model_dir, peft, base)
    if checkpointer.latest_step() is None:
      state = _first_state(model.network, tx, shardings, peft, base, config, seed, train_input)
    else:
      target = checkpoints.abstract_like(shapes.checkpointed(), shardings.checkpointed())
      state, data_state = checkpointer.restore(target)
      data.restore(data_state)
      if peft.frozen_base:
        state = state.replace(frozen=model_setup.load_initial_params(base, config,
                                                                     shardings.frozen))
    step = int(state.step)
    logging.info("training from step %d to %d in %s", step, train_steps, model_dir)
    step_fn = trainer.compile_train_step(
        trainer.make_train_step(model, tx, num_microbatches=num_microbatches,
                                learning_rate_schedule=learning_rate_schedule),
        mesh, rules, shardings, partitioning.batch_sharding(mesh, rules))
    evaluate = (evaluation.start(model, model_dir, mesh, rules,
                                 train_input.mixture_or_task_name)
                if evaluation is not None else None)
    lengths = train_input.task_feature_lengths
    reporter = reporting.Reporter(
        model_dir, step, train_steps, log_every,
        flops_per_device_step=flops.train_flops(config, train_input.batch_size,
                                                lengths["inputs"], lengths["targets"])
        / jax.device_count(),
        peak_flops_per_device=(peak_flops_per_device
                               or flops.peak_flops_per_device(jax.devices()[0].device_kind)))
    state = _run_loop(state, step, train_steps, step_fn, data, checkpointer, mesh, rules,
                      dropout_rng=jax.random.fold_in(jax.random.key(seed), 1),
                      reporter=reporter, evaluate=evaluate)
  finally:
    if checkpointer is not None:
      checkpointer.close()  # waits for saves in flight, also when a step failed
    data.close()  # stops the input workers
    # A live tf.data iterator over an infinite stream can block interpreter exit.
    del data
  return state


def _pretrained_model(model_dir: str, peft: peft_lib.PeftConfig,
                      initial_checkpoint_path: str | None, train_input: TrainInput
                      ) -> str | None:
  """The checkpoint a run starts from: for parameter-efficient tuning, the one its
  MODEL_DIR recorded (a resumed run) or the initial checkpoint, which must be given."""
  recorded = model_setup.read_peft(model_dir)
  if recorded is not None and recorded[0] != peft:
    raise FlanTuneError(f"{model_dir} was trained with {recorded[0]}; gin now gives {peft}")
  if not peft.frozen_base:
    return initial_checkpoint_path
  if peft.method == "prompt" and train_input.pack:
    raise FlanTuneError("PeftConfig.method='prompt' needs TrainInput.pack=False: a packed row "
                        "would share one prompt among several examples")
  base = recorded[1] if recorded is not None else initial_checkpoint_path
  if not base:
    raise FlanTuneError(f"PeftConfig.method={peft.method!r} tunes a pretrained model: set "
                        "train.initial_checkpoint_path (INITIAL_CHECKPOINT_PATH)")
  return base


def _first_state(model: network.T5, tx, shardings: train_state.TrainState,
                 peft: peft_lib.PeftConfig, base: str | None, config: T5Config, seed: int,
                 train_input: TrainInput) -> train_state.TrainState:
  """Step 0: the initial checkpoint (and the parameters `peft` adds), or random weights."""
  rng = jax.random.key(seed)
  if base is None:
    return train_state.create(model, tx, rng, shardings, peft)
  if not peft.frozen_base:
    params = model_setup.load_initial_params(base, config, shardings.params)
    return train_state.from_params(params, tx, shardings)
  frozen = model_setup.load_initial_params(base, config, shardings.frozen)
  params = train_state.new_parameters(model, frozen, rng, shardings.model_params(), peft)
  if peft.method == "prompt":
    params["encoder"]["prompt"] = _initial_prompt(peft, frozen, rng, train_input,
                                                   shardings.params["encoder"]["prompt"])
  return train_state.from_params(params, tx, shardings, peft)


def _initial_prompt(peft: peft_lib.PeftConfig, frozen, rng, train_input: TrainInput,
                    sharding: NamedSharding) -> jax.Array:
  """The soft prompt's first value (peft.initial_prompt), replicated as `sharding` says."""
  embedding = frozen["token_embedder"]["embedding"]
  gathered = jax.jit(lambda x: x, out_shardings=NamedSharding(sharding.mesh, P()))(embedding)
  vocabulary = None
  if peft.prompt_init == "labels":
    vocabulary = builder.registered_provider(
        train_input.mixture_or_task_name,
        "TrainInput.mixture_or_task_name").output_features["inputs"].vocabulary
  prompt = peft_lib.initial_prompt(peft, np.asarray(gathered), rng, vocabulary)
  return jax.make_array_from_callback(prompt.shape, sharding, lambda index: prompt[index])


def _model_config(model_dir: str, initial_checkpoint_path: str | None) -> T5Config:
  """gin's T5Config, reconciled with the config MODEL_DIR's run started with (when
  resuming) or with the initial checkpoint's."""
  recorded = model_setup.read_run_config(model_dir)
  if recorded is not None:
    base = recorded
    source = f"{os.path.join(model_dir, model_setup.RUN_CONFIG_FILE)} (this run's model)"
  elif initial_checkpoint_path:
    base = model_setup.initial_config(initial_checkpoint_path)
    source = f"INITIAL_CHECKPOINT_PATH={initial_checkpoint_path!r}"
  else:
    base, source = None, ""
  return model_setup.reconcile(T5Config(), model_setup.gin_bound_fields(), base, source)


def _run_loop(state, step, train_steps, step_fn, data, checkpointer, mesh, rules, *,
              dropout_rng, reporter, evaluate=None):
  """Steps, metrics, checkpoints; returns at train_steps or after a SIGTERM save."""
  batch_sharding = partitioning.batch_sharding(mesh, rules)
  pending, agreement = _PendingMetrics(reporter), _StopAgreement(mesh)
  last_saved = step
  try:
    with _handle_sigterm() as stop:
      while step < train_steps:
        batch = partitioning.make_global_batch(next(data), mesh, batch_sharding)
        state, metrics = step_fn(state, batch, dropout_rng)
        step += 1
        pending.add(step, metrics)
        stopping = agreement.stop_after(stop.requested)
        saving = checkpointer.should_save(step)
        if saving or stopping or step == train_steps or step % max(reporter.every, 1) == 0:
          pending.flush()
        if saving and checkpointer.save(step, state.checkpointed(), data.state()):
          last_saved = step
        if evaluate is not None:  # a save in flight continues in the background
          evaluate(step, state.model_params(), final=step == train_steps)
        if stopping:
          break
      if step < train_steps:
        print(f"stopping at step {step} on SIGTERM", flush=True)
      if step != last_saved:
        checkpointer.save(step, state.checkpointed(), data.state(), force=True)
  finally:
    reporter.close()
  return state
