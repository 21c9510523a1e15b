"""The extract job's typed config. Loading (YAML sections, flags over file values, coercion,
unknown keys) is ``pipeline.config``'s, shared with every other config of the project.

Every job prints its effective config and saves it beside its outputs, so a run can be repeated
from what it left behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.config import ConfigError, Range, check_ranges
from pipeline.decode_settings import MODES as DECODE_MODES
from pipeline.sampling import NUM_SAMPLED_FRAMES

# The allowed values of every number field of ExtractConfig, checked when the config is made,
# so a bad value is refused before any store, folder or Ray is created. A new number field is
# one entry here.
RANGES = {
    "shard_size": Range(1),
    "batch_size": Range(1),
    "encoder_actors": Range(1),
    "encoder_cpus": Range(0, above=True),
    "encoder_threads": Range(0),
    "encoder_gpus": Range(0, none=True),
    "decode_workers": Range(0),
    "decode_memory_mb": Range(1),
    "decode_short_side": Range(0),
    "decode_threads": Range(0),
    "max_video_retries": Range(0),
    "read_timeout_s": Range(0),
    # no more steps than decoded frames, no more cells than the largest patch grid of MERV's
    # encoders (16x16): beyond that, pooling would only repeat values
    "time_steps": Range(1, NUM_SAMPLED_FRAMES),
    "grid": Range(1, 16),
}


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
    # How frames are decoded (pipeline.decode_settings; README "Decoding speed"), part of every
    # encoder's fingerprint: "exact" = at their coded size up to 1080p, as the reference decodes
    # them; "fast" = shrunk in the decoder to decode_short_side, so only encoder-sized frames
    # travel. "" = exact, or for `merv embed` the mode the model's training store was decoded in.
    decode_mode: str = ""
    decode_short_side: int = 0  # fast: the short side to decode at; 0 = 2x the largest input
    decode_threads: int = 1  # decoder threads per decode task (Ray runs one task per core)
    max_video_retries: int = 2  # retries of a video whose decode kills its worker; then failed
    read_timeout_s: float = 120.0  # time limit of one remote video read (all tries); 0 = none
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
    break_lock: bool = False  # remove the store's lock first (its holder is known dead); not saved
    lock_lease_s: float = 60.0  # the store lock's lease, renewed every third of it
    # failed videos the job tolerates before it exits with code 3: a count ("5") or a fraction
    # of the videos it processed ("0.05", "5%"); "" = any number (failures alone never fail it)
    max_failed: str = ""
    # merv embed: a trained checkpoint (merv train / distill output). The job then runs only
    # the encoders it reads and stores its fused tokens (features/fused) and its probe's
    # prediction instead of the encoders' features; `encoders` is not used.
    model: str = ""

    def __post_init__(self) -> None:
        if self.num_frames != NUM_SAMPLED_FRAMES:
            raise ConfigError(
                f"num_frames: {self.num_frames} is not allowed; MERV samples exactly "
                f"{NUM_SAMPLED_FRAMES} frames per video (ViViT takes all, 16-frame encoders every "
                "second one): remove the field"
            )
        check_ranges(self, RANGES)
        if self.decode_mode not in ("", *DECODE_MODES):
            raise ConfigError(
                f"decode_mode: {self.decode_mode!r} is not allowed; it must be one of "
                f"{list(DECODE_MODES)} (README: Decoding speed)"
            )
        failed_allowed(self.max_failed, 0)  # refuse a malformed value now, not at the end


def failed_allowed(max_failed: str, processed: int) -> float:
    """How many failed videos of ``processed`` ``max_failed`` tolerates (see the field)."""
    text = str(max_failed).strip()
    if not text:
        return float("inf")
    try:
        if text.endswith("%"):
            fraction = float(text[:-1]) / 100
        elif "." in text or "e" in text.lower():
            fraction = float(text)
        else:
            count = int(text)
            if count < 0:
                raise ValueError(text)
            return count
    except ValueError:
        fraction = -1.0
    if not 0 <= fraction <= 1:
        raise ConfigError(
            f"max_failed: {max_failed!r} is not allowed; it must be a count >= 0 (5) or a "
            "fraction 0..1 of the videos processed (0.05 or 5%)"
        )
    return fraction * processed


# The help text's closing line of every subcommand that reads a config file.
EPILOG = (
    "Config files are YAML with optional `extract:` and `train:` sections; flags override them."
)
