"""What a training run reports: a console progress line, a JSON-lines log, TensorBoard.

All three are written by process 0 only. The JSON log and TensorBoard scalars hold every
step's metrics; the console line and the throughput scalars come every `every` steps,
with rates over the steps since the previous line (so compilation shows once, then
steady-state figures). Given the model FLOPs of a step (flan_tune.model.flops), the line
also shows model TFLOP/s per device and, given the devices' peak, MFU: the figure that
says how much of the hardware the run uses.

MODEL_DIR/train_metrics.jsonl    one {"step": n, ...metrics} per line
MODEL_DIR/tensorboard/train/     TensorBoard event files (tensorboard --logdir MODEL_DIR)
"""

import datetime
import json
import os
import time

import jax

METRICS_FILE = "train_metrics.jsonl"
TENSORBOARD_DIR = os.path.join("tensorboard", "train")
_BAR_WIDTH = 20


def read_metrics(model_dir: str) -> list[dict]:
  """The rows of MODEL_DIR's metrics log, oldest first."""
  path = os.path.join(model_dir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def _truncate_after(path: str, step: int) -> None:
  """Drops rows past `step`: a run killed after its last checkpoint logged steps that the
  resumed run is about to compute again."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    kept = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
  with open(path, "w") as f:
    f.writelines(kept)


def format_duration(seconds: float) -> str:
  return str(datetime.timedelta(seconds=round(max(seconds, 0))))


class Reporter:
  """Receives each step's scalar metrics; `close()` flushes everything."""

  def __init__(self, model_dir: str, first_step: int, train_steps: int, every: int = 10, *,
               flops_per_device_step: float | None = None,
               peak_flops_per_device: float | None = None):
    self.every = every
    self.train_steps = train_steps
    self.flops_per_device_step = flops_per_device_step
    self.peak_flops_per_device = peak_flops_per_device
    self._step, self._time, self._tokens = first_step, time.perf_counter(), 0.0
    self._log = self._tensorboard = None
    if jax.process_index() != 0:
      return
    path = os.path.join(model_dir, METRICS_FILE)
    _truncate_after(path, first_step)
    self._log = open(path, "a")
    from clu import metric_writers  # TensorFlow's summary ops; only process 0 needs them

    self._tensorboard = metric_writers.SummaryWriter(os.path.join(model_dir, TENSORBOARD_DIR))

  def update(self, step: int, metrics: dict[str, float]) -> None:
    self._tokens += metrics.get("num_tokens", 0.0)
    if self._log is not None:
      self._log.write(json.dumps({"step": step, **metrics}) + "\n")
      self._log.flush()
      self._tensorboard.write_scalars(step, metrics)
    if self.every < 1 or step % self.every and step != self.train_steps:
      return
    now = time.perf_counter()
    elapsed = max(now - self._time, 1e-9)
    steps_per_s = (step - self._step) / elapsed
    tokens_per_s = self._tokens / elapsed
    rates = {"steps_per_second": steps_per_s, "target_tokens_per_second": tokens_per_s,
             **self._utilization(steps_per_s)}
    if self._log is not None:
      self._tensorboard.write_scalars(step, rates)
      self._tensorboard.flush()
      print(self._line(step, metrics, rates), flush=True)
    self._step, self._time, self._tokens = step, now, 0.0

  def _utilization(self, steps_per_s: float) -> dict[str, float]:
    if not self.flops_per_device_step:
      return {}
    achieved = self.flops_per_device_step * steps_per_s
    rates = {"model_flops_per_second_per_device": achieved}
    if self.peak_flops_per_device:
      rates["mfu"] = achieved / self.peak_flops_per_device
    return rates

  def _line(self, step, metrics, rates) -> str:
    steps_per_s, tokens_per_s = rates["steps_per_second"], rates["target_tokens_per_second"]
    done = min(step / max(self.train_steps, 1), 1.0)
    filled = round(done * _BAR_WIDTH)
    eta = (self.train_steps - step) / steps_per_s if steps_per_s > 0 else float("inf")
    line = (f"step {step}/{self.train_steps} [{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] "
            f"{steps_per_s:.2f} steps/s, {tokens_per_s:,.0f} target tokens/s, "
            f"loss {metrics['loss']:.4f}")
    if "model_flops_per_second_per_device" in rates:
      line += f", {rates['model_flops_per_second_per_device'] / 1e12:.3g} TFLOP/s/device"
    if "mfu" in rates:
      line += f", MFU {100 * rates['mfu']:.1f}%"
    if "learning_rate" in metrics:
      line += f", learning rate {metrics['learning_rate']:.3g}"
    return line + (f", ETA {format_duration(eta)}" if eta != float("inf") else "")

  def close(self) -> None:
    if self._log is not None:
      self._log.close()
      self._tensorboard.close()
      self._log = self._tensorboard = None
