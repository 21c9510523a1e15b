"""Encoder-side mutations: kept layer, prefix tokens, final norm, frame stride, alignment,
preprocessing. Every one is caught by fast tests on tiny models or plain tensors (no full-size
model, nothing marked slow)."""

ENC = "tests/encoders/test_encoders.py"
PRE = "tests/encoders/test_preprocess.py"
REG = "tests/encoders/test_spec_registry.py"
ALIGN = "tests/encoders/test_align.py"

TIMM_KEPT = f"{ENC}::test_timm_kept_layer_is_penultimate_block"
CLIP_KEPT = f"{ENC}::test_clip_kept_layer_is_penultimate_hidden_state"
VIVIT_KEPT = f"{ENC}::test_vivit_kept_layer_is_last_hidden_state_after_layernorm"
LB_KEPT = f"{ENC}::test_languagebind_kept_layer_is_penultimate_hidden_state"
FRAMES = f"{PRE}::test_encoder_preprocess_takes_the_documented_frames"
TORCHVISION = f"{PRE}::test_matches_torchvision_on_pil"
PREPROCESSING_TABLE = f"{REG}::test_default_preprocessing_matches_merv_table"

_DINO_PREPROCESS = (
    'frames=16,\n    resize="squash",\n    interpolation="bicubic",\n'
    "    mean=IMAGENET_MEAN,\n    std=IMAGENET_STD,\n    layer=-2,\n    final_norm=False,\n"
    "    prefix_tokens=5,"
)

MUTATIONS = [
    # ------------------------------------------------------------------ kept layer
    dict(
        id="enc-kept-index-plus-one",
        file="encoders/backbones/_base.py",
        old="    return layer % depth",
        new="    return (layer + 1) % depth",
        tests=[f"{TIMM_KEPT}[dinov2-tiny-5]"],
        why="layer -> block index off by one: the last block is kept instead of the penultimate",
    ),
    dict(
        id="enc-hf-blocks-cut-one-short",
        file="encoders/backbones/_hf.py",
        old="        self.index = kept_index(spec.layer, len(blocks))\n"
        "        setattr(holder, attr, blocks[: self.index + 1])\n"
        "        holder, attr = get_path(self.model, self.FINAL_NORM)",
        new="        self.index = kept_index(spec.layer, len(blocks))\n"
        "        setattr(holder, attr, blocks[: self.index])\n"
        "        holder, attr = get_path(self.model, self.FINAL_NORM)",
        tests=[CLIP_KEPT],
        why="pruning slices blocks[:index] (exclusive end): the kept block itself is dropped",
    ),
    dict(
        id="enc-hf-auto-hidden-states-index",
        file="encoders/backbones/hf_auto.py",
        old="hidden_states[\n                self.index + 1\n",
        new="hidden_states[\n                self.index\n",
        tests=["tests/encoders/test_custom.py::test_hf_auto_kept_layer_matches_hidden_states"],
        why="hidden_states[0] is the embedding output; indexing it by block index is off by one",
    ),
    dict(
        id="enc-languagebind-layer-last",
        file="encoders/registry.py",
        old="    std=CLIP_STD,\n    layer=-2,\n    final_norm=False,\n    prefix_tokens=1,\n"
        "    grid=(16, 16),\n    width=1024,\n    arch=_LB_ARCH,",
        new="    std=CLIP_STD,\n    layer=-1,\n    final_norm=False,\n    prefix_tokens=1,\n"
        "    grid=(16, 16),\n    width=1024,\n    arch=_LB_ARCH,",
        tests=[LB_KEPT],
        why="LanguageBind spec keeps the last layer, not MERV's penultimate hidden state",
    ),
    dict(
        id="enc-dinov2-layer-last",
        file="encoders/registry.py",
        old="    layer=-2,\n    final_norm=False,\n    prefix_tokens=5,",
        new="    layer=-1,\n    final_norm=False,\n    prefix_tokens=5,",
        tests=[f"{TIMM_KEPT}[dinov2-tiny-5]"],
        why="DINOv2 spec keeps the last block, not the penultimate one",
    ),
    dict(
        id="enc-tiny-dinov2-layerscale-1e-5",
        file="encoders/registry.py",
        old='(DINOV2, 64, {"init_values": 1.0})',
        new="(DINOV2, 64, {})",
        tests=[f"{TIMM_KEPT}[dinov2-tiny-5]"],
        why="tiny DINOv2 back on timm's 1e-5 LayerScale: blocks are ~identities and no tiny "
        "test can tell which layer is kept",
    ),
    # ------------------------------------------------------------------ prefix tokens
    dict(
        id="enc-prefix-dropped-from-end",
        file="encoders/backbones/_base.py",
        old="tokens = tokens[:, s.prefix_tokens if prefix is None else prefix :]",
        new="tokens = tokens[:, : tokens.shape[1] - (s.prefix_tokens if prefix is None "
        "else prefix)]",
        tests=[CLIP_KEPT],
        why="the right number of tokens dropped from the wrong end: CLS kept, last patch lost, "
        "grid shifted by one",
    ),
    # ------------------------------------------------------------------ final norm
    dict(
        id="enc-clip-post-layernorm-always",
        file="encoders/backbones/hf_clip.py",
        old="        if self.spec.final_norm:\n            tokens = self.final_norm(tokens)\n",
        new="        tokens = self.final_norm(tokens)\n",
        tests=[CLIP_KEPT],
        why="CLIP's post_layernorm applied to the penultimate hidden state (MERV keeps it raw)",
    ),
    dict(
        id="enc-languagebind-final-norm",
        file="encoders/backbones/languagebind.py",
        old="final_norm=self.spec.final_norm)",
        new="final_norm=True)",
        tests=[LB_KEPT],
        why="LanguageBind's post_layernorm applied where MERV takes the raw hidden state",
    ),
    dict(
        id="enc-vivit-no-final-layernorm",
        file="encoders/backbones/hf_vivit.py",
        old="        if self.spec.final_norm:  # ViViT's last_hidden_state",
        new="        if not self.spec.final_norm:  # ViViT's last_hidden_state",
        tests=[VIVIT_KEPT],
        why="ViViT's last block taken before its final LayerNorm",
    ),
    # ------------------------------------------------------------------ finding weights
    dict(
        id="enc-timm-hub-repo-bare-name",
        file="encoders/registry.py",
        old='TIMM_HUB_REPOS = {s.checkpoint: f"timm/{s.checkpoint}" for s in (DINOV2, SIGLIP)}',
        new="TIMM_HUB_REPOS = {s.checkpoint: s.checkpoint for s in (DINOV2, SIGLIP)}",
        tests=["tests/encoders/test_custom.py::test_builtin_timm_hub_repos_are_timms_own"],
        why="built-in timm weights looked up under the bare model name, not timm's hub repo",
    ),
    dict(
        id="enc-preflight-asks-timm",
        file="encoders/weights.py",
        old="    if spec.checkpoint in TIMM_HUB_REPOS:\n        return TIMM_HUB_REPOS[spec.checkpoint]\n",
        new="",
        tests=[
            "tests/encoders/test_custom.py::test_preflight_of_builtin_encoders_imports_no_torch"
        ],
        why="built-in timm repos asked of timm: the job's driver imports torch for its pre-flight",
    ),
    # ------------------------------------------------------------------ frame stride
    dict(
        id="enc-frame-stride-odd-frames",
        file="encoders/base.py",
        old="video[:: self.spec.frame_stride]",
        new="video[1 :: self.spec.frame_stride]",
        tests=[FRAMES],
        why="16-frame encoders take sampled frames 1, 3, ..., 31 instead of 0, 2, ..., 30",
    ),
    dict(
        id="enc-frame-first-half",
        file="encoders/base.py",
        old="video[:: self.spec.frame_stride]",
        new="video[: self.spec.frames]",
        tests=[FRAMES],
        why="16-frame encoders take the first 16 sampled frames (half the clip) "
        "instead of every second one",
    ),
    dict(
        id="enc-frame-stride-fixed",
        file="encoders/spec.py",
        old="return NUM_SAMPLED_FRAMES // self.frames",
        new="return 2",
        tests=[FRAMES],
        why="stride hard-coded for 16-frame encoders: ViViT gets 16 frames, not its 32",
    ),
    # ------------------------------------------------------------------ alignment
    dict(
        id="enc-align-grid-transposed",
        file="encoders/align.py",
        old="x = x.reshape(b * time_steps, h, w, c).permute(0, 3, 1, 2)",
        new="x = x.reshape(b * time_steps, h, w, c).permute(0, 3, 2, 1)",
        tests=[f"{ALIGN}::test_16x16_grid_becomes_its_2x2_block_means"],
        why="H and W swapped before pooling: each frame's 8x8 grid comes out transposed",
    ),
    dict(
        id="enc-align-tokens-channels-mixed",
        file="encoders/align.py",
        old="x = x.permute(0, 2, 3, 1).reshape(b, time_steps, grid * grid, c)",
        new="x = x.reshape(b, time_steps, grid * grid, c)",
        tests=[f"{ALIGN}::test_16x16_grid_becomes_its_2x2_block_means"],
        why="pooled [C, G, G] reshaped to tokens without moving channels last",
    ),
    dict(
        id="enc-align-time-not-permuted",
        file="encoders/align.py",
        old="x = x.permute(0, 2, 3, 4, 1).reshape(b, h * w * c, t)",
        new="x = x.reshape(b, h * w * c, t)",
        tests=[f"{ALIGN}::test_time_pooling_32_to_16_averages_consecutive_pairs"],
        why="time pooling over the last memory axis (channels), not over time",
    ),
    dict(
        id="enc-align-time-not-permuted-back",
        file="encoders/align.py",
        old="x = x.reshape(b, h, w, c, time_steps).permute(0, 4, 1, 2, 3)",
        new="x = x.reshape(b, time_steps, h, w, c)",
        tests=[f"{ALIGN}::test_time_pooling_32_to_16_averages_consecutive_pairs"],
        why="time-pooled tensor reshaped back without the inverse permute",
    ),
    dict(
        id="enc-align-pooled-in-fp16",
        file="encoders/align.py",
        old="x = tokens.float()",
        new="x = tokens",
        tests=[f"{ALIGN}::test_float16_tokens_are_pooled_in_float32_and_rounded_once"],
        why="fp16 grids pooled in fp16: time pooling rounds before the spatial pooling",
    ),
    dict(
        id="enc-align-workers-fp16-before-pooling",
        file="jobs/workers.py",
        old="align_tokens(grid, self.time_steps, self.grid).to(torch.float16)",
        new="align_tokens(grid.to(torch.float16), self.time_steps, self.grid)",
        tests=[f"{ALIGN}::test_encoder_actor_pools_in_float32_then_stores_float16"],
        why="encoder actor casts raw features to float16 before pooling, not after",
    ),
    # ------------------------------------------------------------------ preprocessing
    dict(
        id="enc-pre-mean-std-swapped",
        file="encoders/preprocess.py",
        old="return (x - mean) / std",
        new="return (x - std) / mean",
        tests=[f"{TORCHVISION}[hw0-dinov2]"],
        why="normalisation with mean and std swapped",
    ),
    dict(
        id="enc-pre-channels-bgr",
        file="encoders/preprocess.py",
        old="x = frames.permute(0, 3, 1, 2)  # [F, 3, H, W] uint8",
        new="x = frames.flip(-1).permute(0, 3, 1, 2)  # [F, 3, H, W] uint8",
        tests=[f"{TORCHVISION}[hw0-dinov2]"],
        why="frames treated as BGR (OpenCV order): channels reversed",
    ),
    dict(
        id="enc-pre-short-side-squashed",
        file="encoders/preprocess.py",
        old='(size, size) if spec.resize == "squash" else',
        new="(size, size) if spec.resize else",
        tests=[f"{TORCHVISION}[hw0-clip]"],
        why="short-side-resize + centre-crop encoders squashed instead (aspect ratio lost)",
    ),
    dict(
        id="enc-pre-tensor-align-corners",
        file="encoders/preprocess.py",
        old="mode=spec.interpolation, align_corners=False)",
        new="mode=spec.interpolation, align_corners=True)",
        tests=[f"{PRE}::test_languagebind_matches_reference_tensor_pipeline[hw0]"],
        why="LanguageBind's tensor resize with align_corners=True (the reference uses False)",
    ),
    dict(
        id="enc-pre-pil-bicubic-as-bilinear",
        file="encoders/pil_resize.py",
        old='_FILTERS = {"bicubic": (_bicubic, 2.0), "bilinear": (_bilinear, 1.0)}',
        new='_FILTERS = {"bicubic": (_bilinear, 1.0), "bilinear": (_bilinear, 1.0)}',
        tests=[f"{TORCHVISION}[hw0-dinov2]"],
        why="bicubic encoders resized with the bilinear kernel",
    ),
    dict(
        id="enc-pre-pil-no-uint8-rounding",
        file="encoders/pil_resize.py",
        old="return out.add_(_PRECISION // 2).div_(_PRECISION).floor_().clamp_(0, 255)",
        new="return out.div_(_PRECISION).clamp_(0, 255)",
        tests=[f"{TORCHVISION}[hw0-dinov2]"],
        why="resampled values not rounded to uint8 as Pillow stores them (float antialias path)",
    ),
    dict(
        id="enc-pre-dinov2-bilinear",
        file="encoders/registry.py",
        old=_DINO_PREPROCESS,
        new=_DINO_PREPROCESS.replace('"bicubic"', '"bilinear"'),
        tests=[f"{PREPROCESSING_TABLE}[dinov2]"],
        why="DINOv2 spec with bilinear interpolation (MERV: bicubic); the preprocessing "
        "references read the spec, so only the pinned table sees it",
    ),
    dict(
        id="enc-pre-dinov2-mean-std-swapped",
        file="encoders/registry.py",
        old=_DINO_PREPROCESS,
        new=_DINO_PREPROCESS.replace(
            "mean=IMAGENET_MEAN,\n    std=IMAGENET_STD", "mean=IMAGENET_STD,\n    std=IMAGENET_MEAN"
        ),
        tests=[f"{PREPROCESSING_TABLE}[dinov2]"],
        why="DINOv2 spec with ImageNet mean and std swapped",
    ),
    dict(
        id="enc-pre-vivit-center-crop",
        file="encoders/registry.py",
        old='frames=32,\n    resize="squash",\n    interpolation="bilinear",',
        new='frames=32,\n    resize="short_side_center_crop",\n    interpolation="bilinear",',
        tests=[f"{PREPROCESSING_TABLE}[vivit]"],
        why="ViViT given the usual resize + centre crop instead of MERV's squash",
    ),
]
