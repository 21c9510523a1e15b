"""Projectors, fusions, objectives, registries and the assembled model on random tensors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mixer import FUSIONS, OBJECTIVES, PROJECTORS, CrossAttentionMixer, MervMixer, ModelSpec
from mixer.export import to_reference_state_dict
from mixer.trainer import param_groups


def spec(**kw) -> ModelSpec:
    base = dict(
        encoders=["a", "b", "c", "d"],
        widths=[12, 20, 16, 8],
        time_steps=4,
        tokens_per_step=4,
        num_classes=3,
        d_model=24,
        fusion_options={"attn_dim": 32},
    )
    base.update(kw)
    return ModelSpec(**base)


def feats(s: ModelSpec, b: int = 5) -> list[torch.Tensor]:
    return [torch.randn(b, s.time_steps, s.tokens_per_step, w) for w in s.widths]


def test_cross_attention_default_width_near_uniform_at_init():
    torch.manual_seed(0)
    mixer = CrossAttentionMixer(num_encoders=4, d_model=64)  # attn_dim defaults to 3072
    assert mixer.attn_dim == 3072 and math.isclose(mixer.scale, 1 / math.sqrt(3072))
    xs = [torch.randn(6, 50, 64) * (e + 1) for e in range(4)]
    out, w = mixer(xs)
    assert out.shape == (6, 50, 64) and w.shape == (6, 4)
    torch.testing.assert_close(w.sum(-1), torch.ones(6))
    assert (w - 0.25).abs().max() < 0.01


def test_cross_attention_matches_hand_computation():
    torch.manual_seed(1)
    mixer = CrossAttentionMixer(num_encoders=3, d_model=8, attn_dim=16)
    with torch.no_grad():  # move away from uniform so the check is not trivial
        for p in mixer.parameters():
            p.normal_(0, 1.0)
    xs = [torch.randn(4, 7, 8) for _ in range(3)]
    out, w = mixer(xs)
    q = mixer.query[0] @ mixer.q_proj.weight.T + mixer.q_proj.bias
    for b in range(4):
        logits = torch.stack(
            [
                (xs[e][b].mean(0) @ mixer.k_proj.weight.T + mixer.k_proj.bias) @ q / math.sqrt(16)
                for e in range(3)
            ]
        )
        expect_w = logits.softmax(0)
        torch.testing.assert_close(w[b], expect_w)
        torch.testing.assert_close(out[b], sum(expect_w[e] * xs[e][b] for e in range(3)))
        assert w[b].max() - w[b].min() > 0.05  # really not uniform
    torch.testing.assert_close(w.sum(-1), torch.ones(4))


def test_export_matches_reference_multihead_attention():
    """Our mixer's weights equal nn.MultiheadAttention's, loaded with the reference key layout."""
    torch.manual_seed(2)
    s = spec(d_model=8, fusion_options={"attn_dim": 16})
    model = MervMixer(s)
    with torch.no_grad():
        for p in model.feature_fusion.parameters():
            p.normal_(0, 0.5)
    ref = to_reference_state_dict(model)
    assert set(ref["projectors"]) == {
        f"{i}.projector.{k}" for i in range(4) for k in ("weight", "bias")
    }
    attn = nn.MultiheadAttention(16, num_heads=1, batch_first=True, kdim=8, vdim=8)
    attn.load_state_dict(
        {
            k.removeprefix("attention."): v
            for k, v in ref["feature_fusion"].items()
            if k.startswith("attention.")
        }
    )
    assert ref["feature_fusion"]["Q"].shape == (1, 16)
    x = feats(s, b=3)
    projected = [p(f.flatten(1, 2)) for p, f in zip(model.projectors, x, strict=True)]
    _, ours = model.feature_fusion(projected)
    summaries = torch.stack([p.mean(1) for p in projected], 1)
    query = ref["feature_fusion"]["Q"].expand(3, -1).unsqueeze(1)
    _, theirs = attn(query, summaries, summaries)
    torch.testing.assert_close(ours, theirs[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "fusion", ["cross_attention", "static_weights", "channel_concat", "sequence_concat"]
)
@pytest.mark.parametrize("projector", ["linear", "mlp"])
def test_every_fusion_and_projector_builds_and_runs(fusion, projector):
    s = spec(
        fusion=fusion,
        projector=projector,
        fusion_options={"attn_dim": 32} if fusion == "cross_attention" else {},
    )
    model = MervMixer(s)
    logits, w = model(feats(s))
    assert logits.shape == (5, 3)
    if fusion in ("cross_attention", "static_weights"):
        assert w.shape == (5, 4)
        torch.testing.assert_close(w.sum(-1), torch.ones(5))
    else:
        assert w is None
    tokens, _ = model.fuse(feats(s))
    n = s.n_tokens * (4 if fusion == "sequence_concat" else 1)
    assert tokens.shape == (5, n, s.d_model)


def test_static_weights_start_uniform():
    out, w = FUSIONS.build("static_weights", 4, 6)([torch.randn(2, 3, 6) for _ in range(4)])
    torch.testing.assert_close(w, torch.full((2, 4), 0.25))


def test_gradients_reach_projectors_and_mixer_only():
    torch.manual_seed(3)
    s = spec()
    model = MervMixer(s)
    x = feats(s)
    assert not any(f.requires_grad for f in x)  # cached features are constants
    logits, _ = model(x)
    model.head.loss(logits, torch.tensor([0, 1, 2, 0, 1])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # Everything trainable is a projector, the mixer or the small head; nothing else exists.
    prefixes = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert prefixes == {"projectors", "feature_fusion", "head"}
    assert all(f.grad is None for f in x)
    # The optimizer sees every parameter exactly once; biases and 1-D params get no decay.
    groups = param_groups(model, weight_decay=0.1)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert all(p.ndim >= 2 for p in groups[0]["params"]) and groups[1]["weight_decay"] == 0.0
    assert any(p is model.feature_fusion.q_proj.bias for p in groups[1]["params"])


def test_probe_sees_token_order():
    """Permuting time steps changes the probe's output; a time-mean head could not."""
    torch.manual_seed(4)
    head = OBJECTIVES.build("probe", d_model=6, n_tokens=8, num_classes=2)
    x = torch.randn(1, 8, 6)
    assert not torch.allclose(head(x), head(x.flip(1)))


@pytest.mark.parametrize(
    ("registry", "known"),
    [
        (PROJECTORS, ["linear", "mlp"]),
        (FUSIONS, ["channel_concat", "cross_attention", "sequence_concat", "static_weights"]),
        (OBJECTIVES, ["probe"]),
    ],
)
def test_registries_reject_unknown_names(registry, known):
    with pytest.raises(ValueError) as err:
        registry.lookup("nope")
    msg = str(err.value)
    assert "'nope'" in msg and all(k in msg for k in known)


def test_unknown_component_in_spec_names_known_ones():
    with pytest.raises(ValueError, match="unknown fusion 'attn'.*cross_attention"):
        MervMixer(spec(fusion="attn"))


def test_register_adds_a_component_and_refuses_duplicates():
    @PROJECTORS.register("test-identity-linear")
    class Tiny(nn.Linear):
        def __init__(self, in_dim: int, out_dim: int) -> None:
            super().__init__(in_dim, out_dim)

    try:
        model = MervMixer(spec(projector="test-identity-linear"))
        assert isinstance(model.projectors[0], Tiny)
        with pytest.raises(ValueError, match="already registered"):
            PROJECTORS.register("test-identity-linear")(Tiny)
    finally:
        del PROJECTORS["test-identity-linear"]
