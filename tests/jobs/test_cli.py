import pytest

from jobs.cli import build_parser, run
from jobs.config import ExtractConfig
from pipeline.config import ConfigError, build_config

COMMANDS = ["extract", "status", "verify", "encoders", "train", "eval", "generate", "export",
            "import", "ablate", "explain", "cost", "demo"]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        run([command, "--help"])
    assert info.value.code == 0
    assert f"usage: merv {command}" in capsys.readouterr().out


def test_top_level_help_lists_subcommands():
    text = build_parser().format_help()
    for command in COMMANDS:
        assert command in text


def test_flags_override_the_config_file(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(
        "extract:\n  shard_size: 3\n  encoders: dinov2-tiny\n  weights: {dinov2: /w}\n"
        "train:\n  epochs: 2\n"
    )
    cfg = build_config(ExtractConfig, str(path), "extract", {"shard_size": 5, "batch_size": None})
    assert cfg.shard_size == 5  # flag wins
    assert cfg.encoders == "dinov2-tiny"  # file value kept
    assert cfg.batch_size == ExtractConfig.batch_size  # flag not given: default
    assert cfg.weights == {"dinov2": "/w"}


def test_flag_strings_are_coerced():
    cfg = build_config(
        ExtractConfig,
        None,
        "extract",
        {"weights": "a=/x,b=/y", "encoder_gpus": "0.5", "progress": "false"},
    )
    assert cfg.weights == {"a": "/x", "b": "/y"}
    assert cfg.encoder_gpus == 0.5 and cfg.progress is False


def test_unknown_or_bad_config_fields_name_the_file_and_field(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("extract:\n  shard_sise: 3\n")
    with pytest.raises(
        ConfigError, match=r"job.yaml \[extract\]: unknown field\(s\) \['shard_sise'\]"
    ):
        build_config(ExtractConfig, str(path), "extract", {})
    path.write_text("shard_size: many\n")
    with pytest.raises(ConfigError, match="field 'shard_size'"):
        build_config(ExtractConfig, str(path), "extract", {})


def test_cli_reports_config_errors_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        from jobs.cli import main

        main(["extract", str(tmp_path), "--store", str(tmp_path / "s.zarr"), "--encoders", "nope"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("merv: error:") and "nope" in err and "\n" not in err


def test_encoders_lists_the_registry(capsys):
    assert run(["encoders"]) == 0
    out = capsys.readouterr().out
    for name in ("languagebind", "dinov2", "vivit", "siglip", "clip", "dinov2-tiny"):
        assert f"\n{name} " in out
    assert "set 'merv': languagebind, dinov2, vivit, siglip" in out


def test_missing_weights_fail_fast_with_the_fix(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from jobs.cli import main

    with pytest.raises(SystemExit) as info:
        main(["encoders", "--check", "dinov2"])
    assert info.value.code == 2  # a usage error: pass --weights
    err = capsys.readouterr().err
    assert "dinov2" in err and "--weights dinov2=" in err


def test_a_ray_workers_error_is_reported_as_its_own_last_line():
    from ray.exceptions import RayError

    from jobs.cli import _root_cause

    wrapped = RayError(
        "The actor died because of an error raised in its creation task\n"
        'Traceback (most recent call last):\n  File "workers.py", line 58\n'
        "encoders.weights.WeightsNotFoundError: no weights for encoder 'x'; "
        "pass --weights x=/path"
    )
    assert _root_cause(wrapped) == "no weights for encoder 'x'; pass --weights x=/path"
    assert _root_cause(RuntimeError("plain")) == "plain"
