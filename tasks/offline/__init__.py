"""The embedded default collection: a generated FLAN world that needs no network.

Importing it registers every task family (in all prompt styles, with rank-classification
variants for families with options), the span-corruption pretraining task over the
world's corpus, and the mixtures:

- `flan_offline`: every family, examples-proportional with a cap, FLAN's style weights;
- `flan_offline_eval`: every family's evaluation styles, for held-in evaluation;
- `flan_offline_zs_eval`: every family zero-shot only (zs_opt, zs_noopt and their rank
  variants), the quicker evaluation `make demo` runs;
- for each cluster C, `flan_offline_no_{C}` (train without C) and `flan_offline_{C}_eval`
  (C's tasks), to measure held-out generalization as FLAN does.
"""

from flan_tune.mixtures import MixtureSpec, register_eval_mixture, register_held_out_mixtures
from flan_tune.mixtures import register_mixture
from flan_tune_tasks.offline import classification, generation, knowledge  # noqa: F401  (families)
from flan_tune_tasks.offline import corpus
from flan_tune_tasks.offline.family import COLLECTION, FAMILIES

MIXTURE = "flan_offline"
SPEC = MixtureSpec(caps={COLLECTION: 1000})

corpus.register()
register_mixture(MIXTURE, FAMILIES, SPEC)
register_eval_mixture(f"{MIXTURE}_eval", FAMILIES)
register_eval_mixture(f"{MIXTURE}_zs_eval", FAMILIES, styles=("zs_opt", "zs_noopt"))
HELD_OUT = register_held_out_mixtures(MIXTURE, FAMILIES, SPEC)
