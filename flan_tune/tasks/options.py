"""Answer-option blocks rendered in styles drawn from seeded pools.

FLAN draws the header, item marker and separator from unseeded pools; we draw them
from a per-example generator, so the same seed gives the same block every run.
All wording here is our own.
"""

import dataclasses
from typing import Sequence

import numpy as np

HEADERS = (
    "OPTIONS:", "Options:", "Choose from:", "Pick one:", "Possible answers:",
    "Answer with one of:", "Select one:", "Choices:", "Candidates:", "Your choices:",
    "Pick from the following.", "Which one?", "Available answers:",
    "Respond with one of these:", "Allowed answers:", "Choose one option:",
)

# A marker is a format string over the option's position: {n} (1-based number),
# {a} (lowercase letter) or {A} (uppercase letter). No "A: " marker: templates end
# with "A:" as an answer cue.
MARKERS = (
    "- ", "* ", "+ ", "• ", "> ", "-- ", "~ ", "· ",
    "({A}) ", "{A}) ", "{A}. ", "[{A}] ", "<{A}> ",
    "({a}) ", "{a}) ", "{a}. ", "[{a}] ",
    "({n}) ", "{n}) ", "{n}. ", "[{n}] ", "#{n} ", "{n}: ",
)

SEPARATORS = ("\n", " ", " | ")


@dataclasses.dataclass(frozen=True)
class OptionStyle:
  header: str
  marker: str
  separator: str

  def render(self, options: Sequence[str]) -> str:
    items = [
        self.marker.format(n=i + 1, a=_letter(i).lower(), A=_letter(i)) + option
        for i, option in enumerate(options)
    ]
    return self.separator.join([self.header] + items)


def _letter(index: int) -> str:
  letters = ""
  index += 1
  while index:
    index, rest = divmod(index - 1, 26)
    letters = chr(ord("A") + rest) + letters
  return letters


def draw_style(rng: np.random.Generator) -> OptionStyle:
  return OptionStyle(
      header=HEADERS[rng.integers(len(HEADERS))],
      marker=MARKERS[rng.integers(len(MARKERS))],
      separator=SEPARATORS[rng.integers(len(SEPARATORS))],
  )
