"""A wheel built from the checkout installs and runs on its own: the gin files and the task
collections travel inside it, under names that no user's own `tasks` module collides with."""

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile

import pytest
from training_runs import MIXTURE, REPO, metrics, write_initial_checkpoint

pytestmark = pytest.mark.xdist_group("packaging")

# A user's project whose own `tasks` module is on the path: with the collections installed
# as a top-level `tasks`, the CLI's default --module imported this file instead of ours.
USERS_TASKS = "raise SystemExit(\"the user's own tasks.py was imported by flan-tune\")\n"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """(wheel, venv's bin/, a project directory outside the checkout). The fresh venv gets
  the wheel only; the pinned dependencies come from this venv's site-packages, added as a
  plain path, so this venv's editable flan-tune (a .pth hook) stays out of it."""
  root = tmp_path_factory.mktemp("packaging")
  source = root / "source"  # a copy: setuptools writes build/ and *.egg-info into the tree
  for name in ("flan_tune", "tasks", "gin"):
    shutil.copytree(os.path.join(REPO, name), source / name,
                    ignore=shutil.ignore_patterns("__pycache__"))
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(os.path.join(REPO, name), source)
  subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                  "--no-build-isolation", "--wheel-dir", str(root / "dist"), str(source)],
                 check=True, cwd=root)
  [wheel] = glob.glob(str(root / "dist" / "flan_tune-*.whl"))
  venv.create(root / "venv", with_pip=False)
  target = root / "venv" / "bin" / "python"
  site = subprocess.run([target, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        check=True, capture_output=True, text=True).stdout.strip()
  with open(os.path.join(site, "pinned_dependencies.pth"), "w") as f:
    f.write(sysconfig.get_paths()["purelib"] + "\n")
  subprocess.run([sys.executable, "-m", "pip", "--python", target, "install", "--quiet",
                  "--no-deps", wheel], check=True, cwd=root)
  project = root / "project"
  project.mkdir()
  (project / "tasks.py").write_text(USERS_TASKS)
  return wheel, root / "venv" / "bin", project


def run_in(project, *args):
  env = dict(os.environ, PYTHONPATH=str(project), JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_holds_the_gin_files_and_the_collections_under_their_own_names(installed):
  wheel, _, _ = installed
  names = zipfile.ZipFile(wheel).namelist()
  tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
  assert tops == {"flan_tune", "flan_tune_tasks", "flan_tune_gin"}
  shipped_gin = {os.path.relpath(path, os.path.join(REPO, "gin"))
                 for path in glob.glob(os.path.join(REPO, "gin", "*", "*.gin"))}
  assert {n.removeprefix("flan_tune_gin/") for n in names if n.endswith(".gin")} == shipped_gin
  assert "flan_tune_tasks/offline/offline_spm.model" in names
  sources = {f"{installed_as}/{os.path.relpath(path, os.path.join(REPO, folder))}"
             for folder, installed_as in (("flan_tune", "flan_tune"), ("tasks", "flan_tune_tasks"))
             for path in glob.glob(os.path.join(REPO, folder, "**", "*.py"), recursive=True)}
  assert sources <= set(names), sorted(sources - set(names))


def test_the_installed_package_runs_outside_the_checkout(installed):
  _, bin_dir, project = installed
  where = run_in(project, bin_dir / "python", "-c",
                 "import flan_tune, flan_tune_tasks; print(flan_tune.__file__); "
                 "print(flan_tune_tasks.__file__)")
  assert where.returncode == 0, where.stderr
  assert all("site-packages" in line and REPO not in line for line in where.stdout.split())

  usage = run_in(project, bin_dir / "flan-tune", "train", "--help")
  assert usage.returncode == 0, usage.stderr
  assert "--gin_file" in usage.stdout

  write_initial_checkpoint(project / "initial")
  run = run_in(project, bin_dir / "flan-tune", "train", "--gin_file=runs/finetune.gin",
               "--gin.INITIAL_CHECKPOINT_PATH='initial'", "--gin.MODEL_DIR='run'",
               "--gin.TRAIN_STEPS=2", "--gin.BATCH_SIZE=2", f"--gin.MIXTURE_OR_TASK_NAME='{MIXTURE}'",
               "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}", "--gin.train.log_every=1")
  assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
  assert [row["step"] for row in metrics(project / "run")] == [1, 2]
