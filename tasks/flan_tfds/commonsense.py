"""Commonsense (PIQA, HellaSwag) and coreference (WinoGrande, Definite Pronoun
Resolution), all in FLAN 2021. Sizes: TFDS catalog of each pinned version.
"""

from flan_tune.tasks import metrics
from flan_tune_tasks.flan_tfds.common import add, label_text, short_answer_postprocessor, wrapped
from flan_tune_tasks.flan_tfds.families import T, inverted


def piqa_fields(raw):
  options = [raw["sol1"], raw["sol2"]]
  return {"goal": raw["goal"], "options": options,
          "answer": label_text(options, raw["label"])}


add("piqa", "piqa:1.0.0", splits=("train", "validation"),
    sizes={"train": 16_113, "validation": 1_838},
    collection="flan2021", cluster="commonsense", options_field="options",
    example_fn=piqa_fields,
    templates=[
        T("Goal: {goal}\nWhich approach works best? {options_}", "{answer}"),
        T("How would you accomplish this: {goal}\n{options_}", "{answer}"),
        T("{goal}\n\nPick the most sensible way to do it.\n{options_}", "{answer}"),
        T("Here is a task from everyday life: {goal}\nWhat should you do? {options_}",
          "{answer}"),
        T("Physical commonsense check. To achieve \"{goal}\", which method makes more "
          "sense?\n{options_}", "{answer}"),
        T("What is the right way to go about the following?\n{goal}\n{options_}",
          "{answer}"),
        T("Choose the solution that would actually work.\nTask: {goal}\n{options_}",
          "{answer}"),
        T("Someone asks how to do this: \"{goal}\" Which advice would you give them?\n"
          "{options_}", "{answer}"),
        inverted("Here is a way of doing something: {answer}\nWhat goal does it "
                 "accomplish?", "{goal}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=short_answer_postprocessor)


def hellaswag_fields(raw):
  endings = list(raw["endings"])
  return {"context": raw["context"], "activity": raw["activity_label"],
          "options": endings, "answer": wrapped(endings, raw["label"])}


add("hellaswag", "hellaswag:1.1.0", splits=("train", "validation"),
    sizes={"train": 39_905, "validation": 10_042},
    collection="flan2021", cluster="commonsense", options_field="options",
    example_fn=hellaswag_fields,
    templates=[
        T("{context}\n\nWhat is the most natural way to continue?\n{options_}",
          "{answer}"),
        T("Finish the passage about {activity}.\n{context}\n{options_}", "{answer}"),
        T("Pick the ending that fits best:\n{context}...\n{options_}", "{answer}"),
        T("Which sentence comes next?\n\n{context}\n{options_}", "{answer}"),
        T("So far: {context}\nHow does it most likely go on? {options_}", "{answer}"),
        T("Topic: {activity}\nBeginning: {context}\nSelect the most plausible "
          "continuation.\n{options_}", "{answer}"),
        T("Continue the description in the most sensible way.\n{context}\n{options_}",
          "{answer}"),
        T("{context} ...\nWhat happens next? {options_}", "{answer}"),
        inverted("Write the beginning of a description about {activity} that could be "
                 "followed by: {answer}", "{context}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=short_answer_postprocessor)


def winogrande_fields(raw):
  options = [raw["option1"], raw["option2"]]
  answer = label_text(options, raw["label"])
  return {"sentence": raw["sentence"], "option1": options[0], "option2": options[1],
          "options": options, "answer": answer,
          "distractor": options[1 - options.index(answer)]}


add("winogrande", "winogrande:1.2.0",
    # The largest training size; its test labels are hidden.
    splits={"train": "train_xl", "validation": "validation"},
    sizes={"train": 40_398, "validation": 1_267},
    collection="flan2021", cluster="coreference", options_field="options",
    example_fn=winogrande_fields,
    templates=[
        T("{sentence}\n\nWhat should fill the blank (_)?\n{options_}", "{answer}"),
        T("Fill in the blank: {sentence}\n{options_}", "{answer}"),
        T("In the sentence below, who or what does the underscore stand for?\n{sentence}\n"
          "{options_}", "{answer}"),
        T("Which option makes this sentence make sense?\n\"{sentence}\"\n{options_}",
          "{answer}"),
        T("Complete the sentence with {option1} or {option2}: {sentence}\n{options_}",
          "{answer}"),
        T("Read: {sentence}\nThe _ refers to which of these? {options_}", "{answer}"),
        T("Resolve the blank. {sentence}\n{options_}", "{answer}"),
        T("Here is a sentence with a missing word or phrase, marked by _.\n{sentence}\n"
          "What belongs there? {options_}", "{answer}"),
        inverted("Write a sentence with a blank (_) that {answer} fills correctly and "
                 "{distractor} does not.", "{sentence}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=short_answer_postprocessor)


def pronoun_fields(raw):
  options = list(raw["candidates"])[:2]
  return {"sentence": raw["sentence"], "pronoun": raw["pronoun"], "options": options,
          "answer": label_text(options, raw["label"])}


add("definite_pronoun_resolution", "definite_pronoun_resolution:1.1.0",
    splits={"train": "train", "validation": "test"},
    sizes={"train": 1_322, "validation": 564},
    collection="flan2021", cluster="coreference", options_field="options",
    example_fn=pronoun_fields,
    templates=[
        T("{sentence}\n\nWho or what does \"{pronoun}\" refer to in the sentence above?\n"
          "{options_}", "{answer}"),
        T("Sentence: {sentence}\nPronoun: {pronoun}\nWhich candidate does the pronoun "
          "point to? {options_}", "{answer}"),
        T("In \"{sentence}\", what is \"{pronoun}\"?\n{options_}", "{answer}"),
        T("Resolve the pronoun \"{pronoun}\" in this sentence: {sentence}\n{options_}",
          "{answer}"),
        T("Read the sentence and decide whom \"{pronoun}\" means.\n{sentence}\n{options_}",
          "{answer}"),
        T("{sentence}\nHere, \"{pronoun}\" stands for... {options_}", "{answer}"),
        T("Coreference question. Text: {sentence} Who is \"{pronoun}\"? {options_}",
          "{answer}"),
        T("Which of the options is the antecedent of \"{pronoun}\"?\n\n{sentence}\n\n"
          "{options_}", "{answer}"),
        inverted("Write a sentence in which the pronoun \"{pronoun}\" refers to "
                 "{answer}.", "{sentence}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=short_answer_postprocessor)
