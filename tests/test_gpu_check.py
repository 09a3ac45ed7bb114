"""tools/gpu_check.py --smoke: the GPU check's own code, on the CPU, with TensorFlow, seqio,
tensorflow_datasets and t5 unimportable (what a bare accelerator image lacks): a train
step plain and with remat + scanned layers, greedy decoding, an Orbax save and restore."""

import json
import os
import subprocess
import sys

TOOLS = os.path.join(os.path.dirname(__file__), "..", "tools")


def test_smoke_trains_and_decodes_without_the_data_stack(tmp_path):
  out = tmp_path / "gpu_check.json"
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  done = subprocess.run([sys.executable, os.path.join(TOOLS, "gpu_check.py"), "--smoke",
                         "--json", str(out)], capture_output=True, text=True, env=env,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  results = json.loads(out.read_text())
  assert {"tensorflow", "seqio", "tensorflow_datasets", "t5"} <= set(results["blocked_imports"])
  failed = {key: value["error"] for key, value in results.items()
            if isinstance(value, dict) and "error" in value}
  assert not failed, failed  # an import of a blocked module would land here
  for variant in ("plain", "remat_scan"):
    train = results[f"train/t5_1_1_tiny/{variant}"]
    assert train["model_tflops_per_s"] > 0 and 0 < train["mfu_vs_measured_peak"] < 1
    assert train["mfu_vs_vendor_peak"] is None  # a CPU has no vendor figure
  decode = results["decode/t5_1_1_tiny"]
  assert decode["torch_device"] == "cpu" and decode["speedup"] > 0
  assert results["checkpoint/t5_1_1_tiny"]["bit_equal"]
  assert results["measured_peak_bf16_tflops"] > 0
  assert "train/t5_1_1_tiny/plain" in done.stdout  # the printed table

