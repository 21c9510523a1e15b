"""`merv encoders`: list registered encoders; `--check NAME` loads one and encodes a clip."""

from __future__ import annotations

import os
import time


def local_weights_state(spec) -> str:
    """Where this encoder's weights would come from, without touching the network."""
    if spec.tiny:
        return "random (tiny)"
    from encoders.base import _hub_source
    from encoders.weights import WeightsNotFoundError

    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # look in the local cache only
    try:
        _hub_source(spec)
        return "cached"
    except WeightsNotFoundError:
        return "not local"
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


def list_encoders(echo=print) -> int:
    from encoders import ENCODER_SETS, list_specs

    echo(f"{'name':<20}{'backend':<14}{'frames':>7}{'grid':>9}{'width':>7}{'layer':>7}  "
         f"{'weights':<15}checkpoint")
    for spec in list_specs():
        grid = "x".join(str(g) for g in spec.output_shape[1:3])
        echo(f"{spec.name:<20}{spec.backend:<14}{spec.frames:>7}{grid:>9}{spec.width:>7}"
             f"{spec.layer:>7}  {local_weights_state(spec):<15}{spec.checkpoint}")
    for name, members in ENCODER_SETS.items():
        echo(f"set {name!r}: {', '.join(members)}")
    return 0


def check_encoder(name: str, weights: str | None, echo=print) -> int:
    """Build NAME (tiny: random; full: from weights) and encode one synthetic clip."""
    import torch

    from encoders import build_encoder
    from pipeline.align import align_tokens
    from pipeline.synthetic import ClipSpec, render_clip

    start = time.perf_counter()
    encoder = build_encoder(name, weights=weights)
    built = time.perf_counter() - start
    frames = render_clip(ClipSpec("red_right", n_frames=32, size=240, shape_size=48, y=90, seed=0))
    start = time.perf_counter()
    grid = encoder.encode([torch.from_numpy(frames)])
    aligned = align_tokens(grid)
    echo(f"{name}: built in {built:.1f}s; one clip -> raw {tuple(grid.shape)} -> aligned "
         f"{tuple(aligned.shape)} in {time.perf_counter() - start:.2f}s; "
         f"finite={bool(torch.isfinite(grid).all())}; fingerprint {encoder.spec.fingerprint()}")
    return 0
