"""FrozenEncoder (preprocess + frozen forward) and build_encoder (architecture + weights)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from encoders.backbones import backbone_class
from encoders.backbones._base import Backbone
from encoders.preprocess import preprocess_frames
from encoders.registry import get_spec
from encoders.spec import EncoderSpec
from encoders.weights import hub_source, resolve_local
from pipeline.sampling import NUM_SAMPLED_FRAMES


class FrozenEncoder(nn.Module):
    """A frozen video encoder: uint8 videos [NUM_SAMPLED_FRAMES, H, W, 3] -> raw token grids
    [B, T, Hg, Wg, C]."""

    def __init__(
        self, spec: EncoderSpec, backbone: Backbone, autocast_dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        self.spec = spec
        self.backbone = backbone
        self.autocast_dtype = autocast_dtype  # used on CUDA only
        self.eval().requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def preprocess(self, videos: Sequence[torch.Tensor]) -> torch.Tensor:
        """uint8 videos, each [NUM_SAMPLED_FRAMES, H, W, 3] (sizes may differ) -> float
        [B, frames, 3, S, S]: every `frame_stride`-th frame, resized and normalised.

        Runs on each video's own device; `encode` moves the uint8 frames to the model first.
        """
        if len(videos) == 0:
            raise ValueError("no videos to preprocess")
        out = []
        for i, video in enumerate(videos):
            if video.ndim != 4 or video.shape[0] != NUM_SAMPLED_FRAMES:
                raise ValueError(
                    f"video {i}: expected [{NUM_SAMPLED_FRAMES}, H, W, 3] uint8, "
                    f"got {tuple(video.shape)}"
                )
            out.append(preprocess_frames(video[:: self.spec.frame_stride], self.spec))
        return torch.stack(out)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [B, frames, 3, S, S] -> [B, T, Hg, Wg, C]."""
        s = self.spec
        if pixels.ndim != 5 or pixels.shape[1] != s.frames:
            raise ValueError(
                f"encoder '{s.name}' expects [B, {s.frames}, 3, {s.image_size}, "
                f"{s.image_size}], got {tuple(pixels.shape)}"
            )
        out = self.backbone(pixels)
        if out.shape[1:] != s.output_shape:
            raise RuntimeError(
                f"encoder '{s.name}' gave {tuple(out.shape[1:])}, spec says {s.output_shape}"
            )
        return out

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.device.type == "cuda" and self.autocast_dtype not in (None, torch.float32):
            return torch.autocast("cuda", dtype=self.autocast_dtype)
        return contextlib.nullcontext()

    def encode(
        self,
        videos: Sequence[torch.Tensor],
        pad_to: int | None = None,
        timings: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """Preprocess + frozen forward; float32 [B, T, Hg, Wg, C] on the model's device.

        ``pad_to`` zero-pads the batch to a fixed size: kernels are then chosen for one shape
        only, so a video's output never depends on how many videos shared its forward.
        ``timings``, when given, gains the seconds of each part (``preprocess_s``,
        ``forward_s``; the device is synchronised between them).
        """
        self.eval()
        dev = self.device
        clock = _Clock(timings, dev)
        with torch.inference_mode():
            pixels = self.preprocess([v.to(dev, non_blocking=True) for v in videos])
            n = pixels.shape[0]
            if pad_to and pad_to > n:
                pad = pixels.new_zeros((pad_to - n, *pixels.shape[1:]))
                pixels = torch.cat([pixels, pad])
            clock.lap("preprocess_s")
            with self._autocast():
                out = self.forward(pixels)[:n]
            clock.lap("forward_s")
        return out.float()


class _Clock:
    """Adds the seconds since the last lap to ``timings[name]`` (nothing when timings is None)."""

    def __init__(self, timings: dict[str, float] | None, device: torch.device) -> None:
        self.timings, self.device = timings, torch.device(device)
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.timings is None:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


def _seed_for(spec: EncoderSpec) -> int:
    return int(spec.fingerprint()[:8], 16)


def build_encoder(
    name_or_spec: str | EncoderSpec,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    weights: str | os.PathLike[str] | None = None,
    random_init: bool = False,
) -> FrozenEncoder:
    """Build a frozen encoder: its architecture, its weights, on `device`, in eval mode.

    Args:
        name_or_spec: a registered encoder name, or an EncoderSpec (e.g. one sent as a dict).
        device: where the model runs.
        dtype: the CUDA autocast dtype (default bfloat16 on CUDA); CPU always runs float32.
        weights: a local checkpoint file or directory; without it, the spec's own checkpoint
            (an `hf_auto` checkpoint folder, else the HF cache, or the hub unless
            HF_HUB_OFFLINE is set).
        random_init: the full architecture with seeded random weights (tests, benchmarks):
            N(0, 0.02), norms 1 / 0, made without the libraries' initialisers (ViT-L: ~1 s,
            not ~5 s). Tiny specs are always random, seeded from the spec fingerprint, so
            identical in every process.

    Raises:
        ValueError: an unknown encoder name or backend; `weights` given for a tiny spec; a
            checkpoint that does not fit the architecture, or a kept layer out of range.
        WeightsNotFoundError: neither `weights` nor the hub (cache) holds checkpoint files;
            raised before any model is built.
    """
    spec = get_spec(name_or_spec) if isinstance(name_or_spec, str) else name_or_spec
    backbone_cls = backbone_class(spec.backend)
    if spec.tiny and weights is not None:
        raise ValueError(f"encoder '{spec.name}' is a tiny random model; it takes no weights")
    random = spec.tiny or random_init
    # Resolve weights before building anything, so a missing checkpoint fails fast.
    source = None
    if not random:
        source = resolve_local(spec, weights) if weights is not None else hub_source(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed_for(spec))
        if random and not spec.tiny:  # full-size random: skip the libraries' slow initialisers
            with _parameters_on_meta():
                backbone = backbone_cls(spec, None)
            _materialize_random(backbone)
        else:
            backbone = backbone_cls(spec, source)
    device = torch.device(device)
    if dtype is None and device.type == "cuda":
        dtype = torch.bfloat16
    return FrozenEncoder(spec, backbone.to(device), autocast_dtype=dtype)


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Create parameters on the meta device (no memory, no init work); buffers stay real, so
    computed ones (position ids) keep their values."""
    register = nn.Module.register_parameter

    def on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register(module, name, param)

    nn.Module.register_parameter = on_meta  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = register  # type: ignore[method-assign]


_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm2d, nn.RMSNorm)


@torch.no_grad()
def _materialize_random(model: nn.Module) -> None:
    """Seeded values for every meta parameter: norm weights 1 and biases 0, the rest N(0, 0.02)."""
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is None or not p.is_meta:
                continue
            value = torch.empty(p.shape, dtype=p.dtype)
            if isinstance(module, _NORMS):
                value.fill_(1.0 if name == "weight" else 0.0)
            else:
                value.normal_(0.0, 0.02)
            module._parameters[name] = nn.Parameter(value, requires_grad=False)
