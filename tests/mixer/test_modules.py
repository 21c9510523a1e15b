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
        f"{i}.projector.projector.{k}" for i in range(4) for k in ("weight", "bias")
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


# --- reference layout: projectors, fusion, export -----------------------------------------------


def _perturb(module: nn.Module, std: float = 0.5, seed: int = 0) -> None:
    """Give every parameter (biases included) non-trivial values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)


# The reference (princetonvisualai/merv, nn_utils.py) keeps each projector's layers in an
# attribute named `projector`: Linear -> `projector.{weight,bias}`, "gelu-mlp" ->
# `projector.0` (C_e -> d) and `projector.2` (d -> d) with the GELU at index 1.
REFERENCE_PROJECTOR_KEYS = {
    "linear": lambda w, d: {"projector.weight": (d, w), "projector.bias": (d,)},
    "mlp": lambda w, d: {
        "projector.0.weight": (d, w),
        "projector.0.bias": (d,),
        "projector.2.weight": (d, d),
        "projector.2.bias": (d,),
    },
}


@pytest.mark.parametrize("projector", ["linear", "mlp"])
def test_projector_state_dict_and_export_use_the_reference_keys(projector):
    s = spec(projector=projector)
    model = MervMixer(s)
    _perturb(model.projectors)
    expect = {
        f"{i}.{k}": shape
        for i, w in enumerate(s.widths)
        for k, shape in REFERENCE_PROJECTOR_KEYS[projector](w, s.d_model).items()
    }
    sd = model.state_dict()
    ours = {k.removeprefix("projectors."): tuple(v.shape) for k, v in sd.items()}
    ours = {k: v for k, v in ours.items() if k[0].isdigit()}
    assert ours == expect

    # The released MERV ("3davg+linear") wraps each of these in an AveragePooling3DProjector
    # (no parameters) at `projector`: the export nests one level, {i}.projector.<our key>.
    def nested(k: str) -> str:  # "0.projector.weight" -> "0.projector.projector.weight"
        return k.replace(".", ".projector.", 1)

    exported = to_reference_state_dict(model)["projectors"]
    assert {k: tuple(v.shape) for k, v in exported.items()} == {
        nested(k): shape for k, shape in expect.items()
    }
    for k in expect:
        assert torch.equal(exported[nested(k)], sd[f"projectors.{k}"]), k


class _RefInner(nn.Module):
    """Reference LinearProjector / MLPProjector ("gelu-mlp"): layernorm (Identity), projector."""

    def __init__(self, kind: str, vision_dim: int, llm_dim: int) -> None:
        super().__init__()
        self.layernorm = nn.Identity()
        if kind == "linear":
            self.projector = nn.Linear(vision_dim, llm_dim, bias=True)
        else:
            self.projector = nn.Sequential(
                nn.Linear(vision_dim, llm_dim, bias=True),
                nn.GELU(),
                nn.Linear(llm_dim, llm_dim, bias=True),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.layernorm(x))


class _RefAvg3D(nn.Module):
    """Reference AveragePooling3DProjector: [B, F, H*W, C] -> pool (F, s, s) -> [B, F*s*s, d]."""

    def __init__(self, kind: str, vision_dim: int, llm_dim: int, frames: int, size: int) -> None:
        super().__init__()
        self.avg_pooling = nn.AdaptiveAvgPool3d((frames, size, size))
        self.projector = _RefInner(kind, vision_dim, llm_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, f, hw, c = x.shape
        h = math.isqrt(hw)
        y = x.reshape(b, f, h, h, c).permute(0, 4, 1, 2, 3)  # B C F H W
        y = self.avg_pooling(y)
        y = y.permute(0, 2, 3, 4, 1).reshape(b, -1, c)  # B (F H W) C
        return self.projector(y)


@pytest.mark.parametrize("projector", ["linear", "mlp"])
def test_export_loads_into_reference_3davg_projectors(projector):
    """The exported projectors load (strict) into the released MERV's projector modules and
    compute the same tokens from the same (already pooled) features."""
    s = spec(projector=projector)
    model = MervMixer(s)
    _perturb(model.projectors, seed=4)
    side = math.isqrt(s.tokens_per_step)
    ref = nn.ModuleList(_RefAvg3D(projector, w, s.d_model, s.time_steps, side) for w in s.widths)
    ref.load_state_dict(to_reference_state_dict(model)["projectors"], strict=True)
    x = feats(s, b=2)
    with torch.no_grad():
        for ours, theirs, f in zip(model.projectors, ref, x, strict=True):
            torch.testing.assert_close(ours(f.flatten(1, 2)), theirs(f))


@pytest.mark.parametrize("projector", ["linear", "mlp"])
def test_projector_forward_by_hand(projector):
    torch.manual_seed(5)
    proj = PROJECTORS.build(projector, 6, 4)
    _perturb(proj)
    x = torch.randn(3, 5, 6)
    params = dict(proj.named_parameters())

    def gelu(h: torch.Tensor) -> torch.Tensor:  # exact (erf) GELU, nn.GELU's default
        return 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))

    if projector == "linear":
        expect = x @ params["projector.weight"].T + params["projector.bias"]
    else:
        h = gelu(x @ params["projector.0.weight"].T + params["projector.0.bias"])
        expect = h @ params["projector.2.weight"].T + params["projector.2.bias"]
    torch.testing.assert_close(proj(x), expect)


def test_cross_attention_export_reference_keys_and_values():
    s = spec(d_model=8, fusion_options={"attn_dim": 16})
    model = MervMixer(s)
    _perturb(model.feature_fusion, seed=1)
    fusion = model.feature_fusion
    ref = to_reference_state_dict(model)["feature_fusion"]
    # CrossAttentionAdapterLearnableQuery: Q plus nn.MultiheadAttention(16, 1, kdim=vdim=8).
    assert {k: tuple(v.shape) for k, v in ref.items()} == {
        "Q": (1, 16),
        "attention.q_proj_weight": (16, 16),
        "attention.k_proj_weight": (16, 8),
        "attention.v_proj_weight": (16, 8),
        "attention.in_proj_bias": (48,),
        "attention.out_proj.weight": (16, 16),
        "attention.out_proj.bias": (16,),
    }
    assert torch.equal(ref["Q"], fusion.query.detach())
    assert torch.equal(ref["attention.q_proj_weight"], fusion.q_proj.weight.detach())
    assert torch.equal(ref["attention.k_proj_weight"], fusion.k_proj.weight.detach())
    # in_proj_bias is q | k | v, in that order; v (and out_proj) never affect the weights.
    assert torch.equal(ref["attention.in_proj_bias"][:16], fusion.q_proj.bias.detach())
    assert torch.equal(ref["attention.in_proj_bias"][16:32], fusion.k_proj.bias.detach())
    assert not ref["attention.in_proj_bias"][32:].any()
    for k in ("attention.v_proj_weight", "attention.out_proj.weight", "attention.out_proj.bias"):
        assert not ref[k].any(), k


@pytest.mark.parametrize(
    ("fusion", "expect"),
    [
        ("static_weights", {"scalar": (4,)}),
        ("channel_concat", {"projector.weight": (24, 96), "projector.bias": (24,)}),
        ("sequence_concat", {}),
    ],
)
def test_other_fusions_export_reference_keys(fusion, expect):
    model = MervMixer(spec(fusion=fusion, fusion_options={}))
    ref = to_reference_state_dict(model)
    assert {k: tuple(v.shape) for k, v in ref["feature_fusion"].items()} == expect
    assert set(ref) == {"projectors", "feature_fusion"}


# --- cross-attentive mixer at the MERV width ----------------------------------------------------


def test_cross_attention_at_merv_width_by_hand():
    """attn_dim 3072: one head of nn.MultiheadAttention(3072, 1) scales logits by 3072 ** -0.5."""
    torch.manual_seed(6)
    mixer = CrossAttentionMixer(num_encoders=3, d_model=8)
    with torch.no_grad():
        mixer.query.normal_(0, 1.0)
        mixer.q_proj.weight.normal_(0, 0.02)
        mixer.q_proj.bias.normal_(0, 1.0)
        mixer.k_proj.weight.normal_(0, 0.5)
        mixer.k_proj.bias.normal_(0, 1.0)
    xs = [torch.randn(4, 5, 8) + e for e in range(3)]
    with torch.no_grad():
        out, w = mixer(xs)
    q = mixer.query.detach()[0] @ mixer.q_proj.weight.detach().T + mixer.q_proj.bias.detach()
    for b in range(4):
        logits = []
        for e in range(3):
            m = xs[e][b].sum(0) / 5  # mean over the 5 tokens
            k = m @ mixer.k_proj.weight.detach().T + mixer.k_proj.bias.detach()
            logits.append(float(k @ q) / math.sqrt(3072))
        expect_w = torch.tensor(logits).softmax(0)
        torch.testing.assert_close(w[b], expect_w, rtol=1e-4, atol=1e-5)
        expect_out = sum(float(expect_w[e]) * xs[e][b] for e in range(3))
        torch.testing.assert_close(out[b], expect_out, rtol=1e-4, atol=1e-5)
        assert float(w[b].max() - w[b].min()) > 0.1  # far from uniform: the scale matters
    torch.testing.assert_close(w.sum(-1), torch.ones(4))


# --- token order through the model and the probe head -------------------------------------------


def test_model_tokens_are_time_major():
    """Fused token t*G*G + g is cell g of time step t (the order the LLM stage reads)."""
    torch.manual_seed(7)
    s = spec(
        encoders=["a"],
        widths=[5],
        time_steps=3,
        tokens_per_step=4,
        fusion="static_weights",
        fusion_options={},
    )
    model = MervMixer(s)
    x = torch.randn(2, 3, 4, 5)
    tokens, w = model.fuse([x])
    torch.testing.assert_close(w, torch.ones(2, 1))  # one encoder: weight exactly 1
    proj = model.projectors[0]
    for t in range(3):
        for g in range(4):
            torch.testing.assert_close(tokens[:, t * 4 + g], proj(x[:, t, g]))


def test_probe_head_logits_loss_and_correct_by_hand():
    head = OBJECTIVES.build("probe", d_model=3, n_tokens=2, num_classes=2, token_dim=2)
    _perturb(head, seed=2)
    x = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(3))
    wr, br = head.reduce.weight, head.reduce.bias
    wc, bc = head.classifier.weight, head.classifier.bias

    def gelu(h: torch.Tensor) -> torch.Tensor:
        return 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))

    logits = head(x)
    for b in range(4):
        # token 0's two channels, then token 1's: the classifier sees each token in its place
        z = torch.cat([gelu(wr @ x[b, 0] + br), gelu(wr @ x[b, 1] + br)])
        torch.testing.assert_close(logits[b], wc @ z + bc)
    y = torch.tensor([0, 1, 1, 0])
    expect_loss = sum(torch.logsumexp(logits[b], 0) - logits[b, y[b]] for b in range(4)) / 4
    torch.testing.assert_close(head.loss(logits, y), expect_loss)
    fixed = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [-1.0, 5.0]])
    assert head.correct(fixed, torch.tensor([0, 0, 0, 1])) == 3
