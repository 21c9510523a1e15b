"""MERV's alignment step on the cache, split (`python -m benchmarks.run lm`).

One optimizer step of the lm objective = data wait (the stream's next batch) + projectors and
mixer (forward and backward) + the frozen language model (forward, and backward down to the
visual tokens). The split is timed inside real steps: the language model's share ends when the
gradient reaches the fused visual tokens (a tensor hook), the rest of the backward is the
projectors' and mixer's.

CPU: a small Llama-shaped model (hidden 512, 4 layers, vocabulary 32,000), the four MERV
encoders' widths and 16 x 8 x 8 = 1,024 visual tokens, batch 2, captions of 48 tokens.
`benchmarks.gpu_lm` runs the same code at Llama-2-7B's shape in bf16 on a GPU.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch

WIDTHS = {"languagebind": 1024, "dinov2": 1024, "vivit": 768, "siglip": 768}


@dataclass
class LlamaShape:
    hidden: int = 512
    layers: int = 4
    heads: int = 8
    intermediate: int = 1376
    vocab: int = 32000


def random_language_model(shape: LlamaShape, words: list[str], device, dtype):
    """A random Llama of ``shape`` built in place on ``device`` (7B at bf16 never touches the
    CPU), with a word tokenizer over ``words`` (ids < vocab)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from mixer.lm.backbone import LanguageModel
    from mixer.lm.tiny import word_tokenizer

    tok = word_tokenizer(words)
    config = LlamaConfig(
        vocab_size=max(shape.vocab, len(tok)), hidden_size=shape.hidden,
        intermediate_size=shape.intermediate, num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads, num_key_value_heads=shape.heads,
        max_position_embeddings=4096, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.requires_grad_(False)
    return LanguageModel(model.eval(), tok, f"random Llama {shape}")


def step_split(shape: LlamaShape, device: str = "cpu", precision: str = "fp32", batch: int = 2,
               steps: int = 4, caption_words: int = 44) -> dict[str, float]:  # fmt: skip
    """Median seconds per step: data wait, projectors + mixer, language model, whole step."""
    from benchmarks.training_bench import write_random_store
    from mixer import MervMixer, ModelSpec, TrainConfig
    from mixer.selection import select_rows
    from mixer.steps import autocast, to_device
    from mixer.stream import FeatureStream, StreamConfig
    from mixer.trainer import build_optimizer

    words = [f"w{i}" for i in range(200)]
    rows = batch * (steps + 1)
    dev = torch.device(device)
    dtype = torch.bfloat16 if precision == "bf16" and dev.type == "cuda" else torch.float32
    with tempfile.TemporaryDirectory() as tmp:
        store = f"{tmp}/s.zarr"
        rng = np.random.default_rng(0)
        captions = [" ".join(rng.choice(words, caption_words)) for _ in range(rows)]
        write_random_store(store, rows, WIDTHS, columns={"caption": captions})
        cfg = TrainConfig(store=store, objective="lm", d_model=shape.hidden, batch_size=batch,
                          epochs=1, val_fraction=0.0, precision=precision,
                          objective_options={"model": "random", "format": "align"},
                          fusion_options={})  # fmt: skip
        data = select_rows(cfg, log=lambda *_: None)
        model = MervMixer(ModelSpec.from_train_config(cfg, data)).to(dev)
        model.head.__dict__["_lm"] = random_language_model(shape, words, dev, dtype)
        model.head.attach(data.texts)
        opt, _ = build_optimizer(model, cfg, rows)
        stream = FeatureStream(store, data.encoders, data.rows, StreamConfig(batch, num_workers=1),
                               data.targets)  # fmt: skip
        times: dict[str, list[float]] = {"data": [], "mixer": [], "lm": [], "step": []}
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        with stream:
            waited = time.perf_counter()
            for b in stream.epoch(0):
                t0 = time.perf_counter()
                feats, y = to_device(b, dev)
                marks: dict[str, float] = {}
                with autocast(dev, precision):
                    visual, _ = model.fuse(feats)
                    sync()
                    marks["fused"] = time.perf_counter()
                    loss, _ = model.head.loss_and_correct(visual.float(), y)
                    sync()
                    marks["lm_forward"] = time.perf_counter()

                def lm_backward_done(grad, marks=marks):
                    sync()
                    marks["lm_backward"] = time.perf_counter()
                    return grad

                visual.register_hook(lm_backward_done)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sync()
                end = time.perf_counter()
                times["data"].append(t0 - waited)
                times["lm"].append(
                    marks["lm_forward"]
                    - marks["fused"]
                    + marks["lm_backward"]
                    - marks["lm_forward"]
                )
                times["mixer"].append(marks["fused"] - t0 + end - marks["lm_backward"])
                times["step"].append(end - waited)
                waited = time.perf_counter()
    return {k: statistics.median(v[1:]) for k, v in times.items()}  # the first step warms up


def report(shape: LlamaShape, split: dict[str, float], where: str, batch: int = 2) -> None:
    print(f"alignment step, {where}: Llama-shaped hidden {shape.hidden}, {shape.layers} layers, "
          f"vocabulary {shape.vocab}; 4 encoders x 1024 visual tokens, batch {batch}")  # fmt: skip
    total = split["step"]
    for key, title in (("data", "data wait"), ("mixer", "projectors + mixer (fwd + bwd)"),
                       ("lm", "language model (fwd + bwd)")):  # fmt: skip
        print(f"  {title:34s} {split[key] * 1000:9.1f} ms  {100 * split[key] / total:5.1f}%")
    print(f"  {'whole step':34s} {total * 1000:9.1f} ms")


def main(argv: list[str] | None = None) -> int:
    del argv
    shape = LlamaShape()
    torch.manual_seed(0)
    report(shape, step_split(shape), "CPU fp32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
