"""Question answering: extractive (SQuAD, DROP), over a text with choices (OpenBookQA,
Cosmos QA), closed-book (ARC, TriviaQA, NQ-Open, WebQuestions, QASC, CoS-E) and math
(MathQA, GSM8K). Collections follow FLAN 2022: WebQuestions, QASC and CoS-E in T0,
MathQA in Natural Instructions v2, GSM8K and CoS-E's explanations in CoT.
Sizes: TFDS catalog of each pinned version.
"""

import re

from flan_tune.tasks import metrics
from flan_tune_tasks.flan_tfds import families
from flan_tune_tasks.flan_tfds.common import (add, choices_with, first, label_text, letter_index,
                                    short_answer_postprocessor, squash, trivia_qa_metric)
from flan_tune_tasks.flan_tfds.families import T

TEST_AS_VALIDATION = {"train": "train", "validation": "test"}

# ------------------------------------------------------------------ extractive QA

add("squad_v1", "squad/v1.1:3.0.0", splits=("train", "validation"),
    sizes={"train": 87_599, "validation": 10_570},
    collection="flan2021", cluster="reading_comprehension",
    example_fn=lambda r: {"context": r["context"], "question": r["question"],
                          "title": r["title"].replace("_", " "),
                          "answer": first(r["answers"]["text"], "answer")},
    templates=families.extractive_qa() + [
        T("Article about {title}:\n{context}\n\nQuestion: {question}", "{answer}"),
    ],
    metric_fns=[metrics.squad], postprocess_fn=short_answer_postprocessor)

add("drop", "drop:2.0.0", splits={"train": "train", "validation": "dev"},
    sizes={"train": 77_409, "validation": 9_536},
    collection="flan2021", cluster="reading_comprehension",
    example_fn=lambda r: {"context": r["passage"], "question": r["question"],
                          "answer": r["answer"]},
    templates=families.extractive_qa() + [
        T("{context}\n\nCount, compare or add up as needed to answer: {question}",
          "{answer}"),
    ],
    metric_fns=[metrics.squad], postprocess_fn=short_answer_postprocessor)

# --------------------------------------------------------- multiple choice over text


def openbookqa_fields(raw):
  question = raw["question"]
  options = [question[f"choice_{letter}"] for letter in "ABCD"]
  return {"context": raw["fact1"], "question": question["stem"], "options": options,
          "answer": label_text(options, raw["answerKey"])}


add("openbookqa", "openbookqa:0.1.0", splits=("train", "validation", "test"),
    sizes={"train": 4_957, "validation": 500, "test": 500},
    collection="flan2021", cluster="reading_comprehension", options_field="options",
    example_fn=openbookqa_fields,
    templates=families.passage_choice() + [
        T("Fact: {context}\nUsing this fact, answer: {question}\n{options_}", "{answer}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=short_answer_postprocessor)


def cosmos_fields(raw):
  options = [raw[f"answer{i}"] for i in range(4)]
  return {"context": raw["context"], "question": raw["question"], "options": options,
          "answer": label_text(options, raw["label"])}


add("cosmos_qa", "cosmos_qa:1.0.0", splits=("train", "validation"),
    sizes={"train": 25_262, "validation": 2_985},
    collection="flan2021", cluster="reading_comprehension_commonsense",
    options_field="options", example_fn=cosmos_fields,
    templates=families.passage_choice() + [
        T("{context}\n\nReading between the lines, {question}\n{options_}", "{answer}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=short_answer_postprocessor)

# ------------------------------------------------------------------ closed-book QA


def arc_fields(raw):
  choices = raw["choices"]
  options = list(choices["text"])
  labels = list(choices["label"])
  key = raw["answerKey"]
  index = labels.index(key) if key in labels else key % len(options)
  return {"question": raw["question"], "topic": "science", "options": options,
          "answer": options[index]}


for config, sizes in (("ARC-Easy", {"train": 2_251, "validation": 570, "test": 2_376}),
                      ("ARC-Challenge", {"train": 1_119, "validation": 299,
                                         "test": 1_172})):
  add(f"ai2_arc_{config.split('-')[1].lower()}", f"ai2_arc/{config}:1.0.0",
      splits=("train", "validation", "test"), sizes=sizes,
      collection="flan2021", cluster="closed_book_qa", options_field="options",
      example_fn=arc_fields,
      templates=families.multiple_choice() + [
          T("Grade-school science exam.\n{question}\n{options_}", "{answer}"),
      ],
      metric_fns=[metrics.accuracy], postprocess_fn=short_answer_postprocessor)

add("trivia_qa", "trivia_qa/rc.nocontext:1.1.0", splits=("train", "validation"),
    sizes={"train": 138_384, "validation": 18_669},
    collection="flan2021", cluster="closed_book_qa",
    example_fn=lambda r: {"question": r["question"], "answer": r["answer"]["value"]},
    templates=families.closed_book_qa() + [
        T("Trivia night! {question}", "{answer}"),
    ],
    metric_fns=[trivia_qa_metric], postprocess_fn=short_answer_postprocessor)

add("natural_questions_open", "natural_questions_open:1.0.0",
    splits=("train", "validation"), sizes={"train": 87_925, "validation": 3_610},
    collection="flan2021", cluster="closed_book_qa",
    # Questions come lower-cased without a question mark, as people type searches.
    example_fn=lambda r: {"question": r["question"].rstrip("?") + "?",
                          "answer": first(r["answer"], "answer")},
    templates=families.closed_book_qa() + [
        T("Someone searched the web for \"{question}\" What should the answer be?",
          "{answer}"),
    ],
    metric_fns=[metrics.squad], postprocess_fn=short_answer_postprocessor)

add("web_questions", "web_questions:1.0.0", splits=TEST_AS_VALIDATION,
    sizes={"train": 3_778, "validation": 2_032},
    collection="t0", cluster="closed_book_qa",
    example_fn=lambda r: {"question": r["question"], "answer": first(r["answers"],
                                                                     "answer")},
    templates=families.closed_book_qa() + [
        T("Here is a question someone typed into a search engine: {question}\n"
          "Give a short answer.", "{answer}"),
    ],
    metric_fns=[metrics.squad], postprocess_fn=short_answer_postprocessor)


def qasc_fields(raw):
  choices = raw["choices"]
  options = list(choices["text"])
  labels = list(choices["label"])
  key = raw["answerKey"]
  index = labels.index(key) if key in labels else letter_index(key, len(options))
  return {"question": raw["question"], "topic": "science", "options": options,
          "answer": options[index], "fact1": raw["fact1"], "fact2": raw["fact2"]}


add("qasc", "qasc:0.1.0", splits=("train", "validation"),
    sizes={"train": 8_134, "validation": 926},
    collection="t0", cluster="closed_book_qa", options_field="options",
    example_fn=qasc_fields,
    templates=families.multiple_choice() + [
        T("Fact 1: {fact1}\nFact 2: {fact2}\nCombine the two facts to answer: "
          "{question}\n{options_}", "{answer}"),
        T("{fact1} {fact2}\n\nGiven these facts, {question}\n{options_}", "{answer}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=short_answer_postprocessor)


def cos_e_fields(raw):
  answer = raw["answer"]
  return {"question": raw["question"], "topic": "everyday life",
          "options": choices_with(raw["choices"], answer), "answer": answer,
          "rationale": squash(raw["abstractive_explanation"])}


COS_E = dict(splits=("train", "validation"), sizes={"train": 9_741, "validation": 1_221},
             cluster="commonsense", options_field="options", example_fn=cos_e_fields,
             metric_fns=[metrics.accuracy], postprocess_fn=short_answer_postprocessor)
add("cos_e", "cos_e:0.0.1", collection="t0",
    templates=families.multiple_choice() + [
        T("Common sense question: {question}\n{options_}", "{answer}"),
    ], **COS_E)
# The same questions with their human explanations, as FLAN 2022's CoT collection uses
# CommonsenseQA explanations (ECQA).
add("cos_e_cot", "cos_e:0.0.1", collection="cot", rationale_field="rationale",
    templates=families.multiple_choice() + [
        T("{question}\nThink about what usually happens in daily life.\n{options_}",
          "{answer}"),
    ], **COS_E)

# -------------------------------------------------------------------------- math

_MATHQA_MARKER = re.compile(r"(?:^|[\s,'\[]+)([a-e])\s*\)\s*")


def math_qa_options(text: str) -> list:
  """Options arrive as one string, 'a ) 38 , b ) 3 , 000 , ...' or a Python list
  literal of such items; split at the letter markers only."""
  parts = _MATHQA_MARKER.split(text.strip())
  return [part.strip(" ,'[]") for part in parts[2::2]]


def math_qa_fields(raw):
  options = math_qa_options(raw["options"])
  if not options:  # only mock data, whose text is random
    options = [raw["options"]]
  return {"question": raw["Problem"], "topic": "math", "options": options,
          "answer": options[letter_index(raw["correct"], len(options))]}


add("math_qa", "math_qa:1.0.0", splits=("train", "validation", "test"),
    sizes={"train": 29_837, "validation": 4_475, "test": 2_985},
    collection="niv2", cluster="arithmetic", options_field="options",
    example_fn=math_qa_fields,
    templates=families.multiple_choice() + [
        T("Solve the word problem and pick the matching option.\n{question}\n{options_}",
          "{answer}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=short_answer_postprocessor)

_CALCULATOR = re.compile(r"<<[^>]*>>")


def gsm8k_fields(raw):
  """GSM8K reasoning without its calculator annotations ('<<48/2=24>>')."""
  return {"question": raw["question"], "answer": raw["short_answer"].strip(),
          "rationale": squash(_CALCULATOR.sub("", raw["annotation"]))}


add("gsm8k", "gsm8k:1.0.0", splits=TEST_AS_VALIDATION,
    sizes={"train": 7_473, "validation": 1_319},
    collection="cot", cluster="arithmetic", rationale_field="rationale",
    example_fn=gsm8k_fields,
    templates=[
        T("{question}", "{answer}"),
        T("Solve this math word problem: {question}", "{answer}"),
        T("Question: {question}\nAnswer:", "{answer}"),
        T("{question}\n\nWhat is the final number?", "{answer}"),
        T("Work out the answer to the following problem.\n\n{question}", "{answer}"),
        T("Here is a grade-school math question: {question}\nGive the numeric answer.",
          "{answer}"),
        T("A student is stuck on this problem: {question}\nWhat answer should they get?",
          "{answer}"),
        T("Math problem:\n{question}\nSolution:", "{answer}"),
        families.inverted("Write a grade-school math word problem whose answer is "
                          "{answer}.", "{question}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=short_answer_postprocessor)
