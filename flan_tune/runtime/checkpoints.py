"""Training checkpoints: the train state and the data position, saved together by Orbax.

One `ocp.CheckpointManager` with two items per step: "state" (the train-state pytree,
written shard by shard from every process) and "data" (the input iterator's JSON
position), so a resumed run sees exactly the batches an uninterrupted one would.

Torn saves: Orbax 0.12 writes each step into `<step>.orbax-checkpoint-tmp-<time>`, adds
`commit_success.txt`, and renames it to `<step>` once every item is written; its step
listing skips the temporary name. But on a local or POSIX file system it accepts any
`<step>` directory, marker or not (one left by a copy, an older tool or an object store's
half-written save). So a step counts here only with its marker: unmarked step
directories are set aside as `<step>.incomplete-<n>` when the Checkpointer opens, before
Orbax can list, restore or garbage-collect around them (tests simulate both cases).
"""

import dataclasses
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Mapping
from typing import Any

import gin
import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from etils import epath

from flan_tune.errors import CheckpointError
from flan_tune.model import checkpoint

PyTree = Any
STATE, DATA = "state", "data"
COMMIT_MARKER = "commit_success.txt"


@gin.configurable
@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
  """How often to save (in steps), how many steps to keep, and whether saves run in
  the background while training continues."""

  save_interval_steps: int = 1000
  max_to_keep: int | None = 3
  async_save: bool = True

  def __post_init__(self):
    if self.save_interval_steps < 1:
      raise CheckpointError(f"CheckpointConfig.save_interval_steps="
                            f"{self.save_interval_steps} must be >= 1")
    if self.max_to_keep is not None and self.max_to_keep < 1:
      raise CheckpointError(f"CheckpointConfig.max_to_keep={self.max_to_keep} must be >= 1 "
                            "or None (keep all)")


class Checkpointer:
  """Saves and restores (train state, data state) under `model_dir/checkpoints`."""

  def __init__(self, model_dir: str | epath.Path, config: CheckpointConfig = CheckpointConfig()):
    # Orbax refuses relative local paths (mid-save, after the first steps): make it absolute.
    local = "://" not in str(model_dir)
    self.directory = epath.Path(os.path.abspath(model_dir) if local else model_dir) / "checkpoints"
    self.config = config
    if jax.process_index() == 0:
      set_aside_incomplete_steps(self.directory)
    if jax.process_count() > 1:  # no process may list steps before they are set aside
      multihost_utils.sync_global_devices("flan_tune: incomplete checkpoints set aside")
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=config.save_interval_steps, max_to_keep=config.max_to_keep,
        enable_async_checkpointing=config.async_save, create=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_names=(STATE, DATA))

  def save(self, step: int, state: PyTree, data_state: Mapping[str, Any],
           force: bool = False) -> bool:
    """Saves if `step` is on the interval (or `force`); True if a save started.

    With async saves this returns once the arrays are copied off the devices; the
    state may then be donated or updated."""
    return self._manager.save(
        step, args=ocp.args.Composite(**{STATE: ocp.args.StandardSave(state),
                                         DATA: ocp.args.JsonSave(dict(data_state))}),
        force=force)

  def should_save(self, step: int) -> bool:
    """Whether `save(step, ...)` would save: callers build the data state only then (it
    gathers every host's data position)."""
    return self._manager.should_save(step)

  def all_steps(self) -> list[int]:
    """Complete steps on disk, oldest first (unfinished saves are not listed)."""
    self._manager.reload()
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    steps = self.all_steps()
    return steps[-1] if steps else None

  def restore(self, abstract_state: PyTree, step: int | None = None) -> tuple[PyTree, dict]:
    """(state, data_state) of `step` (default: the latest complete one that reads).

    `abstract_state` is a pytree of `jax.ShapeDtypeStruct`s whose shardings say where
    each array goes, so a checkpoint written on one mesh restores onto another; see
    `abstract_like`. Without `step`, a newest step that cannot be read (a file truncated
    or corrupted after its commit) is set aside, renamed, and the one before is tried."""
    self.wait()
    if step is not None:
      if step not in self.all_steps():
        raise CheckpointError(f"step {step} is not a complete checkpoint in {self.directory} "
                              f"(complete: {self.all_steps()})")
      return self._restore(step, abstract_state)
    _ignore_late_read_callbacks()
    while (step := self.latest_step()) is not None:
      try:
        restored, error = self._restore(step, abstract_state), None
      except Exception as e:  # pylint: disable=broad-except  (any way a step fails to read)
        restored, error = None, e
      if not _any_process(error is not None):
        return restored
      set_aside_unreadable(self.directory, step,
                           error or CheckpointError("another process could not read it"))
    raise CheckpointError(f"no readable checkpoint left in {self.directory} (unreadable "
                          "steps are set aside as <step>.unreadable-<n>)")

  def _restore(self, step: int, abstract_state: PyTree) -> tuple[PyTree, dict]:
    restored = self._manager.restore(
        step, args=ocp.args.Composite(**{STATE: ocp.args.StandardRestore(abstract_state),
                                         DATA: ocp.args.JsonRestore()}))
    return restored[STATE], dict(restored[DATA])

  def wait(self) -> None:
    """Blocks until a background save has committed."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    """Waits for pending saves and releases Orbax's threads."""
    self._manager.close()

  def __enter__(self) -> "Checkpointer":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def _any_process(failed: bool) -> bool:
  """Whether any process failed to read the step (all must agree to set it aside)."""
  if jax.process_count() == 1:
    return failed
  return bool(multihost_utils.process_allgather(np.int32(failed)).any())


def _ignore_late_read_callbacks() -> None:
  """A failed restore leaves TensorStore reads in flight: their callbacks land on Orbax's
  closed event loop ("Event loop is closed") and their Orbax coroutines and tasks are
  collected with the same read error, each printed as an unraisable exception or an
  asyncio log record: thousands of lines for one bad file. Those alone are dropped, from
  the first restore that may fall back."""
  previous = sys.unraisablehook
  if getattr(previous, "flan_tune_filter", False):
    return
  logging.getLogger("asyncio").addFilter(lambda record: not _orbax_leftover(record))

  def hook(unraisable):
    code = getattr(unraisable.object, "cr_code", None)
    late_read = code is not None and f"{os.sep}orbax{os.sep}" in code.co_filename
    closed_loop = (isinstance(unraisable.exc_value, RuntimeError) and
                   str(unraisable.exc_value) == "Event loop is closed")
    if not (late_read or closed_loop):
      previous(unraisable)

  hook.flan_tune_filter = True
  sys.unraisablehook = hook


def _orbax_leftover(record: logging.LogRecord) -> bool:
  """An asyncio "... exception was never retrieved" record about an Orbax read."""
  if "exception was never retrieved" not in str(record.msg):
    return False
  orbax = f"{os.sep}orbax{os.sep}"
  frames = traceback.extract_tb(record.exc_info[2]) if record.exc_info else []
  return orbax in record.getMessage() or any(orbax in f.filename for f in frames)


def _root_cause(error: BaseException) -> BaseException:
  while error.__cause__ is not None or error.__context__ is not None:
    error = error.__cause__ or error.__context__
  return error


def describe_failure(step_directory: epath.Path, error: BaseException) -> str:
  """The file at fault and the first line of the underlying error (TensorStore's names
  the array and the file): a file of the step the error names, else the first JSON file
  of the step that does not parse, else the step."""
  root = _root_cause(error)
  message = (str(root).strip().splitlines() or [type(root).__name__])[0][:400]
  step_directory = epath.Path(step_directory)
  for match in re.findall(r"[\w./-]+", message):
    candidate = epath.Path(match) if match.startswith("/") else step_directory / match
    if str(candidate).startswith(str(step_directory)) and candidate.is_file():
      return f"{candidate}: {message}"
  for path in _metadata_files(step_directory):
    try:
      json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
      return f"{path}: {message}"
  return f"{step_directory}: {message}"


def _metadata_files(directory: epath.Path, depth: int = 3):
  """The JSON files Orbax writes in a step (`_METADATA`, `_sharding`, `metadata`,
  `array_metadatas/*`, ...), walked without recursive globs (object stores lack them)."""
  for path in sorted(directory.iterdir()):
    if path.is_dir() and depth > 1:
      yield from _metadata_files(path, depth - 1)
    elif path.is_file() and (path.name.startswith("_") or path.name == "metadata" or
                             path.parent.name == "array_metadatas"):
      yield path


def set_aside_unreadable(directory: epath.Path, step: int, error: BaseException) -> str:
  """Renames an unreadable step to `<step>.unreadable-<n>` (process 0; every process
  waits for it) and says so in one line; returns the new name."""
  step_directory = epath.Path(directory) / str(step)
  target = step_directory
  if jax.process_index() == 0:
    where = describe_failure(step_directory, error)
    suffix = 0
    while (target := epath.Path(directory) / f"{step}.unreadable-{suffix}").exists():
      suffix += 1
    step_directory.rename(target)
    logging.error("checkpoint step %d cannot be read (%s); set aside as %s, using the step "
                  "before it", step, where, target.name)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(f"flan_tune: step {step} set aside")
  return target.name


def complete_step_directory(path: str | epath.Path) -> epath.Path:
  """A training run's latest complete step directory (`path` is MODEL_DIR or
  MODEL_DIR/checkpoints), or `path` itself when it is one complete step directory."""
  path = epath.Path(path)
  if path.name.isdigit():
    if not (path / COMMIT_MARKER).exists():
      raise CheckpointError(f"{path}: an incomplete checkpoint (no {COMMIT_MARKER})")
    return path
  directory = path / "checkpoints" if (path / "checkpoints").is_dir() else path
  steps = sorted(int(p.name) for p in directory.iterdir()
                 if p.name.isdigit() and (p / COMMIT_MARKER).exists())
  if not steps:
    raise CheckpointError(f"{path}: no complete training checkpoint")
  return directory / str(steps[-1])


def restore_params(step_directory: epath.Path, abstract_params: PyTree,
                   sharded: bool = False) -> PyTree:
  """Only the params of a saved train state (the optimizer state is not read): host
  numpy arrays shaped like `abstract_params`, or with `sharded`, arrays placed by the
  shardings `abstract_params` carry (each process reads only its pieces)."""
  _ignore_late_read_callbacks()
  restore = checkpoint.restore_sharded if sharded else checkpoint.restore_on_host
  try:
    return restore(epath.Path(step_directory) / STATE, {"params": abstract_params},
                   partial=True)["params"]
  except Exception as e:  # pylint: disable=broad-except  (Orbax raises bare Exceptions)
    raise CheckpointError(f"{step_directory}: cannot restore its params: "
                          f"{describe_failure(step_directory, e)}") from e


def restore_latest_params(path: str | epath.Path, abstract_params: PyTree,
                          sharded: bool = False) -> tuple:
  """(step directory, params) of a run's newest step that reads (see `restore_params`);
  unreadable steps are set aside as `Checkpointer.restore` does. A step directory given
  itself is read or fails."""
  while True:
    step_directory = complete_step_directory(path)
    try:
      return step_directory, restore_params(step_directory, abstract_params, sharded)
    except CheckpointError as e:
      if epath.Path(path).name.isdigit():
        raise
      set_aside_unreadable(step_directory.parent, int(step_directory.name), e)


def set_aside_incomplete_steps(directory: epath.Path) -> list[str]:
  """Renames `<step>` directories without Orbax's commit marker so no listing sees them."""
  if not directory.exists():
    return []
  moved = []
  for path in sorted(directory.iterdir()):
    if path.is_dir() and path.name.isdigit() and not (path / COMMIT_MARKER).exists():
      suffix = 0
      while (target := directory / f"{path.name}.incomplete-{suffix}").exists():
        suffix += 1
      path.rename(target)
      moved.append(target.name)
  if moved:
    logging.warning("checkpoints: %s had no %s (a save that never finished); set aside as %s",
                    directory, COMMIT_MARKER, ", ".join(moved))
  return moved


def abstract_like(state: PyTree, shardings: PyTree) -> PyTree:
  """ShapeDtypeStructs of `state` placed by `shardings` (a matching pytree), the target
  that `Checkpointer.restore` takes."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      state, shardings)
