"""The `flan-tune` command line: one subcommand per stage of the system."""

import argparse
import os
import sys
import textwrap
from typing import List, Optional, Sequence

from flan_tune.errors import FlanTuneError
from flan_tune.launch_config import (GIN_FLAG, parse_gin, parse_lengths,  # noqa: F401
                                     split_gin_flags)

DEFAULT_MODULES = ("flan_tune_tasks",)


def import_task_modules(modules: Sequence[str]) -> None:
  from flan_tune.tasks import registry

  registry.import_modules(modules)


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def _indent(text: str) -> str:
  return textwrap.indent(text, "    | ", predicate=lambda _: True)


def _inspected_members(name: str) -> dict:
  """{seqio task: share} for an instruction task, a seqio task or a mixture."""
  from flan_tune.mixtures import builder
  from flan_tune.tasks import registry

  if name in registry.task_names():
    variants = registry.variants_of(name)
    return {v.seqio_name: 1.0 / len(variants) for v in variants}
  builder.registered_provider(name, "inspect NAME")
  return builder.mixture_rates(name)


def _print_example(member: str, example: dict) -> None:
  print(f"\n-- {member}  " + "  ".join(
      f"{key} {_text(example[key])}" for key in ("template_index", "cluster", "num_exemplars")
      if key in example))
  if "inputs_pretokenized" in example:
    print(_indent(_text(example["inputs_pretokenized"])))
  if "targets_pretokenized" in example:
    print("    => " + _text(example["targets_pretokenized"]))


# Above this many members, `inspect` samples the mixture as training does instead of
# rendering every member through seqio (about a second each).
PER_TASK_LIMIT = 256


def _inspected_input(args):
  """The TrainInput to inspect: gin's (with its collections registered) when gin files are
  given, the flags overriding its name, split, lengths and seed."""
  from flan_tune.training import input_pipeline

  import_task_modules(args.module)
  if not args.name and not args.gin_file:
    raise FlanTuneError("inspect needs a task or mixture name, or the --gin_file of a run")
  if args.gin_file:
    parse_gin(args.gin_file, args.gin_bindings)
  given = {"mixture_or_task_name": args.name, "split": args.split, "seed": args.seed,
           "task_feature_lengths": args.lengths}
  return input_pipeline.TrainInput(**{k: v for k, v in given.items() if v is not None})


def inspect_command(args) -> int:
  from flan_tune.mixtures import builder
  from flan_tune.mixtures import inspection

  cfg = _inspected_input(args)
  args.name, args.split, args.seed = cfg.mixture_or_task_name, cfg.split, cfg.seed
  members = _inspected_members(args.name)
  if args.mode == "sampled" or (args.mode == "auto" and len(members) > PER_TASK_LIMIT):
    return _inspect_sampled(cfg, args, members)
  capped = builder.capped_rates(args.name)
  lengths = dict(cfg.task_feature_lengths)
  print(f"== {args.name}: {len(members)} seqio tasks, split {args.split!r}, "
        f"lengths {lengths}")
  rendered = {member: inspection.rendered_examples(member, args.split,
                                                  max(args.examples, args.sample), lengths)
              for member in members}
  for member in sorted(members):
    for example in rendered[member][:args.examples]:
      _print_example(member, example)
  for key in ("collection", "cluster", "style"):
    rows = inspection.shares_by(members, key)
    if len(rows) > 1:
      print(f"\nMixture share by {key}:")
      print(inspection.format_shares(rows, key))
  stats = [inspection.task_stats(member, capped.get(member, share), share, args.split,
                                 rendered[member][:args.sample], lengths)
           for member, share in sorted(members.items(), key=lambda kv: -kv[1])]
  print(f"\nLengths in tokens over {args.sample} rendered examples per task (EOS included):")
  print(inspection.format_stats_table(stats, lengths))
  if args.pack_examples and cfg.pack:
    from flan_tune.training import input_stats

    packing, packer = input_stats.training_packing(cfg, members, args.pack_examples)
    _print_packing(packing, f"\nPacking {packing.examples} examples", lengths, packer)
  return 0


def _print_packing(packing, what: str, lengths: dict, packer: str) -> None:
  print(f"{what} at {lengths} with {packer}: {packing.packed_rows} rows, "
        f"{packing.examples_per_row:.2f} examples/row, non-padding fraction inputs "
        f"{100 * packing.inputs_fill:.1f}%, targets {100 * packing.targets_fill:.1f}%")


def _inspect_sampled(cfg, args, members: dict) -> int:
  """A large mixture: shares, then `--draws` examples drawn, rendered, tokenized and
  packed as training does."""
  import time

  from flan_tune.mixtures import inspection
  from flan_tune.training import input_pipeline, input_stats

  lengths = dict(cfg.task_feature_lengths)
  plan, why = input_pipeline.grain_plan(cfg)
  if plan is None:
    raise FlanTuneError(f"{args.name!r} cannot be sampled as training samples it ({why}); "
                        "inspect it with --mode=per_task")
  tasks = {m.task.name for m in plan.members}
  print(f"== {args.name}: {len(members)} seqio tasks of {len(tasks)} instruction tasks, "
        f"split {args.split!r}, lengths {lengths}, "
        f"{sum(len(m.records) for m in plan.members):,} examples")
  shown = []
  for key in ("collection", "cluster", "style"):
    rows = inspection.shares_by(members, key)
    if 1 < len(rows) <= 40 and rows not in shown:  # clusters often are the collections
      print(f"\nMixture share by {key}:")
      print(inspection.format_shares(rows, key))
      shown.append(rows)
  largest = sorted(members.items(), key=lambda kv: -kv[1])[:args.top]
  sizes = {m.name: len(m.records) for m in plan.members}
  print(f"\nThe {len(largest)} largest of {len(members)} members:")
  width = max(len(name) for name, _ in largest)
  for name, share in largest:
    print(f"  {name.ljust(width)}  {100 * share:6.3f}%  {sizes[name]:>10,} examples")
  start = time.perf_counter()
  sample = input_stats.sample_mixture(plan, args.draws, show=args.examples)
  seconds = time.perf_counter() - start
  for name, rendered in sample.shown:
    _print_example(name, {"inputs_pretokenized": rendered.inputs,
                          "targets_pretokenized": rendered.targets,
                          "template_index": rendered.template_index,
                          "num_exemplars": rendered.num_exemplars})
  print(f"\nLengths in tokens over the first {args.draws} draws of the mixture (EOS "
        f"included; rendered and tokenized in {seconds:.1f} s):")
  for key, group_of in (("collection", lambda m: m.task.collection),
                        ("style", lambda m: m.style.value)):
    print(input_stats.lengths_table(sample, group_of, key) + "\n")
  packing = input_stats.packing_stats(sample)
  _print_packing(packing, f"Packing the {packing.examples} draws", lengths,
                 f"training's best-fit packer (windows of {plan.window})")
  return 0


def _decode_options(args):
  from flan_tune.inference.infer import DecodeOptions

  return DecodeOptions(method=args.method, num_beams=args.num_beams,
                       length_penalty_alpha=args.length_penalty_alpha,
                       temperature=args.temperature, top_k=args.top_k, seed=args.seed)


def infer_command(args) -> int:
  from flan_tune.inference import infer as infer_lib

  import_task_modules(args.module)
  parse_gin([], args.gin_bindings)  # MeshConfig.* bindings, as train and eval take them
  written = infer_lib.infer(args.checkpoint, args.source, args.output, split=args.split,
                            lengths=args.lengths, batch_size=args.batch_size,
                            chunk_size=args.chunk_size, score=args.score,
                            options=_decode_options(args),
                            vocabulary_file=args.vocabulary_file)
  print(f"infer: {written} rows in {args.output}", file=sys.stderr)
  return 0


def generate_command(args) -> int:
  from flan_tune.inference import infer as infer_lib

  parse_gin([], args.gin_bindings)
  interactive = not args.instructions and sys.stdin.isatty()
  instructions = args.instructions or _stdin_lines(interactive)
  for answer in infer_lib.generate(args.checkpoint, instructions, lengths=args.lengths,
                                   options=_decode_options(args),
                                   vocabulary_file=args.vocabulary_file):
    print(answer, flush=True)
  return 0


def _stdin_lines(interactive: bool):
  """Instructions from standard input, one per line; prompts when it is a terminal."""
  while True:
    if interactive:
      print("instruction> ", end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:
      return
    if line.strip():
      yield line.rstrip("\n")


def _add_decode_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--lengths", type=parse_lengths, default="inputs=512,targets=128",
                      help="input tokens kept and tokens decoded")
  parser.add_argument("--method", choices=("greedy", "beam", "sample"), default="greedy")
  parser.add_argument("--num_beams", type=int, default=4)
  parser.add_argument("--length_penalty_alpha", type=float, default=0.6,
                      help="beam search's brevity penalty (T5X's)")
  parser.add_argument("--temperature", type=float, default=1.0)
  parser.add_argument("--top_k", type=int, default=0, help="sampling: 0 keeps every id")
  parser.add_argument("--seed", type=int, default=0, help="sampling's seed")
  parser.add_argument("--vocabulary_file",
                      help="SentencePiece model (default: the checkpoint's spiece.model)")


def import_hf_command(args) -> int:
  from flan_tune.model import checkpoint
  from flan_tune.model import hf

  config, params = hf.import_hf(args.directory)
  vocabulary = os.path.join(args.directory, hf.SPIECE_FILE)
  checkpoint.save_model(args.out, config, params,
                        vocabulary if os.path.isfile(vocabulary) else None)
  print(f"imported {args.directory} -> {args.out}: T5 d_model={config.d_model}, "
        f"{config.num_encoder_layers}+{config.num_decoder_layers} layers, vocab "
        f"{config.vocab_size}, mlp {'-'.join(config.mlp_activations)}"
        + (", spiece.model copied" if os.path.isfile(vocabulary) else ""))
  return 0


def export_hf_command(args) -> int:
  import shutil

  from flan_tune.model import checkpoint
  from flan_tune.model import hf

  from flan_tune.model import peft as peft_lib
  from flan_tune.runtime import model_setup

  recorded = model_setup.read_peft(args.checkpoint)
  if recorded is None:
    if args.adapter:
      raise FlanTuneError(f"--adapter: {args.checkpoint} is not a LoRA run (no "
                          f"{model_setup.PEFT_FILE})")
    config, params = checkpoint.load_model(args.checkpoint)
    vocabulary = checkpoint.vocabulary_file(args.checkpoint)
  else:
    config = model_setup.initial_config(args.checkpoint, "export-hf CHECKPOINT")
    peft, trained, params = model_setup.load_peft_run_on_host(args.checkpoint, config)
    if peft.method != "lora":
      raise FlanTuneError(f"{args.checkpoint} trained a soft prompt, which a transformers "
                          "T5 cannot hold; evaluate or serve it with flan-tune")
    if args.adapter:
      hf.export_peft_adapter(config, peft, trained, args.adapter,
                             base_model=os.path.abspath(args.out))
      print(f"LoRA adapters -> {args.adapter} (adapter_config.json, "
            "adapter_model.safetensors)")
    else:
      params = peft_lib.merge_lora(peft_lib.merge(trained, params), peft)
    vocabulary = checkpoint.vocabulary_file(recorded[1])
  hf.export_hf(config, params, args.out)
  if vocabulary is not None:
    shutil.copyfile(vocabulary, os.path.join(args.out, hf.SPIECE_FILE))
  print(f"exported {args.checkpoint} -> {args.out} (config.json, model.safetensors"
        + (", spiece.model)" if vocabulary is not None else ")"))
  return 0


def join_distributed(args) -> None:
  """Joins a multi-process job before JAX starts: with --coordinator_address (and
  --num_processes, --process_id) as given, or with --distributed as the cluster says
  (TPU pod slices, SLURM, Open MPI, Kubernetes). CPU processes use gloo collectives."""
  explicit = (args.coordinator_address, args.num_processes, args.process_id)
  if any(value is not None for value in explicit):
    if None in explicit:
      raise FlanTuneError("--coordinator_address, --num_processes and --process_id go "
                          "together (or use --distributed on a cluster that provides them)")
    if not 0 <= args.process_id < args.num_processes:
      raise FlanTuneError(f"--process_id={args.process_id} is not in "
                          f"[0, --num_processes={args.num_processes})")
  elif not args.distributed:
    return
  import jax

  jax.distributed.initialize(coordinator_address=args.coordinator_address,
                             num_processes=args.num_processes, process_id=args.process_id)


def _configure(args, example: str) -> None:
  """Imports the task modules, then parses the gin files and bindings."""
  import_task_modules(args.module)
  if not args.gin_file:
    raise FlanTuneError(f"no --gin_file given; e.g. {example}")
  parse_gin(args.gin_file, args.gin_bindings)


def train_command(args) -> int:
  # Registers train's configurables, and evaluation's, which train takes as a callback.
  from flan_tune.evaluation import during_training  # noqa: F401
  from flan_tune.training import train as train_lib

  join_distributed(args)
  _configure(args, "--gin_file=models/offline_demo.gin --gin_file=runs/pretrain.gin "
                   "--gin.MODEL_DIR=\"'/tmp/run'\"")
  train_lib.train()
  return 0


def eval_command(args) -> int:
  from flan_tune.evaluation import evaluate as evaluate_lib  # registers its configurables

  _configure(args, "--gin_file=runs/eval.gin --gin.CHECKPOINT_PATH=\"'/tmp/run'\" "
                   "--gin.EVAL_OUTPUT_DIR=\"'/tmp/run/eval'\"")
  evaluate_lib.evaluate()
  return 0


def _gin_value(key: str, default=None):
  """A gin binding's value with macros (%BATCH_SIZE) resolved; `default` if unbound."""
  import gin

  try:
    value = gin.query_parameter(key)
  except ValueError:
    return default
  while isinstance(value, gin.config.ConfigurableReference) and value.evaluate:
    value = value.scoped_configurable_fn()
  return value


def _plan_setting(given, key: str, flag: str):
  """A plan flag, else the run gin's binding for it; an error names both when neither."""
  value = given if given is not None else _gin_value(key)
  if value is None:
    raise FlanTuneError(f"no {flag} given and gin binds no {key}")
  return value


def plan_command(args) -> int:
  import dataclasses
  import json

  import functools

  from flan_tune.model import peft as peft_lib
  from flan_tune.model.config import T5Config
  from flan_tune.runtime import partitioning
  from flan_tune.training import memory_plan, optimizers

  if not args.gin_file:
    raise FlanTuneError("no --gin_file given; e.g. --gin_file=models/t5_1_1_xxl.gin")
  parse_gin(args.gin_file, args.gin_bindings)
  if args.mesh is None:
    mesh_config = partitioning.MeshConfig()
    if -1 in (mesh_config.data, mesh_config.model):
      raise FlanTuneError("no --mesh given (e.g. --mesh=data=64,model=4); gin's MeshConfig "
                          "leaves an axis to the device count")
    mesh = {"data": mesh_config.data, "model": mesh_config.model}
  else:
    mesh = memory_plan.parse_mesh(args.mesh)
  lengths = _plan_setting(args.lengths, "TrainInput.task_feature_lengths", "--lengths")
  try:
    lengths = parse_lengths(lengths if isinstance(lengths, str) else ",".join(
        f"{key}={value}" for key, value in dict(lengths).items()))
  except argparse.ArgumentTypeError as e:
    raise FlanTuneError(f"--lengths: {e}") from None
  config = T5Config()
  gin_peft = peft_lib.PeftConfig()  # runs/lora.gin or runs/prompt_tuning.gin bind it
  plan = functools.partial(
      memory_plan.plan, config, optimizers.planned(args.optimizer), mesh,
      args.rules or _gin_value("MeshConfig.rules", "standard"),
      int(_plan_setting(args.batch_size, "TrainInput.batch_size", "--batch_size")), lengths,
      num_microbatches=int(args.num_microbatches if args.num_microbatches is not None
                           else _gin_value("train.num_microbatches", 1)),
      device_memory=(memory_plan.parse_memory(args.device_memory)
                     if args.device_memory else None),
      headroom=args.headroom)
  result = plan(peft=gin_peft)
  print(memory_plan.format_plan(result, config))
  print()
  print(memory_plan.format_methods([
      plan(peft=dataclasses.replace(gin_peft, method=method)) for method in peft_lib.METHODS]))
  if args.json:
    with open(args.json, "w") as f:
      json.dump({**result.to_json(), "config": dataclasses.asdict(config)}, f, indent=2)
  return 0 if result.fits is not False else 1


def _add_plan_arguments(plan: argparse.ArgumentParser) -> None:
  """`flan-tune plan` flags; those left out come from the run gin's bindings."""
  plan.add_argument("--gin_file", action="append", default=[],
                    help="model (and optionally run) gin file, searched also among "
                         "flan-tune's own (gin/) (repeatable)")
  plan.add_argument("--mesh", help="mesh axis sizes, e.g. data=64,model=4 (default: gin's "
                                   "MeshConfig when it fixes both)")
  plan.add_argument("--rules", choices=("standard", "fsdp"),
                    help="logical-axis rules (default: gin's MeshConfig.rules or standard)")
  plan.add_argument("--batch_size", type=int,
                    help="global batch size (default: gin's TrainInput.batch_size)")
  plan.add_argument("--lengths", help="feature lengths, e.g. inputs=512,targets=128 "
                                      "(default: gin's TrainInput.task_feature_lengths)")
  plan.add_argument("--num_microbatches", type=int,
                    help="gradient-accumulation microbatches (default: gin's "
                         "train.num_microbatches or 1)")
  plan.add_argument("--optimizer", choices=("adafactor", "adamw"),
                    help="default: gin's train.optimizer, or Adafactor")
  plan.add_argument("--device_memory", help="memory of one device, e.g. 80GiB, 16GB")
  plan.add_argument("--headroom", type=float, default=0.1,
                    help="fraction of --device_memory kept free for XLA and the runtime "
                         "(default 0.1)")
  plan.add_argument("--json", help="also write the plan to this JSON file")


def _add_gin_arguments(parser: argparse.ArgumentParser) -> None:
  """The flags `train` and `eval` share; their --gin.KEY=VALUE flags bind after the files."""
  parser.add_argument("--gin_file", action="append", default=[],
                      help="gin file, searched also among flan-tune's own (gin/) (repeatable)")
  parser.add_argument("--module", action="append", default=None,
                      help="module or .py file that registers tasks (repeatable; default: "
                           "flan_tune_tasks); gin can also name one: *.mixture_or_task_module")


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="flan-tune", description=__doc__)
  commands = parser.add_subparsers(dest="command", required=True)
  inspect = commands.add_parser(
      "inspect", help="render examples of a task or mixture and print its statistics")
  inspect.add_argument("name", nargs="?",
                       help="an instruction task, seqio task or mixture name (default: the "
                            "gin run's TrainInput.mixture_or_task_name)")
  _add_gin_arguments(inspect)
  inspect.add_argument("--split", default=None, help="default: the gin run's, else train")
  inspect.add_argument("--examples", type=int, default=1,
                       help="examples rendered per task and prompt style (a large mixture: "
                            "in all)")
  inspect.add_argument("--sample", type=int, default=200,
                       help="examples per task for length statistics")
  inspect.add_argument("--lengths", type=parse_lengths, default=None,
                       help="feature lengths in tokens, e.g. inputs=512,targets=128 "
                            "(default: the gin run's, else 512/128)")
  inspect.add_argument("--pack_examples", type=int, default=2000,
                       help="examples packed to measure packing efficiency (0: skip)")
  inspect.add_argument("--seed", type=int, default=None)
  inspect.add_argument("--draws", type=int, default=10000,
                       help="sampled mode: examples drawn from the mixture, as training draws "
                            "them, for lengths and packing")
  inspect.add_argument("--top", type=int, default=20,
                       help="sampled mode: its largest members listed")
  inspect.add_argument("--mode", choices=("auto", "per_task", "sampled"), default="auto",
                       help="per_task: every member rendered through seqio (--sample each); "
                            "sampled: --draws drawn from the mixture as training draws them; "
                            f"auto: sampled above {PER_TASK_LIMIT} members")
  inspect.set_defaults(run=inspect_command)
  import_hf = commands.add_parser(
      "import-hf", help="convert a transformers T5 checkpoint directory to a flan-tune model")
  import_hf.add_argument("directory", help="HF directory: config.json + *.safetensors")
  import_hf.add_argument("out", help="new flan-tune model directory")
  import_hf.set_defaults(run=import_hf_command)
  export_hf = commands.add_parser(
      "export-hf", help="write a flan-tune model as a transformers T5 checkpoint directory")
  export_hf.add_argument("checkpoint", help="flan-tune model directory (from import-hf), or a "
                         "LoRA run (its adapters merged into the weights)")
  export_hf.add_argument("out", help="directory for config.json + model.safetensors")
  export_hf.add_argument("--adapter", help="with a LoRA run: write its adapters here as a "
                         "Hugging Face PEFT adapter directory, and the unmerged base to OUT")
  export_hf.set_defaults(run=export_hf_command)
  train = commands.add_parser(
      "train", help="train or fine-tune a T5 as gin configures it (T5X conventions)",
      description="Trains as the gin files configure it; --gin.KEY=VALUE (repeatable, a gin "
                  "literal value) binds after every file, e.g. --gin.train.train_steps=100.")
  _add_gin_arguments(train)
  hosts = train.add_argument_group(
      "multi-process jobs", "every process runs the same command with its own --process_id")
  hosts.add_argument("--coordinator_address", help="HOST:PORT of process 0's coordinator")
  hosts.add_argument("--num_processes", type=int)
  hosts.add_argument("--process_id", type=int)
  hosts.add_argument("--distributed", action="store_true",
                     help="join the job the cluster describes (TPU pods, SLURM, MPI)")
  train.set_defaults(run=train_command)
  evaluate = commands.add_parser(
      "eval", help="evaluate a checkpoint on an evaluation mixture (gin: runs/eval.gin)",
      description="Evaluates as the gin files configure it; --gin.KEY=VALUE binds after "
                  "every file, e.g. --gin.CHECKPOINT_PATH=\"'/tmp/run'\".")
  _add_gin_arguments(evaluate)
  evaluate.set_defaults(run=eval_command)
  infer = commands.add_parser(
      "infer", help="a checkpoint's predictions for a task, mixture or JSONL file (T5X's "
                    "infer.py), written as JSONL; a rerun continues where one stopped",
      description="Decodes on the mesh --gin.MeshConfig.* bindings describe, as eval does.")
  infer.add_argument("checkpoint", help="anything eval takes: a model directory, a "
                                        "transformers directory or a training run")
  infer.add_argument("source", help="a task or mixture name, or a .jsonl file of "
                                    "{\"inputs\": ...} rows (optionally \"targets\")")
  infer.add_argument("--output", required=True, help="JSONL file of predictions")
  infer.add_argument("--split", default="validation", help="a task's or mixture's split")
  infer.add_argument("--module", action="append", default=None,
                     help="module that registers tasks (repeatable; default: flan_tune_tasks)")
  infer.add_argument("--batch_size", type=int, default=32)
  infer.add_argument("--chunk_size", type=int, default=256,
                     help="rows written and flushed together")
  infer.add_argument("--score", action="store_true",
                     help="also write each row's log-likelihood of its targets")
  _add_decode_arguments(infer)
  infer.set_defaults(run=infer_command)
  generate = commands.add_parser(
      "generate", help="try instructions on a checkpoint: given, or one per line of stdin")
  generate.add_argument("checkpoint")
  generate.add_argument("instructions", nargs="*",
                        help="instructions to answer (none: read them from stdin)")
  _add_decode_arguments(generate)
  generate.set_defaults(run=generate_command)
  from flan_tune.evaluation import compare as compare_lib  # light: numpy, no TensorFlow

  plan = commands.add_parser(
      "plan", help="per-device memory of a training run on a mesh, without the devices",
      description="Plans per-device params, optimizer state, gradients and activations of "
                  "the T5 the gin files configure; --gin.KEY=VALUE binds after every file. "
                  "Exits 1 when it does not fit --device_memory.")
  _add_plan_arguments(plan)
  plan.set_defaults(run=plan_command)
  compare = commands.add_parser(
      "compare", help="per-task comparison table of evaluation results against a baseline")
  compare_lib.add_arguments(compare)
  compare.set_defaults(run=compare_lib.run)
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  argv, gin_bindings = split_gin_flags(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  args = parser.parse_args(argv)
  if gin_bindings and args.command not in ("train", "eval", "plan", "inspect", "infer",
                                           "generate"):
    parser.error(f"{GIN_FLAG}KEY=VALUE flags are for `flan-tune train`, `eval`, `plan`, "
                 "`inspect`, `infer` and `generate` only")
  args.gin_bindings = gin_bindings
  if getattr(args, "module", None) is None:
    args.module = list(DEFAULT_MODULES)
  try:
    return args.run(args)
  except FlanTuneError as e:
    print(f"flan-tune {args.command}: error: {e}", file=sys.stderr)
    return 2
  except Exception as e:  # errors raised while tf.data renders carry our message inside
    if not type(e).__module__.startswith("tensorflow"):
      raise
    print(f"flan-tune {args.command}: error while reading data: {str(e).strip()}",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
