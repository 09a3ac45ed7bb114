"""Natural language inference beyond GLUE: ANLI, SNLI (FLAN 2021), SciTail (in
Natural Instructions v2) and e-SNLI, whose explanations make it a chain-of-thought
task as in the FLAN 2022 CoT collection. Sizes: TFDS catalog of each pinned version.
"""

from flan_tune.tasks import metrics
from flan_tune_tasks.flan_tfds import families
from flan_tune_tasks.flan_tfds.common import add, label_text, option_postprocessor, tf_label_at_least
from flan_tune_tasks.flan_tfds.families import T

ENTAILMENT3 = ["yes", "it is not possible to tell", "no"]  # entail, neutral, contradict


def _fields(premise, hypothesis, label_index, options=ENTAILMENT3):
  return {"premise": premise, "hypothesis": hypothesis,
          "label": label_text(options, label_index)}


ANLI_SIZES = {  # anli 0.1.0
    "r1": {"train": 16_946, "validation": 1_000, "test": 1_000},
    "r2": {"train": 45_460, "validation": 1_000, "test": 1_000},
    "r3": {"train": 100_459, "validation": 1_200, "test": 1_200},
}
for round_name, sizes in ANLI_SIZES.items():
  add(f"anli_{round_name}", f"anli/{round_name}:0.1.0",
      splits=("train", "validation", "test"), sizes=sizes,
      collection="flan2021", cluster="nli", options=ENTAILMENT3,
      example_fn=lambda r: _fields(r["context"], r["hypothesis"], r["label"]),
      templates=families.entailment() + [
          T("{premise}\n\nA tricky one: does this passage make \"{hypothesis}\" true?\n"
            "{options_}", "{label}"),
      ],
      metric_fns=[metrics.accuracy], postprocess_fn=option_postprocessor(ENTAILMENT3))

add("snli", "snli:1.1.0", splits=("train", "validation", "test"),
    sizes={"train": 550_152, "validation": 10_000, "test": 10_000},
    # Pairs whose annotators never agreed carry label -1; they have no answer.
    keep_fn=tf_label_at_least("label", 0),
    collection="flan2021", cluster="nli", options=ENTAILMENT3,
    example_fn=lambda r: _fields(r["premise"], r["hypothesis"], r["label"]),
    templates=families.entailment() + [
        T("Look at this image caption: {premise}\nCan we tell from it that "
          "{hypothesis}\n{options_}", "{label}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=option_postprocessor(ENTAILMENT3))

SCITAIL = ["yes", "no"]  # TFDS: entails, neutral
add("sci_tail", "sci_tail:1.0.0", splits=("train", "validation", "test"),
    sizes={"train": 23_097, "validation": 1_304, "test": 2_126},
    collection="niv2", cluster="nli", options=SCITAIL,
    example_fn=lambda r: _fields(r["premise"], r["hypothesis"], r["label"], SCITAIL),
    templates=families.entailment() + [
        T("Science fact check.\nEvidence: {premise}\nStatement: {hypothesis}\nDoes the "
          "evidence support the statement? {options_}", "{label}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=option_postprocessor(SCITAIL))


def esnli_fields(raw):
  fields = _fields(raw["premise"], raw["hypothesis"], raw["label"])
  fields["rationale"] = raw["explanation_1"].strip()
  return fields


add("esnli", "esnli:0.1.0", splits=("train", "validation", "test"),
    sizes={"train": 549_367, "validation": 9_842, "test": 9_824},
    keep_fn=tf_label_at_least("label", 0),
    collection="cot", cluster="nli", options=ENTAILMENT3, rationale_field="rationale",
    example_fn=esnli_fields,
    templates=families.entailment() + [
        T("Premise: \"{premise}\"\nBased on this premise, can we conclude that "
          "\"{hypothesis}\"?\n{options_}", "{label}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=option_postprocessor(ENTAILMENT3))
