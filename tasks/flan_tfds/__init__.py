"""A FLAN-style collection over real TFDS datasets (mixture `flan_tfds`).

Each dataset is pinned to a TFDS version and registered as task `tfds_{name}` in one
of FLAN 2022's sub-collections (flan2021, t0, niv2, cot, dialog), weighted and capped
as FLAN 2022 mixes them. Importing this package reads no data and touches no network:
split sizes are declared from the TFDS catalog, so rates exist before any download.
Data loads only when a task's dataset is requested (`tfds.testing.mock_data` in tests).

Also registers `flan_tfds_no_{C}` / `flan_tfds_{C}_eval` for every cluster C.
"""

from flan_tune.mixtures import MixtureSpec, register_held_out_mixtures, register_mixture
from flan_tune_tasks.flan_tfds import classification, commonsense, generation, glue, nli, qa  # noqa: F401
from flan_tune_tasks.flan_tfds.common import REGISTERED

MIXTURE = "flan_tfds"
TASKS = tuple(REGISTERED)
SPEC = MixtureSpec(
    collection_weights={"flan2021": 0.4, "t0": 0.32, "niv2": 0.2, "cot": 0.05,
                        "dialog": 0.03},
    caps={"flan2021": 30_000, "t0": 20_000, "niv2": 5_000, "cot": 100_000,
          "dialog": 200_000})
register_mixture(MIXTURE, TASKS, SPEC)
HELD_OUT = register_held_out_mixtures(MIXTURE, TASKS, SPEC)
