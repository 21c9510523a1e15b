"""Encoders declared in the job config file only, end to end; the missing-weights pre-flight."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from encoders import get_spec
from jobs.cli import main, run
from tests.helpers import direct_encode

CONFIG = """\
extract:
  shard_size: 4
  batch_size: 4
  custom_encoders:
    # any timm ViT by name: width, grid, prefix tokens, mean/std come from the architecture
    - {name: cfg_vit, backend: timm, checkpoint: vit_tiny_patch16_224, frames: 8, layer: -2,
       tiny: true}
    # a transformers vision model given by its config values (no hub needed)
    - name: cfg_hf_vit
      backend: hf_auto
      checkpoint: local/random-vit
      frames: 16
      layer: -1
      final_norm: true
      tiny: true
      arch: {model_type: vit, hidden_size: 48, num_hidden_layers: 2, num_attention_heads: 2,
             intermediate_size: 96, image_size: 224, patch_size: 16}
"""


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, synthetic_corpus, ray_session):
    folder, _ = synthetic_corpus
    work = tmp_path_factory.mktemp("cfgenc")
    config = work / "job.yaml"
    config.write_text(CONFIG)
    store = str(work / "store.zarr")
    code = run(
        [
            "extract",
            str(folder),
            "--store",
            store,
            "--config",
            str(config),
            "--encoders",
            "cfg_vit,cfg_hf_vit",
            "--no-progress",
        ]
    )
    return folder, store, code


def test_config_encoder_extracts_end_to_end(extracted):
    folder, store, code = extracted
    assert code == 0
    n = len(list(folder.iterdir()))
    group = zarr.open_group(store, mode="r")
    for name, width in (("cfg_vit", 192), ("cfg_hf_vit", 48)):
        arr = group[f"features/{name}"]
        assert arr.dtype == np.float16 and arr.shape == (n, 16, 64, width)
        feats = arr[:].astype(np.float32)
        assert np.isfinite(feats).all() and (np.abs(feats).sum(axis=(1, 2, 3)) > 0).all()
        assert arr.attrs["fingerprint"] == get_spec(name).fingerprint()
    spec = get_spec("cfg_vit")  # what was inferred from timm's architecture and pretrained cfg
    assert (spec.width, spec.grid, spec.prefix_tokens, spec.time_steps) == (192, (14, 14), 1, 8)
    assert spec.checkpoint.startswith("vit_tiny_patch16_224.")  # default tag pinned


def test_config_encoder_features_equal_a_direct_encode(extracted):
    from pipeline.decode import decode_video

    folder, store, _ = extracted
    group = zarr.open_group(store, mode="r")
    ids = [str(v) for v in group["features/video_id"][:]]
    clip = sorted(folder.iterdir())[0]
    frames = decode_video(str(clip), 32).frames
    direct = direct_encode(get_spec("cfg_vit"), frames, pad_to=4)  # the job's batch_size: 4
    stored = group["features/cfg_vit"][ids.index(clip.stem)]
    np.testing.assert_array_equal(stored, direct)


def test_config_encoder_errors_name_the_entry(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "extract:\n  custom_encoders:\n    - {name: dinov2, backend: timm, "
        "checkpoint: vit_tiny_patch16_224}\n"
    )
    with pytest.raises(SystemExit) as info:
        main(
            ["extract", str(tmp_path), "--store", str(tmp_path / "s.zarr"), "--config", str(config)]
        )
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "custom_encoders[0] (dinov2)" in err and "built-in" in err


@pytest.mark.parametrize("encoders", ["dinov2", "merv"])
def test_missing_weights_run_fails_fast_in_one_line(
    encoders, tmp_path, synthetic_corpus, capsys, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder, _ = synthetic_corpus
    store = tmp_path / "s.zarr"
    import ray

    def no_ray(*args, **kwargs):  # "fast" means: the check runs before Ray or any model starts
        raise AssertionError("Ray was started before the missing weights were reported")

    monkeypatch.setattr(ray, "init", no_ray)
    with pytest.raises(SystemExit) as info:
        main(["extract", str(folder), "--store", str(store), "--encoders", encoders])
    assert info.value.code == 2 and not store.exists()  # failed before creating anything
    err = capsys.readouterr().err.strip()
    first = "languagebind" if encoders == "merv" else "dinov2"
    assert err.count("\n") == 0 and err.startswith("merv: error: no weights for encoder")
    assert f"'{first}'" in err and "HF_HUB_OFFLINE" in err and f"--weights {first}=" in err


def test_missing_local_weights_name_the_path(tmp_path, synthetic_corpus, capsys):
    folder, _ = synthetic_corpus
    with pytest.raises(SystemExit):
        main(
            [
                "extract",
                str(folder),
                "--store",
                str(tmp_path / "s.zarr"),
                "--encoders",
                "siglip",
                "--weights",
                f"siglip={tmp_path / 'nowhere'}",
            ]
        )
    err = capsys.readouterr().err
    assert "'siglip'" in err and str(tmp_path / "nowhere") in err and err.count("\n") == 1
