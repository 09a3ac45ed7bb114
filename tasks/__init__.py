"""Task collections. Importing a collection registers its tasks and mixtures.

`import tasks` registers the offline collections only (no network, no downloads).
"""

from tasks import mini  # noqa: F401
