"""Template families shared by datasets of the same shape, in our own words.

FLAN reuses one wording family across datasets of a kind (its NLI datasets share
templates); a family here is a function returning fresh `Template`s over named fields,
and a dataset adds its own on top where its fields allow more. Fields such as `{kind}`
("movie review", "tweet") let one family read naturally for each dataset.
"""

from flan_tune.tasks import Template

T = Template


def inverted(inputs: str, targets: str) -> Template:
  return Template(inputs, targets, inverted=True)


def entailment():
  """Fields: premise, hypothesis, label (an option)."""
  return [
      T("Premise: {premise}\nHypothesis: {hypothesis}\n\nDoes the premise entail the "
        "hypothesis?\n{options_}", "{label}"),
      T("{premise}\n\nBased on the passage above, is it true that \"{hypothesis}\"?\n"
        "{options_}", "{label}"),
      T("Read the statement and decide whether the claim follows from it.\n"
        "Statement: {premise}\nClaim: {hypothesis}\n{options_}", "{label}"),
      T("Suppose this is true: {premise}\nCan we then infer that \"{hypothesis}\"?\n"
        "{options_}", "{label}"),
      T("Here is a text: {premise}\n\nDoes it follow that {hypothesis}\n{options_}",
        "{label}"),
      T("Given the sentence \"{premise}\", would you say that \"{hypothesis}\" is "
        "true?\n{options_}", "{label}"),
      T("{premise}\nQuestion: is \"{hypothesis}\" supported by what you just read?\n"
        "{options_}", "{label}"),
      T("Text one: {premise}\nText two: {hypothesis}\nIf text one is true, must text "
        "two be true as well? {options_}", "{label}"),
      T("Check this inference.\nStarting point: {premise}\nConclusion: {hypothesis}\n"
        "Is the conclusion justified by the starting point? {options_}", "{label}"),
      inverted("Passage: {premise}\n\nWrite a claim about this passage such that the "
               "answer to \"does the passage back it up?\" is \"{label}\".",
               "{hypothesis}"),
      inverted("Here is a claim: {hypothesis}\nWrite a short passage for which the "
               "claim gets the verdict \"{label}\".", "{premise}"),
  ]


def sentiment():
  """Fields: text, label (an option), kind ("movie review", "tweet", ...)."""
  return [
      T("{text}\n\nIs this {kind} positive or negative?\n{options_}", "{label}"),
      T("Here is a {kind}: {text}\nHow does the writer feel about the subject? "
        "{options_}", "{label}"),
      T("What is the sentiment of the following {kind}?\n{text}\n{options_}", "{label}"),
      T("\"{text}\"\nWould you call the tone of this {kind} positive or negative? "
        "{options_}", "{label}"),
      T("Decide whether the author of this {kind} was pleased or displeased.\n\n{text}\n"
        "{options_}", "{label}"),
      T("Read the {kind} below and label its sentiment.\n{text}\n{options_}", "{label}"),
      T("{text}\nThe attitude expressed in this {kind} is... {options_}", "{label}"),
      T("Classify this {kind} by its emotional tone: {text}\n{options_}", "{label}"),
      T("Does the following {kind} express a favorable or an unfavorable opinion?\n"
        "{text}\n{options_}", "{label}"),
      inverted("Write a {label} {kind}.", "{text}"),
      inverted("Compose a {kind} whose overall sentiment is {label}.", "{text}"),
  ]


def paraphrase():
  """Fields: sentence1, sentence2, label (yes/no), kind ("sentences", "questions")."""
  return [
      T("First: {sentence1}\nSecond: {sentence2}\n\nDo these two {kind} say the same "
        "thing?\n{options_}", "{label}"),
      T("\"{sentence1}\" and \"{sentence2}\"\nAre these two {kind} paraphrases of each "
        "other? {options_}", "{label}"),
      T("Is the meaning of the first of these {kind} kept in the second?\n"
        "1: {sentence1}\n2: {sentence2}\n{options_}", "{label}"),
      T("{sentence1}\n{sentence2}\nDo the two lines above express the same idea? "
        "{options_}", "{label}"),
      T("Compare these {kind}:\nA: {sentence1}\nB: {sentence2}\nAre A and B equivalent "
        "in meaning? {options_}", "{label}"),
      T("Could you replace \"{sentence1}\" with \"{sentence2}\" without changing what is "
        "meant?\n{options_}", "{label}"),
      T("Here are two {kind}. {sentence1} / {sentence2}\nWould a careful reader treat "
        "them as the same? {options_}", "{label}"),
      T("Decide whether the following pair is a paraphrase.\n(1) {sentence1}\n"
        "(2) {sentence2}\n{options_}", "{label}"),
      inverted("Here is one of two {kind}: {sentence1}\nWrite the other one so that the "
               "answer to \"do they mean the same?\" is {label}.", "{sentence2}"),
  ]


def multiple_choice():
  """Closed-book multiple choice. Fields: question, answer, topic; per-example options."""
  return [
      T("{question}\n{options_}", "{answer}"),
      T("Answer the following multiple-choice question.\n{question}\n{options_}",
        "{answer}"),
      T("Question: {question}\n{options_}\nAnswer:", "{answer}"),
      T("Pick the correct answer to this question: {question}\n{options_}", "{answer}"),
      T("{question}\n\nWhich of the choices below is right?\n{options_}", "{answer}"),
      T("Test question on {topic}: {question}\nSelect the best answer. {options_}",
        "{answer}"),
      T("Use what you know about {topic} to answer.\n{question}\n{options_}", "{answer}"),
      T("Here is a question about {topic}.\n\n{question}\n\n{options_}", "{answer}"),
      T("Q: {question}\n{options_}\nThe correct choice is:", "{answer}"),
      inverted("Write a {topic} question whose correct answer is \"{answer}\".",
               "{question}"),
  ]


def passage_choice():
  """Multiple choice over a text. Fields: context, question, answer; per-example options."""
  return [
      T("{context}\n\n{question}\n{options_}", "{answer}"),
      T("Read the passage and answer the question.\n\n{context}\n\nQuestion: {question}\n"
        "{options_}", "{answer}"),
      T("Context: {context}\nQuestion: {question}\n{options_}\nAnswer:", "{answer}"),
      T("{question}\n\nUse this text to decide: {context}\n{options_}", "{answer}"),
      T("Here is some information: {context}\n\nWith that in mind, answer: {question}\n"
        "{options_}", "{answer}"),
      T("Based on the following, pick the best answer.\n{context}\n{question}\n{options_}",
        "{answer}"),
      T("{context}\nAccording to the text above: {question}\n{options_}", "{answer}"),
      T("Answer using the passage. Passage: {context} Question: {question} {options_}",
        "{answer}"),
      inverted("{context}\n\nWrite a question about this text that has \"{answer}\" as its "
               "answer.", "{question}"),
  ]


def extractive_qa():
  """Fields: context, question, answer."""
  return [
      T("{context}\n\nAnswer this question using the passage above: {question}",
        "{answer}"),
      T("Read the text and answer the question.\n\nText: {context}\nQuestion: {question}",
        "{answer}"),
      T("Passage: {context}\n\nQ: {question}\nA:", "{answer}"),
      T("{question}\n\nFind the answer in the following passage:\n{context}", "{answer}"),
      T("Here is some background: {context}\n\nNow answer: {question}", "{answer}"),
      T("Using only the information given, respond to the question.\n{context}\n\n"
        "Question: {question}\nAnswer:", "{answer}"),
      T("Context: {context}\nWhat is the answer to \"{question}\"?", "{answer}"),
      T("{context}\n\nBased on that text, answer: {question}", "{answer}"),
      inverted("{context}\n\nWrite a question about the passage above whose answer is "
               "\"{answer}\".", "{question}"),
      inverted("Make up a reading-comprehension question for this text.\n\n{context}",
               "{question}"),
  ]


def closed_book_qa():
  """Fields: question, answer."""
  return [
      T("{question}", "{answer}"),
      T("Answer the following question: {question}", "{answer}"),
      T("Q: {question}\nA:", "{answer}"),
      T("Without looking anything up, what is the answer? {question}", "{answer}"),
      T("Quiz question: {question}", "{answer}"),
      T("Please answer this: {question}", "{answer}"),
      T("Question: {question}\nWhat is the answer?", "{answer}"),
      T("What would you say is the answer to this question?\n{question}", "{answer}"),
      inverted("Write a question whose answer is \"{answer}\".", "{question}"),
      inverted("Here is an answer: {answer}\nWhat question might it be answering?",
               "{question}"),
  ]


def summarization():
  """Fields: text, summary, kind ("news article"), summary_kind ("headline")."""
  return [
      T("{text}\n\nWrite the {summary_kind} for the {kind} above.", "{summary}"),
      T("Here is a {kind}: {text}\n\nWhat would be a good {summary_kind} for it?",
        "{summary}"),
      T("Summarize this {kind}:\n\n{text}", "{summary}"),
      T("Condense the following {kind} into a {summary_kind}.\n\n{text}", "{summary}"),
      T("Read the {kind} and give a brief summary.\n{text}\nSummary:", "{summary}"),
      T("What is the gist of this {kind}?\n\n{text}", "{summary}"),
      T("{text}\n\nBriefly, what is this {kind} about?", "{summary}"),
      T("Produce a {summary_kind} that captures the main points of this {kind}: {text}",
        "{summary}"),
      inverted("Write a {kind} based on this {summary_kind}: {summary}", "{text}"),
  ]


def translation():
  """Fields: source, target, source_language, target_language."""
  return [
      T("Translate to {target_language}:\n\n{source}", "{target}"),
      T("{source}\n\nHow would you say this in {target_language}?", "{target}"),
      T("Render this {source_language} text in {target_language}: {source}", "{target}"),
      T("{source_language}: {source}\n{target_language}:", "{target}"),
      T("Please give the {target_language} version of the following sentence.\n{source}",
        "{target}"),
      T("Here is a sentence in {source_language}: {source}\nWhat does it say in "
        "{target_language}?", "{target}"),
      T("Convert from {source_language} to {target_language}.\n\n{source}", "{target}"),
      T("I need this in {target_language}, please: {source}", "{target}"),
      inverted("Translate this {target_language} sentence into {source_language}:\n"
               "{target}", "{source}"),
      inverted("{target}\n\nWrite the same thing in {source_language}.", "{source}"),
  ]


def data_to_text():
  """Fields: data, text, kind ("restaurant attributes")."""
  return [
      T("Write a sentence that expresses this data: {data}", "{text}"),
      T("Data: {data}\n\nDescribe the data above in plain English.", "{text}"),
      T("{data}\n\nTurn these {kind} into fluent text.", "{text}"),
      T("Here are some {kind}: {data}\nWrite a short description that uses all of them.",
        "{text}"),
      T("Generate a natural-language sentence from the following {kind}.\n{data}",
        "{text}"),
      T("Put this structured input into words: {data}", "{text}"),
      T("Express the following {kind} as a sentence or two:\n\n{data}", "{text}"),
      T("Input: {data}\nOutput (a fluent description):", "{text}"),
      inverted("List the {kind} stated in this text:\n{text}", "{data}"),
  ]
