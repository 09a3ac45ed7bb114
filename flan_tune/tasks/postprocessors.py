"""Postprocessors that turn a model's text into the answer a metric compares."""

import re


def strip(text, example=None, is_target=False):
  return text.strip()


def first_line(text, example=None, is_target=False):
  return text.strip().split("\n", 1)[0].strip()


def make_cot_answer_extractor(answer_phrase: str = "So the answer is"):
  """Takes the answer after the last `answer_phrase`, without the final period."""
  pattern = re.compile(re.escape(answer_phrase) + r"\s*(.*?)\s*\.?\s*$", re.S)

  def extract(text, example=None, is_target=False):
    text = text.decode() if isinstance(text, bytes) else text
    position = text.rfind(answer_phrase)
    if position < 0:
      return text.strip()
    match = pattern.match(text, position)
    return match.group(1).strip() if match else text.strip()

  return extract


def strip_or_references(text, example=None, is_target=False):
  """Predictions stripped; a target becomes the example's `references` (every acceptable
  answer) when it has them, so metrics take the best over them."""
  if is_target and example is not None and "references" in example:
    return [r.decode() if isinstance(r, bytes) else str(r) for r in example["references"]]
  return strip(text.decode() if isinstance(text, bytes) else text)
