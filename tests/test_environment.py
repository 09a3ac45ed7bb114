"""The installed set: coherent (pip check) and no module provided by two distributions."""

import collections
import importlib.metadata
import subprocess
import sys

import pytest


def test_pip_check_is_clean():
  result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
  assert result.returncode == 0, result.stdout + result.stderr


def test_no_file_is_installed_by_two_distributions():
  owners = collections.defaultdict(set)
  for dist in importlib.metadata.distributions():
    for path in dist.files or ():
      if path.suffix == ".pyc" or ".dist-info" in str(path) or str(path).startswith(".."):
        continue
      owners[str(path)].add(dist.metadata["Name"])
  clashes = {path: names for path, names in owners.items() if len(names) > 1}
  assert not clashes, clashes


def test_t5_uses_the_stable_seqio_and_tfds():
  requirements = importlib.metadata.requires("t5")
  assert "seqio" in requirements and "tensorflow-datasets" in requirements
  installed = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()}
  assert not installed & {"seqio-nightly", "tfds-nightly"}


@pytest.mark.xdist_group("environment")
def test_xdist_groups_keep_their_tests_on_one_worker(request):
  """`make test` relies on --dist loadgroup (the subprocess-heavy modules share one
  worker each); pytest 9.2 with pytest-xdist 3.8 silently drops the groups."""
  if request.config.getoption("dist", "no") == "loadgroup":
    assert request.node.nodeid.endswith("@environment")
