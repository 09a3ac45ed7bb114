"""The stages of flan_tune import one way: tasks -> mixtures -> runtime -> training /
evaluation / inference, with the model beside mixtures; no stage imports a later one,
and the three last stages do not import each other. Read from the source (every import,
also those inside functions), so nothing has to run."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "flan_tune"
RANK = {"errors": 0, "launch_config": 0, "tasks": 1, "mixtures": 2, "model": 2,
        "runtime": 3, "training": 4, "evaluation": 4, "inference": 4}


def imported_stages(path: pathlib.Path) -> set:
  stages = set()
  for node in ast.walk(ast.parse(path.read_text())):
    names = []
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    for name in names:
      parts = name.split(".")
      if parts[0] == "flan_tune" and len(parts) > 1 and parts[1] in RANK:
        stages.add(parts[1])
  return stages


def test_no_stage_imports_a_later_one():
  wrong = []
  for stage in RANK:
    for path in sorted((ROOT / stage).rglob("*.py")) if (ROOT / stage).is_dir() else []:
      for other in imported_stages(path) - {stage}:
        if RANK[other] > RANK[stage] or (RANK[other] == RANK[stage] == 4):
          wrong.append(f"{path.relative_to(ROOT.parent)} imports flan_tune.{other}")
  assert not wrong, "\n".join(wrong)
