"""Task collections. Importing a collection registers its tasks and mixtures.

`import tasks` registers the offline collection only (no network, no downloads);
`tasks.flan_tfds` (TFDS datasets) and `tasks.instruct` (instruction-data loaders) are
imported explicitly, e.g. `flan-tune inspect flan_tfds --module tasks.flan_tfds`.
"""

from tasks import offline  # noqa: F401
