"""`cross_attention_time_mix`: MERV's mixer, then a learned [T, T] mix over the time steps of
each grid cell. Untrained it is exactly MERV's mixer; the mix acts along time only, cell by
cell; the reference export refuses it."""

from __future__ import annotations

import pytest
import torch

from mixer import FUSIONS, CrossAttentionMixer, MervMixer, ModelSpec
from mixer.export import check_reference_layout, to_reference_state_dict

T, CELLS, D = 4, 3, 8


def tokens(seed: int = 0, encoders: int = 2) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, T * CELLS, D, generator=g) for _ in range(encoders)]


def build(**options):
    torch.manual_seed(0)
    return FUSIONS.build("cross_attention_time_mix", 2, D, attn_dim=16, time_steps=T, **options)


def test_untrained_it_is_exactly_merv_mixer():
    fusion = build()
    torch.manual_seed(0)
    merv = CrossAttentionMixer(2, D, attn_dim=16)
    xs = tokens()
    (ours, w_ours), (theirs, w_theirs) = fusion(xs), merv(xs)
    assert torch.equal(ours, theirs) and torch.equal(w_ours, w_theirs)


def test_the_mix_runs_along_time_within_each_cell():
    fusion = build()
    with torch.no_grad():
        fusion.time_mix.copy_(torch.arange(T * T, dtype=torch.float32).reshape(T, T) / 10)
    xs = tokens(1)
    merv, weights = fusion.mixer(xs)
    out, w = fusion(xs)
    assert torch.equal(w, weights)
    steps = merv.reshape(2, T, CELLS, D)  # time-major: step t holds cells 0..CELLS-1
    for t in range(T):
        for cell in range(CELLS):
            expect = steps[:, t, cell] + sum(fusion.time_mix[t, s] * steps[:, s, cell]
                                             for s in range(T))  # fmt: skip
            torch.testing.assert_close(out[:, t * CELLS + cell], expect)


def test_reversed_time_is_told_apart_only_with_a_mix():
    """The same tokens in reverse order (motion the other way): identical means without a mix,
    different with one; here the difference of last and first step."""
    fusion = build()
    xs = tokens(2)
    backwards = [x.reshape(2, T, CELLS, D).flip(1).reshape(2, T * CELLS, D) for x in xs]
    mean = [fusion(v)[0].mean(1) for v in (xs, backwards)]
    torch.testing.assert_close(mean[0], mean[1])
    with torch.no_grad():
        fusion.time_mix[:, -1], fusion.time_mix[:, 0] = 1.0, -1.0
    mean = [fusion(v)[0].mean(1) for v in (xs, backwards)]
    assert (mean[0] - mean[1]).abs().max() > 0.1


def test_a_token_count_that_is_not_whole_steps_names_the_option():
    with pytest.raises(ValueError, match="fusion_options.time_steps"):
        build()([torch.randn(2, T * CELLS + 1, D) for _ in range(2)])


def test_the_reference_export_refuses_it():
    spec = ModelSpec(encoders=["languagebind", "dinov2", "vivit", "siglip"], widths=[8] * 4,
                     time_steps=T, tokens_per_step=CELLS, num_classes=3, d_model=D,
                     fusion="cross_attention_time_mix",
                     fusion_options={"attn_dim": 16, "time_steps": T})  # fmt: skip
    with pytest.raises(ValueError, match="not MERV's cross-attentive mixer"):
        check_reference_layout(spec)
    with pytest.raises(ValueError, match="no reference layout"):
        to_reference_state_dict(MervMixer(spec))
