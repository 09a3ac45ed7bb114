"""Task collections. Importing a collection registers its tasks and mixtures.

Installed as `flan_tune_tasks` (the checkout's folder is tasks/), so that it cannot shadow
or be shadowed by a user's own `tasks` module. `import flan_tune_tasks` registers the
offline collection only (no network, no downloads); `flan_tune_tasks.flan_tfds` (TFDS
datasets), `.instruct` (instruction-data loaders), `.natural_instructions` and `.flan2022`
are imported explicitly, e.g. `flan-tune inspect flan_tfds --module flan_tune_tasks.flan_tfds`.
"""

if __name__ != "flan_tune_tasks":
  # Imported as `tasks` from a checkout's root: a second copy would register every task twice.
  raise ImportError(f"the shipped task collections are the package flan_tune_tasks (the "
                    f"checkout's tasks/ folder); import flan_tune_tasks, not {__name__}")

from flan_tune_tasks import offline  # noqa: E402,F401
