"""Name -> EncoderSpec registry, encoder sets, and the built-in MERV specs."""

from __future__ import annotations

from encoders.spec import (
    CLIP_MEAN,
    CLIP_STD,
    HALF_MEAN,
    HALF_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    EncoderSpec,
)

_REGISTRY: dict[str, EncoderSpec] = {}

# Order matters: it is the mixer's encoder order.
ENCODER_SETS: dict[str, list[str]] = {
    "merv": ["languagebind", "dinov2", "vivit", "siglip"],
    "tiny": ["languagebind-tiny", "dinov2-tiny", "vivit-tiny", "siglip-tiny"],
}


def register(spec: EncoderSpec, *, overwrite: bool = False) -> EncoderSpec:
    """Add a spec. Re-registering an identical spec is a no-op; a different one needs overwrite."""
    old = _REGISTRY.get(spec.name)
    if old is not None and old != spec and not overwrite:
        raise ValueError(f"encoder {spec.name!r} already registered with a different spec")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> EncoderSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown encoder {name!r}; known: {', '.join(sorted(_REGISTRY))}"
        ) from None


def list_specs() -> list[EncoderSpec]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def resolve_encoder_set(text: str) -> list[str]:
    """'merv', 'tiny', or a comma list of registered names -> ordered list of names."""
    text = text.strip()
    if text in ENCODER_SETS:
        return list(ENCODER_SETS[text])
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"empty encoder set {text!r}; use one of {sorted(ENCODER_SETS)} or names")
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise ValueError(
            f"unknown encoder(s) {unknown}; known encoders: {', '.join(sorted(_REGISTRY))}; "
            f"known sets: {', '.join(sorted(ENCODER_SETS))}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate encoder names in {text!r}")
    return names


# ------------------------------------------------ built-in specs (the values of MERV's reference)

# LanguageBind video tower: CLIP ViT-L/14 (OpenCLIP-initialised, so exact GELU) + temporal attn.
_LB_ARCH = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    patch_size=14,
    image_size=224,
    num_frames=8,
    layer_norm_eps=1e-5,
    hidden_act="gelu",
)
# google/vivit-b-16x2-kinetics400 (the VivitConfig defaults, spelled out so they are fingerprinted).
_VIVIT_ARCH = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu_fast",
    layer_norm_eps=1e-6,
    image_size=224,
    num_frames=32,
    tubelet_size=[2, 16, 16],
    qkv_bias=True,
)
# openai/clip-vit-large-patch14 vision tower.
_CLIP_ARCH = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    patch_size=14,
    image_size=224,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
)

LANGUAGEBIND = EncoderSpec(
    name="languagebind",
    backend="languagebind",
    checkpoint="LanguageBind/LanguageBind_Video_merge",
    frames=16,
    resize="short_side_center_crop",
    interpolation="bilinear",
    resize_impl="tensor",
    mean=CLIP_MEAN,
    std=CLIP_STD,
    layer=-2,
    final_norm=False,
    prefix_tokens=1,
    grid=(16, 16),
    width=1024,
    arch=_LB_ARCH,
)
DINOV2 = EncoderSpec(
    name="dinov2",
    backend="timm",
    checkpoint="vit_large_patch14_reg4_dinov2.lvd142m",
    frames=16,
    resize="squash",
    interpolation="bicubic",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    layer=-2,
    final_norm=False,
    prefix_tokens=5,
    grid=(16, 16),
    width=1024,
)
VIVIT = EncoderSpec(
    name="vivit",
    backend="hf_vivit",
    checkpoint="google/vivit-b-16x2-kinetics400",
    frames=32,
    resize="squash",
    interpolation="bilinear",
    mean=HALF_MEAN,
    std=HALF_STD,
    layer=-1,
    final_norm=True,
    prefix_tokens=1,
    grid=(14, 14),
    width=768,
    arch=_VIVIT_ARCH,
)
# Pinned to the `.webli` tag: newer timm resolves the bare name to `.v2_webli`, which MERV never used.
SIGLIP = EncoderSpec(
    name="siglip",
    backend="timm",
    checkpoint="vit_base_patch16_siglip_224.webli",
    frames=16,
    resize="squash",
    interpolation="bicubic",
    mean=HALF_MEAN,
    std=HALF_STD,
    layer=-2,
    final_norm=False,
    prefix_tokens=0,
    grid=(14, 14),
    width=768,
)
CLIP = EncoderSpec(
    name="clip",
    backend="hf_clip",
    checkpoint="openai/clip-vit-large-patch14",
    frames=16,
    resize="short_side_center_crop",
    interpolation="bicubic",
    mean=CLIP_MEAN,
    std=CLIP_STD,
    layer=-2,
    final_norm=False,
    prefix_tokens=1,
    grid=(16, 16),
    width=1024,
    arch=_CLIP_ARCH,
)


def _tiny(spec: EncoderSpec, width: int, **extra: object) -> EncoderSpec:
    """Same family, patch size, image size, grid, prefix tokens and frames; width/depth shrunk.

    `extra` goes into `arch` (so into the fingerprint): init values a tiny random model needs so
    that every block visibly changes its input, which is what lets tests tell layers apart.
    """
    small = dict(depth=2, heads=2, mlp=4 * width)
    if spec.backend == "timm":
        arch = dict(embed_dim=width, depth=small["depth"], num_heads=small["heads"], **extra)
    else:  # HF-style config names (LanguageBind follows them too)
        arch = dict(
            spec.arch,
            hidden_size=width,
            num_hidden_layers=small["depth"],
            num_attention_heads=small["heads"],
            intermediate_size=small["mlp"],
            **extra,
        )
    return spec.replace(name=f"{spec.name}-tiny", width=width, arch=arch, tiny=True)


for _spec in (LANGUAGEBIND, DINOV2, VIVIT, SIGLIP, CLIP):
    register(_spec)
# timm's hub repo of each built-in timm checkpoint (`timm/<name>`), so that finding their weights
# on a job's driver needs no timm (it imports torch); a test pins these to timm's own configs.
TIMM_HUB_REPOS = {s.checkpoint: f"timm/{s.checkpoint}" for s in (DINOV2, SIGLIP)}
# DINOv2's LayerScale starts at 1e-5 in timm, which leaves random blocks ~1e-6 from the identity
# (adjacent layers indistinguishable); 1.0 makes each tiny block change its input by ~8%, as the
# other tiny families' blocks do without help. Real checkpoints carry their trained LayerScale.
_TINY = (
    (LANGUAGEBIND, 64, {}),
    (DINOV2, 64, {"init_values": 1.0}),
    (VIVIT, 48, {}),
    (SIGLIP, 48, {}),
    (CLIP, 64, {}),
)
for _spec, _width, _extra in _TINY:
    register(_tiny(_spec, _width, **_extra))
