"""Encoders declared as config entries: what is inferred, the generic transformers backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from encoders import build_encoder, get_spec, register_from_config, resolve_encoder_set
from encoders.custom import check_encoders
from encoders.weights import WeightsNotFoundError

VIT_ARCH = {
    "model_type": "vit",
    "hidden_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


def test_timm_entry_infers_from_the_architecture() -> None:
    (spec,) = register_from_config(
        [
            {
                "name": "cc_vit_s",
                "backend": "timm",
                "checkpoint": "vit_small_patch16_224",
                "layer": -3,
            }
        ]
    )
    assert (spec.width, spec.grid, spec.prefix_tokens) == (384, (14, 14), 1)
    assert (spec.frames, spec.time_steps, spec.layer, spec.tiny) == (16, 16, -3, False)
    assert spec.checkpoint.startswith("vit_small_patch16_224.")  # timm's default tag, pinned
    assert spec.mean == (0.5, 0.5, 0.5) and spec.interpolation == "bicubic"  # pretrained cfg
    assert resolve_encoder_set("cc_vit_s,siglip") == ["cc_vit_s", "siglip"]
    # given fields win over inferred ones; registering the same entry again is a no-op
    (again,) = register_from_config(
        [
            {
                "name": "cc_vit_s",
                "backend": "timm",
                "checkpoint": "vit_small_patch16_224",
                "layer": -3,
            }
        ]
    )
    assert again == spec and get_spec("cc_vit_s").fingerprint() == spec.fingerprint()


def test_hf_auto_kept_layer_matches_hidden_states() -> None:
    from transformers import ViTConfig, ViTModel

    (spec,) = register_from_config(
        [
            {
                "name": "cc_hf_vit",
                "backend": "hf_auto",
                "checkpoint": "local/x",
                "frames": 2,
                "layer": -2,
                "tiny": True,
                "arch": VIT_ARCH,
            }
        ]
    )
    assert (spec.width, spec.grid, spec.prefix_tokens, spec.time_steps) == (32, (14, 14), 1, 2)
    enc = build_encoder(spec)
    cfg = {k: v for k, v in VIT_ARCH.items() if k != "model_type"}
    ref = ViTModel(ViTConfig(**cfg), add_pooling_layer=False).eval()
    missing = ref.load_state_dict(enc.backbone.model.state_dict(), strict=False).missing_keys
    assert all(k.startswith(("layers.2.", "layernorm.", "encoder.layer.2.")) for k in missing)
    x = torch.randn(1, 2, 3, 224, 224)
    with torch.inference_mode():
        hidden = ref(pixel_values=x.flatten(0, 1), output_hidden_states=True).hidden_states
        ours = enc(x)
    torch.testing.assert_close(ours.flatten(0, 1).flatten(1, 2), hidden[-2][:, 1:])


def test_hf_auto_video_model_takes_the_clip() -> None:
    arch = {**VIT_ARCH, "model_type": "videomae", "num_frames": 16, "tubelet_size": 2}
    (spec,) = register_from_config(
        [
            {
                "name": "cc_videomae",
                "backend": "hf_auto",
                "checkpoint": "local/v",
                "tiny": True,
                "arch": arch,
            }
        ]
    )
    assert (spec.frames, spec.time_steps, spec.grid, spec.prefix_tokens) == (16, 8, (14, 14), 0)
    out = build_encoder(spec).encode([torch.zeros(32, 64, 80, 3, dtype=torch.uint8)])
    assert out.shape == (1, 8, 14, 14, 32)


def test_hf_auto_checkpoint_folder_loads_weights_and_processor(tmp_path: Path) -> None:
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    cfg = {k: v for k, v in VIT_ARCH.items() if k != "model_type"}
    src = ViTModel(ViTConfig(**cfg), add_pooling_layer=False).eval()
    src.save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_mean": [0.5, 0.5, 0.5],
                "image_std": [0.5, 0.5, 0.5],
                "resample": 2,
                "size": {"height": 224, "width": 224},
            }
        )
    )
    (spec,) = register_from_config(
        [
            {
                "name": "cc_hf_folder",
                "backend": "hf_auto",
                "checkpoint": str(tmp_path),
                "layer": -1,
                "final_norm": True,
                "frames": 2,
            }
        ]
    )
    assert spec.mean == (0.5, 0.5, 0.5) and spec.interpolation == "bilinear"
    assert spec.resize == "squash" and (spec.width, spec.prefix_tokens) == (32, 1)
    assert check_encoders("cc_hf_folder") == ["cc_hf_folder"]  # weights found in the folder
    enc = build_encoder(spec)  # no weights argument: the spec's own folder
    x = torch.randn(1, 2, 3, 224, 224)
    with torch.inference_mode():
        lib = src(pixel_values=x.flatten(0, 1)).last_hidden_state
        ours = enc(x)
    torch.testing.assert_close(ours.flatten(0, 1).flatten(1, 2), lib[:, 1:])


@pytest.mark.parametrize(
    "entry,match",
    [
        ({"name": "dinov2", "backend": "timm", "checkpoint": "vit_tiny_patch16_224"}, "built-in"),
        ({"name": "cc_x", "backend": "timm"}, "'checkpoint' is required"),
        ({"name": "cc_x", "backend": "timm", "checkpoint": "resnet18"}, "ViT-style"),
        (
            {"name": "cc_x", "backend": "timm", "checkpoint": "vit_tiny_patch16_224", "frames": 5},
            "frames=5",
        ),
        (
            {"name": "cc_x", "backend": "timm", "checkpoint": "vit_tiny_patch16_224", "layr": -2},
            r"unknown field\(s\) \[.layr.\]; known fields: .*.layer.",
        ),
        ({"name": "cc_x", "backend": "hf_auto", "checkpoint": "org/not-cached"}, "model_type"),
        ("cc_x", "expected a mapping"),
    ],
)
def test_bad_entries_are_named(entry, match: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match=match) as info:
        register_from_config([entry])
    assert str(info.value).startswith("custom_encoders[0]")


def test_preflight_checks_local_weights(tmp_path: Path) -> None:
    register_from_config(
        [{"name": "cc_real", "backend": "timm", "checkpoint": "vit_tiny_patch16_224"}]
    )
    with pytest.raises(WeightsNotFoundError, match="'cc_real'.*nowhere"):
        check_encoders("cc_real", weights={"cc_real": str(tmp_path / "nowhere")})
    with pytest.raises(WeightsNotFoundError, match="HF_HUB_OFFLINE"):
        check_encoders("cc_real")  # offline (conftest): looks in the HF cache only
    assert check_encoders("tiny") == resolve_encoder_set("tiny")  # tiny needs no weights


BUILTIN = ["languagebind", "dinov2", "vivit", "siglip", "clip"]
_PREFLIGHT = """
import json, sys
from pathlib import Path
from encoders import EncoderSpec, WeightsNotFoundError, check_encoders, list_specs

missing = {}
ckpt, builtin = Path(sys.argv[1]), sys.argv[2:]
for name in builtin:
    try:  # offline, empty HF cache: every backend's hub lookup runs and misses
        check_encoders(name)
    except WeightsNotFoundError as err:
        missing[name] = str(err)
found = check_encoders(",".join(builtin), weights={n: str(ckpt) for n in builtin})
check_encoders("merv", check_weights=False)
check_encoders("tiny")
assert all(EncoderSpec.from_dict(s.to_dict()) == s for s in list_specs())
heavy = sorted(m for m in ("torch", "timm", "transformers") if m in sys.modules)
print(json.dumps({"missing": missing, "found": found, "heavy": heavy}))
"""


def test_preflight_of_builtin_encoders_imports_no_torch(tmp_path: Path) -> None:
    # The driver plans and writes only: specs, registries and finding weights stay torch-free.
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    out = subprocess.run(
        [sys.executable, "-c", _PREFLIGHT, str(ckpt), *BUILTIN],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["found"] == ["languagebind", "dinov2", "vivit", "siglip", "clip"]
    assert sorted(result["missing"]) == sorted(BUILTIN)
    assert "'timm/vit_large_patch14_reg4_dinov2.lvd142m'" in result["missing"]["dinov2"]


def test_builtin_timm_hub_repos_are_timms_own() -> None:
    # The driver finds built-in timm weights without timm; the repos must be the ones timm uses.
    import timm.models

    from encoders.registry import TIMM_HUB_REPOS

    builtin = [get_spec(n) for n in BUILTIN]
    builtin_timm = {s.checkpoint for s in builtin if s.backend == "timm"}
    assert set(TIMM_HUB_REPOS) == builtin_timm
    for checkpoint, repo in TIMM_HUB_REPOS.items():
        assert timm.models.get_pretrained_cfg(checkpoint).hf_hub_id == repo
