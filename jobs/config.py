"""The extract job's typed config. Loading (YAML sections, flags over file values, coercion,
unknown keys) is ``pipeline.config``'s, shared with every other config of the project.

Every job prints its effective config and saves it beside its outputs, so a run can be repeated
from what it left behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.config import ConfigError
from pipeline.sampling import NUM_SAMPLED_FRAMES


@dataclass
class ExtractConfig:
    input: str = ""  # folder or glob of videos
    store: str = ""  # path or fsspec URL of the Zarr store to create or resume
    encoders: str = "merv"  # "merv" (full size), "tiny", or a comma list of registered names
    shard_size: int = 32  # videos per Zarr shard = unit of work and of writing
    batch_size: int = 4  # videos per encoder forward
    encoder_actors: int = 1  # actors, each holding every encoder
    encoder_cpus: float = 1.0  # CPUs reserved per encoder actor
    encoder_threads: int = 0  # torch threads per actor; 0 = encoder_cpus. More than reserved
    # lets a CPU-only actor use the cores that light decoding leaves idle.
    encoder_gpus: float | None = None  # GPUs per actor (fractional ok); None = 1 if CUDA else 0
    decode_workers: int = 0  # concurrent decode tasks; 0 = let Ray use the free CPUs
    decode_memory_mb: int = 512  # memory reserved per decode task (bounds frames in flight)
    dtype: str = "auto"  # encoder compute dtype: auto (bf16 on GPU, fp32 on CPU), fp32, bf16, fp16
    weights: dict[str, str] = field(default_factory=dict)  # encoder name -> local weights path
    random_weights: bool = False  # benchmarks only: full-size architectures, random weights
    # encoders declared here (EncoderSpec fields; see encoders/custom.py), usable in `encoders`
    custom_encoders: list[dict] = field(default_factory=list)
    retry_failed: bool = False  # recompute rows that failed in earlier runs
    overwrite_encoders: list[str] = field(default_factory=list)  # re-extract these (spec changed)
    all_files: bool = False  # list files without a video extension too (they fail with a reason)
    video_root: str = (
        ""  # folder or URL that relative manifest paths are under (default: its folder)
    )
    storage_options: dict[str, str] = field(default_factory=dict)  # fsspec options for input URLs
    time_steps: int = 16
    grid: int = 8
    # Frames decoded per video: MERV's rule samples exactly 32 (see pipeline.sampling); stored in
    # the store's attrs. Kept as a field so old job files load; any other value is refused.
    num_frames: int = NUM_SAMPLED_FRAMES
    address: str | None = None  # Ray cluster address; None = local in-process Ray
    progress: bool = True

    def __post_init__(self) -> None:
        if self.num_frames != NUM_SAMPLED_FRAMES:
            raise ConfigError(
                f"num_frames: {self.num_frames} is not allowed; MERV samples exactly "
                f"{NUM_SAMPLED_FRAMES} frames per video (ViViT takes all, 16-frame encoders every "
                "second one): remove the field"
            )
