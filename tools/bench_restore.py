"""Host memory of loading a checkpoint onto a sharded mesh, the previous way against
today's, in one run:
- a flan-tune model directory: the whole model read on the host and then placed, against
  Orbax restoring straight into the target shardings;
- a transformers directory (safetensors): the whole model imported and then placed,
  against reading and placing one parameter at a time (`model_setup.load_initial_params`).

A T5.1.1-base-shaped model (248M float32 params, random) is saved both ways, then loaded
onto 8 CPU devices under FSDP (MeshConfig(data=8, rules="fsdp")) in a fresh process per
case, which reports its peak RSS. On CPU the devices' memory is host memory too, so every
way holds the placed params (about 1 GB) once; the previous ways also hold the whole model
as numpy arrays while they place them.

Usage: python tools/bench_restore.py [--dir /tmp/bench_restore] [--json out.json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

BASE = dict(vocab_size=32128, d_model=768, num_encoder_layers=12, num_decoder_layers=12,
            num_heads=12, d_kv=64, d_ff=2048, mlp_activations=("gelu", "linear"),
            tie_word_embeddings=False)


def write_model(directory: str) -> None:
  import jax

  from flan_tune.model import checkpoint, network
  from flan_tune.model.config import T5Config

  config = T5Config(**BASE)
  params = network.unbox(network.init_variables(network.T5(config), jax.random.key(0))
                         ["params"])
  checkpoint.save_model(directory, config, jax.device_get(params))


def write_hf(model: str, directory: str) -> None:
  from flan_tune.model import checkpoint
  from flan_tune.model.hf import export_hf

  export_hf(*checkpoint.load_pretrained(model), directory)


def peak_rss_gb() -> float:
  """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited across exec)."""
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmHWM:"):
        return int(line.split()[1]) / 2**20
  raise RuntimeError("no VmHWM in /proc/self/status")


def measure(way: str, directory: str) -> dict:
  os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
  import jax
  import numpy as np

  from flan_tune.model import network
  from flan_tune.runtime import partitioning
  from flan_tune.runtime import model_setup

  config = model_setup.initial_config(directory)
  mesh_config = partitioning.MeshConfig(data=8, rules="fsdp")
  shardings = partitioning.param_shardings(
      mesh_config.make_mesh(), mesh_config.axis_rules(),
      network.abstract_variables(network.T5(config))["params"])
  before = peak_rss_gb()
  start = time.perf_counter()
  if way == "previous":  # the whole model on the host, then placed
    params = model_setup.load_params(directory, config)
    params = jax.tree.map(lambda a, s: jax.make_array_from_callback(
        a.shape, s, lambda index, a=np.asarray(a, np.float32): a[index]), params, shardings)
  else:
    params = model_setup.load_initial_params(directory, config, shardings)
  jax.block_until_ready(params)
  seconds = time.perf_counter() - start
  total = sum(x.nbytes for x in jax.tree.leaves(params)) / 2**30
  return {"way": way, "directory": os.path.basename(directory), "seconds": seconds,
          "params_gb": total,
          "peak_rss_gb_before_loading": before,
          "peak_rss_gb": peak_rss_gb()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "bench_restore"))
  parser.add_argument("--json")
  parser.add_argument("--_way", help=argparse.SUPPRESS)
  parser.add_argument("--_directory", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args._way:  # pylint: disable=protected-access
    print(json.dumps(measure(args._way, args._directory)))  # pylint: disable=protected-access
    return
  model, hf = os.path.join(args.dir, "t5_1_1_base_random"), os.path.join(args.dir, "hf")
  if not os.path.exists(os.path.join(model, "config.json")):
    write_model(model)
  if not os.path.exists(os.path.join(hf, "config.json")):
    write_hf(model, hf)
  report = {"command": " ".join(sys.argv), "runs": [], "rss_ratio": {}}
  for directory, new_way in ((model, "restored into shardings"),
                             (hf, "placed one parameter at a time")):
    runs = []
    for way in ("previous", "current"):
      done = subprocess.run([sys.executable, os.path.abspath(__file__), "--_way", way,
                             "--_directory", directory], capture_output=True, text=True,
                            check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
      runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
      print(json.dumps(runs[-1]), flush=True)
    previous, current = runs
    name = os.path.basename(directory)
    report["runs"] += runs
    report["rss_ratio"][name] = current["peak_rss_gb"] / previous["peak_rss_gb"]
    print(f"{name}: peak RSS whole on the host {previous['peak_rss_gb']:.2f} GB, {new_way} "
          f"{current['peak_rss_gb']:.2f} GB ({report['rss_ratio'][name]:.2f}x)", flush=True)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(report, f, indent=2)


if __name__ == "__main__":
  main()
