"""MERV's language-model objective with a tiny Llama (random-initialised, pre-trained on the
captions' text only, then frozen): visual tokens right after BOS, a frozen LM that gets no
gradient, alignment that makes held-out videos' captions the likeliest and generated, and
reference checkpoints that round-trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from jobs.cli import main
from mixer import MervMixer, ModelSpec, load_model
from mixer.lm.prompts import IGNORE
from mixer.lm.text import Conversation
from mixer.lm.tiny import make_tiny_lm
from mixer.steps import autocast, train_step
from mixer.stream import Batch
from tests.mixer.conftest import separable, write_store

CAPTIONS = ["a red ball moves left", "a blue ball moves right"]
N = 48
PARTS = ["val" if i % 6 < 2 else "train" for i in range(N)]  # 8 held-out videos per class


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm") / "tiny-llama"
    make_tiny_lm(folder, CAPTIONS, steps=300)
    return str(folder)


@pytest.fixture(scope="module")
def caption_store(tmp_path_factory):
    feats, y = separable(N, {"a": 8, "b": 8}, informative="a", margin=2.0)
    url = str(tmp_path_factory.mktemp("store") / "captions.zarr")
    columns = {"caption": [CAPTIONS[v] for v in y], "split": PARTS}
    write_store(url, feats, None, shard_size=16, columns=columns)
    return url, y


def lm_model(tiny_lm, fmt="finetune", n_tokens_grid=1):
    spec = ModelSpec(encoders=["a", "b"], widths=[8, 8], time_steps=16,
                     tokens_per_step=n_tokens_grid, num_classes=0, d_model=64,
                     fusion_options={"attn_dim": 16}, objective="lm",
                     objective_options={"model": tiny_lm, "format": fmt})  # fmt: skip
    torch.manual_seed(0)
    return MervMixer(spec)


def test_visual_tokens_sit_right_after_bos_and_are_never_supervised(tiny_lm):
    model = lm_model(tiny_lm)
    head = model.head
    convs = [Conversation([("human", "<video>"), ("gpt", "red")]),
             Conversation([("human", "what colour ?"), ("gpt", "a blue ball")])]  # fmt: skip
    head.attach(convs)
    visual = torch.randn(2, 16, 64)
    batch = head.batch(visual, torch.tensor([0, 1]))
    emb, mask, labels = batch["inputs_embeds"], batch["attention_mask"], batch["labels"]
    ids = [torch.tensor(head.samples[i][0]) for i in range(2)]
    table = head.lm.model.get_input_embeddings()
    for row in range(2):
        n = len(ids[row])
        assert ids[row][0] == head.lm.tokenizer.bos_token_id
        torch.testing.assert_close(emb[row, 0], table(ids[row][:1])[0])  # BOS first
        torch.testing.assert_close(emb[row, 1:17], visual[row])  # then the 16 visual tokens
        torch.testing.assert_close(emb[row, 17 : 16 + n], table(ids[row][1:]))  # then the text
        assert (labels[row, :17] == IGNORE).all() and (mask[row, : 16 + n] == 1).all()
        supervised = labels[row, 17 : 16 + n]
        assert supervised.tolist() == head.samples[row][1][1:]
        assert (mask[row, 16 + n :] == 0).all() and (labels[row, 16 + n :] == IGNORE).all()
    assert mask.shape[1] == 16 + max(len(i) for i in ids)  # right-padded to the longest


def test_the_language_model_gets_no_gradient_and_stays_bitwise_unchanged(tiny_lm):
    model = lm_model(tiny_lm, fmt="align")
    model.head.attach([Conversation([("human", "<video>"), ("gpt", c)]) for c in CAPTIONS])
    lm = model.head.lm.model
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    projector = model.projectors[0].projector.weight.detach().clone()
    assert not any(p is q for p in model.parameters() for q in lm.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    from mixer import TrainConfig

    cfg = TrainConfig(store="unused")
    feats = [
        np.random.default_rng(k).normal(size=(2, 16, 1, 8)).astype(np.float16) for k in range(2)
    ]
    batch = Batch(0, 0, np.arange(2), feats, np.array([0, 1]), 2)
    for _ in range(3):
        train_step(model, opt, sched, batch, torch.device("cpu"), cfg, autocast, 1)
    assert all(p.grad is None and not p.requires_grad for p in lm.parameters())
    after = lm.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(projector, model.projectors[0].projector.weight)  # the mixer learns
    assert "head._lm" not in model.state_dict() and not any(
        k.startswith("head.") for k in model.state_dict()
    )


def run(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    out = capsys.readouterr()
    assert stop.value.code == 0, out.err
    return out.out


def test_alignment_then_eval_generate_export_and_import(tiny_lm, caption_store, tmp_path, capsys):
    url, y = caption_store
    out = tmp_path / "aligned"
    run(capsys, "train", url, "--lm", tiny_lm, "--text-format", "align", "--split-column",
        "split", "--pool-grid", "1", "--epochs", "60", "--batch-size", "8", "--lr", "1e-2",
        "--out", str(out), "--loader-workers", "0", "--no-progress")  # fmt: skip
    losses = [json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert np.mean(losses[-5:]) < 0.25 * np.mean(losses[:5])  # the loss falls

    held_out = [i for i in range(N) if PARTS[i] == "val"]
    mcq = tmp_path / "mcq.jsonl"
    mcq.write_text("".join(json.dumps({"video_id": f"vid{i:04d}", "options": CAPTIONS,
                                       "answer": int(y[i])}) + "\n" for i in held_out))  # fmt: skip
    report = json.loads(
        run(capsys, "eval", url, "--checkpoint", str(out), "--mcq", str(mcq), "--json")
    )
    assert (
        report["multiple_choice"]["questions"] == 16 and report["multiple_choice"]["chance"] == 0.5
    )
    assert report["multiple_choice"]["accuracy"] >= 0.9  # clearly above chance
    assert report["held_out"]["videos"] == 16 and report["held_out"]["perplexity"] < 2.0

    # a student of the informative encoder alone, distilled from the aligned mixture, serves
    # the same language model: its tokens answer the held-out questions as well
    student = tmp_path / "student"
    said = run(capsys, "distill", url, "--teacher", str(out), "--student-encoders", "a",
               "--out", str(student), "--loader-workers", "0", "--no-progress")  # fmt: skip
    assert "student a vs teacher a+b on 16 held-out videos" in said
    scores = json.loads((student / "distill_eval.json").read_text())
    assert scores["metric_name"] == "cosine" and scores["cosine"] > 0.9
    taught = json.loads(
        run(capsys, "eval", url, "--checkpoint", str(student), "--mcq", str(mcq), "--json")
    )
    assert taught["held_out"]["videos"] == 16
    assert taught["multiple_choice"]["accuracy"] >= 0.9
    assert taught["held_out"]["loss"] < 2 * report["held_out"]["loss"] + 0.1

    for i in held_out[:4]:  # two of each class
        said = run(capsys, "generate", url, "--checkpoint", str(out), "--video-id", f"vid{i:04d}")
        colour, motion = CAPTIONS[y[i]].split()[1], CAPTIONS[y[i]].split()[-1]
        other_colour, other_motion = CAPTIONS[1 - y[i]].split()[1], CAPTIONS[1 - y[i]].split()[-1]
        words = said.split()  # the right colour and motion, never the other ones
        assert colour in words and motion in words, said
        assert other_colour not in words and other_motion not in words, said

    with pytest.raises(SystemExit) as stop:  # encoders a, b are not the reference's four
        main(["export", str(out), "--format", "merv", "--out", str(tmp_path / "x.pt")])
    assert stop.value.code == 2
    assert (
        "not the reference's ['languagebind', 'dinov2', 'vivit', 'siglip']"
        in capsys.readouterr().err
    )


def test_export_import_round_trips_bitwise(tiny_lm, tmp_path, capsys):
    names = ["languagebind-tiny", "dinov2-tiny", "vivit-tiny", "siglip-tiny"]
    spec = ModelSpec(encoders=names, widths=[8, 8, 6, 6], time_steps=16, tokens_per_step=64,
                     num_classes=0, d_model=64, fusion_options={"attn_dim": 16}, objective="lm",
                     objective_options={"model": tiny_lm, "format": "finetune", "prompt": "pure"})  # fmt: skip
    torch.manual_seed(3)
    model = MervMixer(spec)
    from mixer import save_model

    save_model(model, tmp_path / "ours" / "model.safetensors")
    ref = tmp_path / "merv.pt"
    run(capsys, "export", str(tmp_path / "ours"), "--format", "merv", "--out", str(ref))
    run(capsys, "import", str(ref), "--out", str(tmp_path / "back"), "--lm", tiny_lm,
        "--encoders", ",".join(names))  # fmt: skip
    back = load_model(tmp_path / "back")
    assert back.spec == spec
    a, b = model.state_dict(), back.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_export_of_the_default_merv_configuration_has_the_reference_keys_and_shapes():
    """Keys and shapes as princetonvisualai/merv builds them for merv-base: a 3davg+linear
    projector per encoder (languagebind 1024, dinov2 1024, vivit 768, siglip 768 -> 4096) and
    CrossAttentionAdapterLearnableQuery(embed_dim=3072, averagetoken=True): Q plus
    nn.MultiheadAttention(3072, num_heads=1, kdim=vdim=4096)."""
    from mixer.export import to_reference_state_dict

    spec = ModelSpec(encoders=["languagebind", "dinov2", "vivit", "siglip"],
                     widths=[1024, 1024, 768, 768], time_steps=16, tokens_per_step=64,
                     num_classes=2, d_model=4096)  # fmt: skip
    model = MervMixer(spec)
    ref = to_reference_state_dict(model)
    shapes = {part: {k: tuple(v.shape) for k, v in sd.items()} for part, sd in ref.items()}
    assert shapes == {
        "projectors": {
            "0.projector.projector.weight": (4096, 1024), "0.projector.projector.bias": (4096,),
            "1.projector.projector.weight": (4096, 1024), "1.projector.projector.bias": (4096,),
            "2.projector.projector.weight": (4096, 768), "2.projector.projector.bias": (4096,),
            "3.projector.projector.weight": (4096, 768), "3.projector.projector.bias": (4096,),
        },
        "feature_fusion": {
            "Q": (1, 3072),
            "attention.q_proj_weight": (3072, 3072),
            "attention.k_proj_weight": (3072, 4096),
            "attention.v_proj_weight": (3072, 4096),
            "attention.in_proj_bias": (9216,),
            "attention.out_proj.weight": (3072, 3072),
            "attention.out_proj.bias": (3072,),
        },
    }  # fmt: skip


def test_a_missing_language_model_is_one_line(caption_store, tmp_path, capsys):
    url, _ = caption_store
    with pytest.raises(SystemExit) as stop:
        main(["train", url, "--lm", str(tmp_path / "no-such-model"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert "no language model at" in err and "pass objective_options.model=" in err


def test_micro_batches_weight_the_loss_by_supervised_tokens(tiny_lm):
    """Accumulating micro-batches of unequal token counts gives the step of the whole batch:
    the loss is the mean over all of the batch's supervised tokens, not of per-sample means."""
    from mixer import TrainConfig

    convs = [Conversation([("human", "<video>"), ("gpt", c)]) for c in
             ["red", "a blue ball moves right", "a red ball", "left"]]  # fmt: skip
    feats = [
        np.random.default_rng(k).normal(size=(4, 16, 1, 8)).astype(np.float16) for k in range(2)
    ]
    batch = Batch(0, 0, np.arange(4), feats, np.arange(4), 4)
    results = []
    for micro in (None, 1, 3):
        model = lm_model(tiny_lm)
        model.head.attach(convs)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
        cfg = TrainConfig(store="unused", micro_batch_size=micro)
        out = train_step(model, opt, sched, batch, torch.device("cpu"), cfg, autocast, 1)
        results.append((out.loss, model.projectors[0].projector.weight.detach().clone()))
    whole = results[0]
    tokens = [model.head.loss_weight(torch.tensor([i])) for i in range(4)]
    assert len(set(tokens)) > 1  # unequal: a mean of per-sample means would differ
    for loss, weight in results[1:]:
        assert loss == pytest.approx(whole[0], rel=1e-6)
        torch.testing.assert_close(weight, whole[1], rtol=1e-5, atol=1e-7)
