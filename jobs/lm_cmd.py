"""`merv eval`, `merv generate`, `merv export`, `merv import`: using and moving lm checkpoints.

Each subcommand dispatches itself (``args.handler``); a ValueError of the data or the
checkpoint becomes one line and exit code 2 in ``jobs.cli``.
"""

from __future__ import annotations

import json


def add_parsers(sub) -> None:
    p = sub.add_parser("eval", help="score an lm checkpoint on the cache: held-out loss, MCQ",
                       description="Held-out caption/answer loss and perplexity of an lm "
                       "checkpoint, and multiple-choice accuracy by option log-likelihood.")  # fmt: skip
    p.add_argument("store")
    p.add_argument("--checkpoint", required=True, help="folder of model.safetensors")
    p.add_argument("--mcq", help="CSV/JSONL/Parquet: video_id, question, options, answer")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_eval)

    p = sub.add_parser("generate", help="the lm checkpoint's answer about one stored video")
    p.add_argument("store")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--video-id", required=True, dest="video_id")
    p.add_argument("--question", help="finetune models: the question (default: <video>)")
    p.set_defaults(handler=_generate)

    p = sub.add_parser("export", help="write a checkpoint in another format",
                       description="--format merv: the reference MERV checkpoint file "
                       "(torch.save({'model': {'projectors', 'feature_fusion'}})).")  # fmt: skip
    p.add_argument("checkpoint")
    p.add_argument("--format", default="merv", choices=["merv"])
    p.add_argument("--out", required=True, help="file to write, e.g. merv-projectors.pt")
    p.set_defaults(handler=_export)

    p = sub.add_parser("import", help="read a reference MERV checkpoint into a mixer checkpoint",
                       description="Read the projectors and cross-attention mixer of a reference "
                       "MERV checkpoint (weights only) and save them as model.safetensors.")  # fmt: skip
    p.add_argument("reference", help="the reference's .pt file")
    p.add_argument("--out", required=True, help="folder for model.safetensors")
    p.add_argument("--lm", required=True, help="the language model (folder or hub id)")
    p.add_argument("--encoders", help="store names of the 4 encoders, in reference order")
    p.add_argument("--prompt", default="pure", help="prompt builder (pure, vicuna)")
    p.add_argument("--text-format", default="finetune", dest="text_format", help="align|finetune")
    p.set_defaults(handler=_import)


def _eval(args, echo=print) -> int:
    from mixer.checkpoint import saved_train_config
    from mixer.distill.student import scored_like_teacher
    from mixer.lm.evaluate import (
        held_out_loss,
        load_lm_checkpoint,
        multiple_choice,
        read_mcq,
    )

    model = load_lm_checkpoint(args.checkpoint)
    # a distilled student is scored on its teacher's held-out rows and text
    config = scored_like_teacher(saved_train_config(args.checkpoint, args.store), args.store)
    report = {"held_out": held_out_loss(model, config, lambda *_: None)}
    if args.mcq:
        report["multiple_choice"] = multiple_choice(model, args.store, read_mcq(args.mcq))
    if args.json:
        echo(json.dumps(report))
        return 0
    h = report["held_out"]
    echo(f"held-out: {h['videos']} videos, {h['tokens']} answer tokens, loss {h['loss']:.4f}, "
         f"perplexity {h['perplexity']:.2f}")  # fmt: skip
    if args.mcq:
        m = report["multiple_choice"]
        echo(f"multiple choice: {m['questions']} questions, accuracy {100 * m['accuracy']:.1f}% "
             f"(chance {100 * m['chance']:.1f}%)")  # fmt: skip
    return 0


def _generate(args, echo=print) -> int:
    from mixer.lm.evaluate import answer, load_lm_checkpoint

    echo(answer(load_lm_checkpoint(args.checkpoint), args.store, args.video_id, args.question))
    return 0


def _export(args, echo=print) -> int:
    from mixer import load_model
    from mixer.export import save_reference_checkpoint

    path = save_reference_checkpoint(load_model(args.checkpoint), args.out)
    echo(f"wrote {path} (reference MERV layout: model.projectors, model.feature_fusion)")
    return 0


def _import(args, echo=print) -> int:
    from mixer import save_model
    from mixer.export import load_reference_checkpoint

    options = {"model": args.lm, "prompt": args.prompt, "format": args.text_format}
    encoders = args.encoders.split(",") if args.encoders else None
    model = load_reference_checkpoint(args.reference, encoders, objective_options=options)
    path = save_model(model, f"{args.out}/model.safetensors")
    echo(f"wrote {path}: encoders {model.spec.encoders}, d_model {model.spec.d_model}")
    return 0
