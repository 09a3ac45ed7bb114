"""GLUE and SuperGLUE (all in FLAN 2021). Metrics follow T5's GLUE/SuperGLUE tasks.

GLUE and SuperGLUE test splits carry no labels (-1), so only train and validation
are declared. Sizes: TFDS catalog, glue 2.0.0 and super_glue 1.0.2.
"""

import t5.evaluation.metrics as t5_metrics

from flan_tune.tasks import metrics
from flan_tune_tasks.flan_tfds import families
from flan_tune_tasks.flan_tfds.common import (add, class_id_postprocessor, float_postprocessor,
                                    label_text, matthews_corrcoef, option_postprocessor,
                                    short_answer_postprocessor, strip_markup)
from flan_tune_tasks.flan_tfds.families import T, inverted

YES_NO = ["yes", "no"]
NO_YES = ["no", "yes"]  # position 1 is the positive class for F1
ENTAILMENT3 = ["yes", "it is not possible to tell", "no"]
SPLITS = ("train", "validation")


def _entailment_fields(premise, hypothesis, label):
  return {"premise": premise, "hypothesis": hypothesis, "label": label}


# ----------------------------------------------------------------------------- GLUE

add("glue_sst2", "glue/sst2:2.0.0", splits=SPLITS,
    sizes={"train": 67_349, "validation": 872},
    collection="flan2021", cluster="sentiment", options=["negative", "positive"],
    example_fn=lambda r: {"text": r["sentence"], "kind": "movie review excerpt",
                          "label": label_text(["negative", "positive"], r["label"])},
    templates=families.sentiment(), metric_fns=[metrics.accuracy],
    postprocess_fn=option_postprocessor(["negative", "positive"]))

add("glue_qqp", "glue/qqp:2.0.0", splits=SPLITS,
    sizes={"train": 363_846, "validation": 40_430},
    collection="flan2021", cluster="paraphrase", options=NO_YES,
    example_fn=lambda r: {"sentence1": r["question1"], "sentence2": r["question2"],
                          "kind": "questions", "label": label_text(NO_YES, r["label"])},
    templates=families.paraphrase() + [
        T("Would these two questions get the same answer?\n{sentence1}\n{sentence2}\n"
          "{options_}", "{label}"),
        T("Are \"{sentence1}\" and \"{sentence2}\" asking the same thing? {options_}",
          "{label}"),
    ],
    metric_fns=[t5_metrics.f1_score_with_invalid, t5_metrics.accuracy],
    postprocess_fn=class_id_postprocessor(NO_YES))

add("glue_mrpc", "glue/mrpc:2.0.0", splits=SPLITS,
    sizes={"train": 3_668, "validation": 408},
    collection="flan2021", cluster="paraphrase", options=NO_YES,
    example_fn=lambda r: {"sentence1": r["sentence1"], "sentence2": r["sentence2"],
                          "kind": "sentences", "label": label_text(NO_YES, r["label"])},
    templates=families.paraphrase(),
    metric_fns=[t5_metrics.f1_score_with_invalid, t5_metrics.accuracy],
    postprocess_fn=class_id_postprocessor(NO_YES))

add("glue_mnli", "glue/mnli:2.0.0",
    splits={"train": "train", "validation": "validation_matched"},
    sizes={"train": 392_702, "validation": 9_815},
    collection="flan2021", cluster="nli", options=ENTAILMENT3,
    example_fn=lambda r: _entailment_fields(r["premise"], r["hypothesis"],
                                            label_text(ENTAILMENT3, r["label"])),
    templates=families.entailment(), metric_fns=[metrics.accuracy],
    postprocess_fn=option_postprocessor(ENTAILMENT3))

add("glue_qnli", "glue/qnli:2.0.0", splits=SPLITS,
    sizes={"train": 104_743, "validation": 5_463},
    collection="flan2021", cluster="nli", options=YES_NO,
    example_fn=lambda r: {"question": r["question"], "sentence": r["sentence"],
                          "label": label_text(YES_NO, r["label"]),
                          "answers_it": ("does", "does not")[r["label"]]},
    templates=[
        T("Does the sentence \"{sentence}\" answer the question \"{question}\"?\n"
          "{options_}", "{label}"),
        T("Question: {question}\nSentence: {sentence}\nDoes the sentence contain the "
          "answer to the question? {options_}", "{label}"),
        T("{question}\n\nCan this be answered from the text below?\n{sentence}\n"
          "{options_}", "{label}"),
        T("Is the answer to \"{question}\" found in this sentence?\n{sentence}\n"
          "{options_}", "{label}"),
        T("Someone asked: {question}\nThe reply was: {sentence}\nDoes the reply "
          "actually answer what was asked? {options_}", "{label}"),
        T("Decide whether the passage answers the question.\nPassage: {sentence}\n"
          "Question: {question}\n{options_}", "{label}"),
        T("{sentence}\nDoes the sentence above give the answer to this question: "
          "{question}\n{options_}", "{label}"),
        T("Check whether this text responds to the question.\nText: {sentence}\n"
          "Question: {question}\n{options_}", "{label}"),
        inverted("Sentence: {sentence}\n\nWrite a question that this sentence "
                 "{answers_it} answer.", "{question}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=option_postprocessor(YES_NO))

add("glue_rte", "glue/rte:2.0.0", splits=SPLITS,
    sizes={"train": 2_490, "validation": 277},
    collection="flan2021", cluster="nli", options=YES_NO,
    example_fn=lambda r: _entailment_fields(r["sentence1"], r["sentence2"],
                                            label_text(YES_NO, r["label"])),
    templates=families.entailment(), metric_fns=[metrics.accuracy],
    postprocess_fn=option_postprocessor(YES_NO))

add("glue_wnli", "glue/wnli:2.0.0", splits=SPLITS,
    sizes={"train": 635, "validation": 71},
    collection="flan2021", cluster="nli", options=NO_YES,
    example_fn=lambda r: _entailment_fields(r["sentence1"], r["sentence2"],
                                            label_text(NO_YES, r["label"])),
    templates=families.entailment() + [
        T("{premise}\nIf the pronouns above are read correctly, does this hold: "
          "{hypothesis}\n{options_}", "{label}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=option_postprocessor(NO_YES))

ACCEPTABILITY = ["unacceptable", "acceptable"]
add("glue_cola", "glue/cola:2.0.0", splits=SPLITS,
    sizes={"train": 8_551, "validation": 1_043},
    collection="flan2021", cluster="misc", options=ACCEPTABILITY,
    example_fn=lambda r: {"sentence": r["sentence"],
                          "label": label_text(ACCEPTABILITY, r["label"])},
    templates=[
        T("Is the following sentence grammatically well formed?\n{sentence}\n{options_}",
          "{label}"),
        T("{sentence}\n\nWould a native speaker judge this sentence acceptable?\n"
          "{options_}", "{label}"),
        T("Sentence: \"{sentence}\"\nRate its grammatical acceptability. {options_}",
          "{label}"),
        T("As a linguist, how would you classify this sentence?\n{sentence}\n{options_}",
          "{label}"),
        T("Check the grammar of this sentence: {sentence}\n{options_}", "{label}"),
        T("\"{sentence}\"\nIs that a correct English sentence? {options_}", "{label}"),
        T("Here is a sentence. {sentence}\nDoes it follow the rules of English syntax "
          "and meaning? {options_}", "{label}"),
        T("Judge the sentence below for acceptability.\n\n{sentence}\n\n{options_}",
          "{label}"),
        inverted("Write an English sentence that a linguist would call {label}.",
                 "{sentence}"),
    ],
    metric_fns=[matthews_corrcoef],
    postprocess_fn=class_id_postprocessor(ACCEPTABILITY))

SIMILARITY = ["0", "1", "2", "3", "4", "5"]
add("glue_stsb", "glue/stsb:2.0.0", splits=SPLITS,
    sizes={"train": 5_749, "validation": 1_500},
    collection="flan2021", cluster="paraphrase", options=SIMILARITY,
    # FLAN rounds the 0-5 similarity to whole numbers and offers them as options.
    example_fn=lambda r: {"sentence1": r["sentence1"], "sentence2": r["sentence2"],
                          "label": str(min(5, max(0, round(float(r["label"])))))},
    templates=[
        T("How similar in meaning are these sentences, from 0 (unrelated) to 5 (the "
          "same)?\n{sentence1}\n{sentence2}\n{options_}", "{label}"),
        T("Sentence A: {sentence1}\nSentence B: {sentence2}\nGive a similarity score "
          "between 0 and 5. {options_}", "{label}"),
        T("Rate the semantic overlap of \"{sentence1}\" and \"{sentence2}\" on a 0-5 "
          "scale.\n{options_}", "{label}"),
        T("{sentence1}\n{sentence2}\n\nOn a scale of zero to five, how close are the "
          "meanings of the two sentences? {options_}", "{label}"),
        T("Score how much these two sentences mean the same thing (5 = identical "
          "meaning, 0 = nothing in common).\n1. {sentence1}\n2. {sentence2}\n{options_}",
          "{label}"),
        T("Do \"{sentence1}\" and \"{sentence2}\" describe the same thing? Answer with a "
          "number from 0 to 5. {options_}", "{label}"),
        T("Semantic similarity task.\nFirst: {sentence1}\nSecond: {sentence2}\n"
          "Score (0-5): {options_}", "{label}"),
        T("Compare the sentences below and grade their similarity from 0 to 5.\n\n"
          "{sentence1}\n\n{sentence2}\n\n{options_}", "{label}"),
        inverted("Here is a sentence: {sentence1}\nWrite another sentence whose meaning "
                 "is {label} out of 5 similar to it.", "{sentence2}"),
    ],
    metric_fns=[t5_metrics.pearson_corrcoef, t5_metrics.spearman_corrcoef],
    postprocess_fn=float_postprocessor)

# ------------------------------------------------------------------------ SuperGLUE

add("super_glue_boolq", "super_glue/boolq:1.0.2", splits=SPLITS,
    sizes={"train": 9_427, "validation": 3_270},
    collection="flan2021", cluster="reading_comprehension", options=NO_YES,
    # BoolQ questions come lower-cased and without a question mark.
    example_fn=lambda r: {"passage": r["passage"], "question": r["question"].rstrip("?"),
                          "label": label_text(NO_YES, r["label"])},
    templates=[
        T("{passage}\n\nAfter reading this, can you say: {question}?\n{options_}",
          "{label}"),
        T("Passage: {passage}\nQuestion: {question}?\n{options_}", "{label}"),
        T("Read the text and answer the yes/no question.\n\n{passage}\n\n{question}?\n"
          "{options_}", "{label}"),
        T("{question}?\n\nAnswer using this passage: {passage}\n{options_}", "{label}"),
        T("Here is an article: {passage}\nBased on it, {question}? {options_}", "{label}"),
        T("Is the answer to \"{question}?\" yes or no, given the following?\n{passage}\n"
          "{options_}", "{label}"),
        T("Background: {passage}\n\nQ: {question}?\n{options_}\nA:", "{label}"),
        T("Decide from the text whether the statement in this question holds: "
          "{question}?\n\nText: {passage}\n{options_}", "{label}"),
        inverted("{passage}\n\nWrite a yes-or-no question about this passage whose "
                 "answer is \"{label}\".", "{question}?"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=option_postprocessor(NO_YES))

CB_OPTIONS = ["yes", "no", "it is not possible to tell"]  # TFDS: entail, contra, neutral
add("super_glue_cb", "super_glue/cb:1.0.2", splits=SPLITS,
    sizes={"train": 250, "validation": 56},
    collection="flan2021", cluster="nli", options=CB_OPTIONS,
    example_fn=lambda r: _entailment_fields(r["premise"], r["hypothesis"],
                                            label_text(CB_OPTIONS, r["label"])),
    templates=families.entailment(),
    metric_fns=[t5_metrics.mean_multiclass_f1(num_classes=3), t5_metrics.accuracy],
    postprocess_fn=class_id_postprocessor(CB_OPTIONS))


def copa_fields(raw):
  is_cause = raw["question"] == "cause"
  options = [raw["choice1"], raw["choice2"]]
  return {"premise": raw["premise"], "premise_stem": raw["premise"].rstrip(". "),
          "relation": "cause" if is_cause else "effect",
          "connector": "because" if is_cause else "so",
          "relation_question": ("What was the cause of this?" if is_cause
                                else "What happened as a result?"),
          "options": options, "answer": label_text(options, raw["label"])}


add("super_glue_copa", "super_glue/copa:1.0.2", splits=SPLITS,
    sizes={"train": 400, "validation": 100},
    collection="flan2021", cluster="commonsense", options_field="options",
    example_fn=copa_fields,
    templates=[
        T("{premise}\n\n{relation_question}\n{options_}", "{answer}"),
        T("Premise: {premise}\nWhich option is the more plausible {relation}? {options_}",
          "{answer}"),
        T("Choose the better {relation} for the event below.\nEvent: {premise}\n"
          "{options_}", "{answer}"),
        T("Complete the sentence with the most sensible option: {premise_stem} "
          "{connector}...\n{options_}", "{answer}"),
        T("\"{premise}\" What is the likely {relation} of this?\n{options_}", "{answer}"),
        T("Finish this: {premise_stem}, {connector}\n{options_}", "{answer}"),
        T("Think about cause and effect. {premise}\nIdentify its {relation}.\n{options_}",
          "{answer}"),
        T("Which of the following is the {relation} of the situation described?\n"
          "Situation: {premise}\n{options_}", "{answer}"),
        inverted("Write a short event description for which \"{answer}\" is a plausible "
                 "{relation}.", "{premise}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=short_answer_postprocessor)

add("super_glue_wic", "super_glue/wic:1.0.2", splits=SPLITS,
    sizes={"train": 5_428, "validation": 638},
    collection="flan2021", cluster="misc", options=NO_YES,
    example_fn=lambda r: {"word": r["word"], "sentence1": r["sentence1"],
                          "sentence2": r["sentence2"],
                          "label": label_text(NO_YES, r["label"])},
    templates=[
        T("Does the word \"{word}\" mean the same thing in these two sentences?\n"
          "{sentence1}\n{sentence2}\n{options_}", "{label}"),
        T("Sentence 1: {sentence1}\nSentence 2: {sentence2}\nIs \"{word}\" used in the "
          "same sense in both? {options_}", "{label}"),
        T("Word: {word}\nFirst use: {sentence1}\nSecond use: {sentence2}\nSame meaning? "
          "{options_}", "{label}"),
        T("\"{sentence1}\" / \"{sentence2}\"\nIn both sentences, does \"{word}\" carry "
          "the same definition? {options_}", "{label}"),
        T("Here is a word that can have several meanings: {word}\nIs the meaning the same "
          "in \"{sentence1}\" and in \"{sentence2}\"? {options_}", "{label}"),
        T("Could one dictionary sense of \"{word}\" cover both of these uses?\n"
          "{sentence1}\n{sentence2}\n{options_}", "{label}"),
        T("Look at how \"{word}\" is used.\nA: {sentence1}\nB: {sentence2}\nDo A and B "
          "use it with the same meaning? {options_}", "{label}"),
        T("Word sense check for \"{word}\".\n{sentence1}\n{sentence2}\n{options_}",
          "{label}"),
        inverted("Here is a sentence using \"{word}\": {sentence1}\nWrite another sentence "
                 "with \"{word}\" where the answer to \"same meaning?\" is {label}.",
                 "{sentence2}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=option_postprocessor(NO_YES))


def record_fields(raw):
  """ReCoRD: fill the query's @placeholder with one of the passage's entities."""
  answer = raw["answers"][0] if raw["answers"] else ""
  if not answer:
    raise ValueError("ReCoRD example without an answer (test split?)")
  entities = list(dict.fromkeys(raw["entities"]))
  if answer not in entities:  # only mock data, whose text is random
    entities.append(answer)
  passage = raw["passage"].replace("@highlight\n", "- ")
  return {"passage": passage, "query": raw["query"].replace("@placeholder", "___"),
          "filled": raw["query"].replace("@placeholder", answer),
          "options": entities, "answer": answer}


add("super_glue_record", "super_glue/record:1.0.2", splits=SPLITS,
    sizes={"train": 100_730, "validation": 10_000},
    collection="flan2021", cluster="reading_comprehension_commonsense",
    options_field="options", example_fn=record_fields,
    templates=[
        T("{passage}\n\nWhich entity belongs in the blank? {query}\n{options_}",
          "{answer}"),
        T("Read the news story and complete the sentence.\n\n{passage}\n\nSentence: "
          "{query}\n{options_}", "{answer}"),
        T("Story: {passage}\nFill in the ___ in: {query}\n{options_}", "{answer}"),
        T("{query}\n\nUse this article to decide what goes in the blank:\n{passage}\n"
          "{options_}", "{answer}"),
        T("Here is an article. {passage}\nWhat is the missing name in \"{query}\"? "
          "{options_}", "{answer}"),
        T("Complete the follow-up sentence using the text.\nText: {passage}\n"
          "Follow-up: {query}\n{options_}", "{answer}"),
        T("{passage}\n\nAfter reading the article, who or what is ___ in the sentence "
          "below?\n{query}\n{options_}", "{answer}"),
        T("Cloze question over a news story.\n{passage}\n{query}\n{options_}", "{answer}"),
        inverted("{passage}\n\nWrite a sentence about this story that mentions {answer}.",
                 "{filled}"),
    ],
    metric_fns=[metrics.squad], postprocess_fn=short_answer_postprocessor)

add("super_glue_multirc", "super_glue/multirc:1.0.2", splits=SPLITS,
    sizes={"train": 27_243, "validation": 4_848},
    collection="flan2021", cluster="reading_comprehension", options=NO_YES,
    example_fn=lambda r: {"paragraph": strip_markup(r["paragraph"]),
                          "question": r["question"],
                          "answer": r["answer"], "label": label_text(NO_YES, r["label"]),
                          "verdict": ("an incorrect", "a correct")[r["label"]]},
    templates=[
        T("{paragraph}\n\nQuestion: {question}\nProposed answer: {answer}\nIs the "
          "proposed answer right? {options_}", "{label}"),
        T("Read the paragraph, then judge the answer.\n{paragraph}\nQ: {question}\n"
          "A: {answer}\n{options_}", "{label}"),
        T("Paragraph: {paragraph}\nDoes \"{answer}\" correctly answer \"{question}\"? "
          "{options_}", "{label}"),
        T("{question}\nSomeone answered: {answer}\nAccording to the text below, are they "
          "right?\n{paragraph}\n{options_}", "{label}"),
        T("Based on this text: {paragraph}\n\nIs \"{answer}\" a valid answer to the "
          "question \"{question}\"? {options_}", "{label}"),
        T("Check the answer against the passage.\nPassage: {paragraph}\nQuestion: "
          "{question}\nAnswer: {answer}\n{options_}", "{label}"),
        T("{paragraph}\n\nAfter reading the above, would you accept \"{answer}\" as an "
          "answer to: {question}\n{options_}", "{label}"),
        T("True or false answer? Text: {paragraph} Question: {question} Answer given: "
          "{answer} {options_}", "{label}"),
        inverted("{paragraph}\n\nWrite a question about this paragraph for which "
                 "\"{answer}\" is {verdict} answer.", "{question}"),
    ],
    # T5 scores MultiRC with F1 over all answers; that is F1 over these rows.
    metric_fns=[t5_metrics.f1_score_with_invalid, t5_metrics.accuracy],
    postprocess_fn=class_id_postprocessor(NO_YES))
