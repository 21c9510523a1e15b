"""Encoders declared in a job config file, and the pre-flight check a job runs before any work.

A config entry names a backend and a checkpoint; every other EncoderSpec field may be given, and
what is left out is read from the architecture itself, built on the meta device (no weights, no
compute): width, patch grid, prefix tokens, and for timm the pretrained config's mean / std /
interpolation (and its default tag, pinned so the fingerprint names the weights). Example:

    custom_encoders:
      - {name: vit_s, backend: timm, checkpoint: vit_small_patch16_224, frames: 16, layer: -2}
      - {name: dino_hf, backend: hf_auto, checkpoint: facebook/dinov2-base, layer: -1,
         final_norm: true}
      - {name: my_vit, backend: timm, checkpoint: vit_tiny_patch16_224, frames: 8, tiny: true}

`tiny: true` builds the architecture with seeded random weights (tests, demos: no checkpoint).
The registered spec is complete, so it travels to Ray workers as a dict like any other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from encoders.registry import get_spec, register, resolve_encoder_set
from encoders.spec import EncoderSpec
from encoders.weights import hub_offline, hub_source, resolve_local

_CUSTOM: set[str] = set()  # names registered from config files (may be redefined by a later one)


def register_from_config(entries: Sequence[Mapping[str, Any]] | None) -> list[EncoderSpec]:
    """Register every config-declared encoder; errors name the entry and are ValueErrors."""
    specs = []
    for i, entry in enumerate(entries or ()):
        where = f"custom_encoders[{i}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected a mapping of EncoderSpec fields, got {entry!r}")
        where += f" ({entry.get('name', '?')})"
        try:
            spec = spec_from_config(entry)
        except Exception as err:  # noqa: BLE001 - timm / transformers raise all kinds
            raise ValueError(f"{where}: {' '.join(str(err).split())}") from err
        try:
            known = get_spec(spec.name)
        except ValueError:
            known = None
        if known is not None and known != spec and spec.name not in _CUSTOM:
            raise ValueError(f"{where}: '{spec.name}' is a built-in encoder; choose another name")
        specs.append(register(spec, overwrite=spec.name in _CUSTOM))
        _CUSTOM.add(spec.name)
    return specs


def spec_from_config(entry: Mapping[str, Any]) -> EncoderSpec:
    """The complete spec of one config entry: given fields, plus what the architecture tells.

    Goes through `EncoderSpec.from_dict` (the one config loader): values are coerced to the
    fields' types (YAML lists -> tuples) and unknown fields are refused, naming the known ones.
    """
    data = dict(entry)
    for key in ("name", "backend", "checkpoint"):
        if not data.get(key):
            raise ValueError(f"'{key}' is required")
    data.setdefault("frames", 16)
    if data["backend"] == "timm":
        _fill_timm(data)
    elif data["backend"] == "hf_auto":
        _fill_hf(data)
    missing = [k for k in ("width", "grid", "prefix_tokens") if k not in data]
    if missing:
        raise ValueError(f"give {missing} for backend {data['backend']!r} (not inferred)")
    data.setdefault("time_steps", data["frames"])
    return EncoderSpec.from_dict(data)


def _fill_timm(data: dict[str, Any]) -> None:
    import timm
    import torch

    with torch.device("meta"):
        model = timm.create_model(
            data["checkpoint"], pretrained=False, num_classes=0, **data.get("arch", {})
        )
    if not hasattr(model, "blocks") or not hasattr(model, "patch_embed"):
        raise ValueError(
            f"timm model {data['checkpoint']!r} has no transformer `blocks`; "
            "only ViT-style timm models are supported"
        )
    if data.get("image_size", 224) != model.patch_embed.img_size[0]:  # at the spec's size
        with torch.device("meta"):
            model = timm.create_model(
                data["checkpoint"],
                pretrained=False,
                num_classes=0,
                img_size=data.get("image_size", 224),
                **data.get("arch", {}),
            )
    cfg = model.pretrained_cfg
    if "." not in data["checkpoint"] and cfg.get("tag"):  # pin the tag the bare name resolves to
        data["checkpoint"] = f"{cfg['architecture']}.{cfg['tag']}"
    data.setdefault("width", model.num_features)
    data.setdefault("prefix_tokens", getattr(model, "num_prefix_tokens", 0))
    data.setdefault("grid", tuple(model.patch_embed.grid_size))
    if "mean" not in data and "std" not in data and cfg.get("mean") and cfg.get("std"):
        data["mean"], data["std"] = tuple(cfg["mean"]), tuple(cfg["std"])
    if cfg.get("interpolation") in ("bicubic", "bilinear"):
        data.setdefault("interpolation", cfg["interpolation"])


def _fill_hf(data: dict[str, Any]) -> None:
    from encoders.backbones.hf_auto import hf_auto_config

    arch = dict(data.get("arch", {}))
    local = Path(data["checkpoint"]).expanduser()
    source = local if local.is_dir() else None
    if source is None and "model_type" not in arch:
        source = _hub_file_dir(data, "config.json")
        if source is None:
            raise ValueError(
                f"no config.json for {data['checkpoint']!r} in a local folder, the "
                "HF cache or the hub; give arch.model_type and the config values"
            )
    config = hf_auto_config(arch, source)
    vision = getattr(config, "vision_config", None) or config
    size = data.get("image_size", getattr(vision, "image_size", 224))
    size = size if isinstance(size, int) else size[0]
    patch = getattr(vision, "patch_size", None)
    patch = patch if isinstance(patch, int) or patch is None else patch[0]
    tubelet = getattr(vision, "tubelet_size", None)
    if tubelet is not None:  # video model: the whole clip goes in, T = frames / tubelet depth
        tubelet = tubelet if isinstance(tubelet, int) else tubelet[0]
        data.setdefault("time_steps", data["frames"] // tubelet)
    if "grid" not in data and patch:
        data["grid"] = (size // patch, size // patch)
    data.setdefault("image_size", size)
    if "width" not in data or "prefix_tokens" not in data:
        tokens = _probe_tokens(data, config)
        data.setdefault("width", tokens[-1])
        if "grid" in data:
            per_item = data["time_steps"] if tubelet is not None else 1
            patches = per_item * data["grid"][0] * data["grid"][1]
            data.setdefault("prefix_tokens", tokens[1] - patches)
    if local.is_dir() or not data.get("tiny"):  # random models read no processor config
        folder = local if local.is_dir() else _hub_file_dir(data, "preprocessor_config.json")
        _fill_hf_processor(data, folder)


def _probe_tokens(data: dict[str, Any], config: Any) -> tuple[int, ...]:
    """Shape of the first block's output for one input, computed on the meta device."""
    import torch
    from transformers import AutoModel

    with torch.device("meta"):
        model = AutoModel.from_config(config)
        model = getattr(model, "vision_model", model)
        s = data["image_size"]
        video = getattr(getattr(config, "vision_config", None) or config, "tubelet_size", None)
        x = torch.empty((1, data["frames"], 3, s, s) if video else (1, 3, s, s))
        return tuple(model(pixel_values=x, output_hidden_states=True).hidden_states[1].shape)


def _fill_hf_processor(data: dict[str, Any], folder: Path | None) -> None:
    """mean / std / interpolation / resize from the checkpoint's preprocessor_config.json."""
    path = folder / "preprocessor_config.json" if folder is not None else None
    if path is None or not path.is_file():
        return
    proc = json.loads(path.read_text())
    if "image_mean" in proc and "image_std" in proc:
        data.setdefault("mean", tuple(proc["image_mean"]))
        data.setdefault("std", tuple(proc["image_std"]))
    interp = {2: "bilinear", 3: "bicubic"}.get(proc.get("resample"))
    if interp:
        data.setdefault("interpolation", interp)
    size = proc.get("size")
    if isinstance(size, dict) and "shortest_edge" in size and proc.get("do_center_crop"):
        data.setdefault("resize", "short_side_center_crop")


def _hub_file_dir(data: Mapping[str, Any], filename: str) -> Path | None:
    """Folder holding `filename` of a hub checkpoint: the HF cache, else (unless offline) a
    download of that one small file. None when neither has it."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    repo, revision = data["checkpoint"], data.get("revision")
    found = try_to_load_from_cache(repo, filename, revision=revision)
    if not isinstance(found, str) and not hub_offline():
        try:
            found = hf_hub_download(repo, filename, revision=revision, etag_timeout=10)
        except Exception:  # noqa: BLE001 - unknown repo, no such file, hub unreachable
            found = None
    return Path(found).parent if isinstance(found, str) else None


def check_encoders(
    encoders: str,
    custom: Sequence[Mapping[str, Any]] | None = None,
    weights: Mapping[str, str] | None = None,
    *,
    check_weights: bool = True,
) -> list[str]:
    """A job's pre-flight, on the driver before any store, cluster or model exists: register the
    config's encoders, resolve the set (names in order), and, unless `check_weights` is false
    (random weights), make sure each one's weights can be found. A missing checkpoint raises
    WeightsNotFoundError (one line) here, in well under a second, instead of in a Ray actor
    after the cluster has started. Only local sources are checked: with the hub online an
    uncached checkpoint is downloaded by the workers. Imports no torch for the built-in specs."""
    register_from_config(custom)
    names = resolve_encoder_set(encoders)
    if check_weights:
        check_spec_weights([get_spec(name) for name in names], weights)
    return names


def check_spec_weights(specs: Sequence[EncoderSpec], weights: Mapping[str, str] | None) -> None:
    """Each spec's weights can be found (a local path in ``weights``, or the hub's cache when
    offline); tiny specs are random by design. Raises WeightsNotFoundError (one line)."""
    weights = dict(weights or {})
    for spec in specs:
        if spec.tiny:
            continue
        if spec.name in weights:
            resolve_local(spec, weights[spec.name])
        elif hub_offline():
            hub_source(spec)
