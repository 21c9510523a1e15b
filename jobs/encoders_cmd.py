"""`merv encoders`: list registered encoders; `--check NAME` loads one and encodes a clip.

`--config FILE` first registers the file's `custom_encoders` and uses its `weights` paths, so
the listing and the check see exactly what `merv extract --config FILE` would run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from encoders import EncoderSpec


def _load_config(path: str | None) -> dict[str, str]:
    """The extract section's custom encoders (registered now) and weights paths."""
    from encoders import register_from_config
    from pipeline.config import ConfigError, load_section

    section = load_section(path, "extract")
    try:
        register_from_config(section.get("custom_encoders") or [])
    except ValueError as err:
        raise ConfigError(f"{path} [extract]: {err}") from err
    return {str(k): str(v) for k, v in (section.get("weights") or {}).items()}


def local_weights_state(spec: EncoderSpec, weights: dict[str, str] | None = None) -> str:
    """Where this encoder's weights would come from, without touching the network."""
    if spec.tiny:
        return "random (tiny)"
    from encoders.weights import WeightsNotFoundError, hub_source, weight_files

    if weights and spec.name in weights:
        path = Path(weights[spec.name]).expanduser()
        return f"local: {path}" if weight_files(path) else f"MISSING: {path}"
    try:
        hub_source(spec, offline=True)  # look in the local cache only
        return "cached"
    except WeightsNotFoundError:
        return "not local"


def list_encoders(config: str | None = None, echo: Callable[[str], None] = print) -> int:
    from encoders import ENCODER_SETS, list_specs

    weights = _load_config(config)
    echo(
        f"{'name':<20}{'backend':<14}{'frames':>7}{'grid TxHxW':>12}{'width':>7}{'layer':>7}  "
        f"{'checkpoint':<45}weights"
    )
    for spec in list_specs():
        grid = "x".join(str(g) for g in spec.output_shape[:3])
        echo(
            f"{spec.name:<20}{spec.backend:<14}{spec.frames:>7}{grid:>12}{spec.width:>7}"
            f"{spec.layer:>7}  {spec.checkpoint:<45}{local_weights_state(spec, weights)}"
        )
    for name, members in ENCODER_SETS.items():
        echo(f"set {name!r}: {', '.join(members)}")
    return 0


def check_encoder(
    name: str, weights: str | None, config: str | None = None, echo: Callable[[str], None] = print
) -> int:
    """Build NAME (tiny: random; full: from weights) and encode one synthetic clip."""
    import torch

    from encoders import build_encoder, get_spec
    from encoders.align import align_tokens
    from pipeline.sampling import NUM_SAMPLED_FRAMES
    from pipeline.synthetic import ClipSpec, render_clip

    config_weights = _load_config(config)
    spec = get_spec(name)
    weights = weights or (None if spec.tiny else config_weights.get(name))
    start = time.perf_counter()
    encoder = build_encoder(spec, weights=weights)
    built = time.perf_counter() - start
    clip = ClipSpec("red_right", n_frames=NUM_SAMPLED_FRAMES, size=240, shape_size=48, y=90, seed=0)
    frames = render_clip(clip)
    start = time.perf_counter()
    grid = encoder.encode([torch.from_numpy(frames)])
    aligned = align_tokens(grid)
    echo(
        f"{name}: built in {built:.1f}s; one clip -> raw {tuple(grid.shape)} -> aligned "
        f"{tuple(aligned.shape)} in {time.perf_counter() - start:.2f}s; "
        f"finite={bool(torch.isfinite(grid).all())}; fingerprint {encoder.spec.fingerprint()}"
    )
    return 0
