"""The offline collection's SentencePiece vocabulary, shipped in the repository.

`tools/train_offline_vocab.py` trains it on the collection's own text (rendered prompts
of every family and the pretraining corpus). Ids follow T5's layout: 0 pad, 1 EOS,
2 unknown, then pieces, then 100 sentinel ids for span corruption.
"""

import functools
import os

import seqio

MODEL_PATH = os.path.join(os.path.dirname(__file__), "offline_spm.model")
EXTRA_IDS = 100


@functools.cache
def offline_vocabulary() -> seqio.SentencePieceVocabulary:
  """Loaded lazily by seqio on first use, so the recipe can import the tasks before
  the model exists."""
  return seqio.SentencePieceVocabulary(MODEL_PATH, extra_ids=EXTRA_IDS)
