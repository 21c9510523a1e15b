"""Mutations of sampling, decoding and listing (pipeline/*.py, pipeline/sources/*.py); the
feature store, planning and the shard writer are in store.py."""

_SAMPLING = "tests/pipeline/test_sampling.py"
_DECODE = "tests/pipeline/test_decode.py"
_INPUTS = "tests/pipeline/test_decode_inputs.py"
_SEEK = "tests/pipeline/test_seek.py"
_CORPUS = "tests/pipeline/test_store_and_corpus.py"
_SOURCES = "tests/pipeline/test_sources.py"
_JOBS = "tests/jobs/test_writer_and_planning.py"
_ZOO = "tests/pipeline/test_zoo.py"
_WORK_ROWS = f"{_INPUTS}::test_work_rows_carry_the_listing_to_the_decode_task"

MUTATIONS = [
    # ------------------------------------------------------------------ sampling
    dict(
        id="sampling-rounds",
        file="pipeline/sampling.py",
        old="return np.linspace(0, n_frames - 1, num).astype(np.int64)",
        new="return np.rint(np.linspace(0, n_frames - 1, num)).astype(np.int64)",
        tests=[
            f"{_SAMPLING}::test_indices_match_the_written_out_lists",
            f"{_SAMPLING}::test_indices_truncate_never_round",
        ],
        why="rounding instead of the reference's int() truncation: other frames than MERV's",
    ),
    dict(
        id="sampling-no-endpoint",
        file="pipeline/sampling.py",
        old="return np.linspace(0, n_frames - 1, num).astype(np.int64)",
        new="return np.linspace(0, n_frames, num, endpoint=False).astype(np.int64)",
        tests=[f"{_SAMPLING}::test_indices_match_the_written_out_lists"],
        why="uniform stride sampling that never reaches the last frame",
    ),
    dict(
        id="sampling-clip-end-closed",
        file="pipeline/sampling.py",
        old='stop = int(np.searchsorted(ts, end - _EPS, side="left"))',
        new='stop = int(np.searchsorted(ts, end + _EPS, side="left"))',
        tests=[
            f"{_SAMPLING}::test_clip_range_is_half_open_by_timestamp",
            f"{_SAMPLING}::test_back_to_back_clips_share_no_frame_and_miss_none",
        ],
        why="clips closed at the end: back-to-back clips share their boundary frame",
    ),
    dict(
        id="sampling-clip-no-tolerance",
        file="pipeline/sampling.py",
        old="_EPS = 1e-6",
        new="_EPS = 0.0",
        tests=[f"{_SAMPLING}::test_clip_bounds_tolerate_rounding_in_computed_timestamps"],
        why="pts * time_base lands a hair below the asked second: the clip starts a frame late",
    ),
    # ------------------------------------------------------------------ decode
    dict(
        id="decode-salvage-5-percent",
        file="pipeline/in_order.py",
        old="SALVAGE_MIN_FRACTION = 0.5",
        new="SALVAGE_MIN_FRACTION = 0.05",
        tests=[f"{_DECODE}::test_pyav_refuses_to_salvage_less_than_half"],
        why="a video of which a tenth decodes is stored as if whole, its 32 frames from the start",
    ),
    dict(
        id="decode-salvage-floor",
        file="pipeline/in_order.py",
        old="if have < max(1, math.ceil(SALVAGE_MIN_FRACTION * want)):",
        new="if have < max(1, int(SALVAGE_MIN_FRACTION * want)):",
        tests=[f"{_DECODE}::test_pyav_refuses_to_salvage_less_than_half"],
        why="threshold rounded down: 32 of 65 frames (under half) is salvaged",
    ),
    dict(
        id="decode-salvage-strict",
        file="pipeline/in_order.py",
        old="if have < max(1, math.ceil(SALVAGE_MIN_FRACTION * want)):",
        new="if have <= max(1, math.ceil(SALVAGE_MIN_FRACTION * want)):",
        tests=[f"{_DECODE}::test_pyav_salvages_a_prefix_of_at_least_half"],
        why="exactly half decoded is refused, against the documented 'at least half'",
    ),
    dict(
        id="decode-salvage-ignores-clip-start",
        file="pipeline/in_order.py",
        old="indices = plan.first + sample_indices(have, plan.indices.size)",
        new="indices = sample_indices(have, plan.indices.size)",
        tests=[f"{_DECODE}::test_pyav_salvages_a_prefix_of_at_least_half"],
        why="a salvaged clip is resampled from the video's start, not the clip's",
    ),
    dict(
        id="decode-backend-order",
        file="pipeline/decode.py",
        old='DECODERS = ("pyav-seek", "decord", "decord-1thread", "pyav")',
        new='DECODERS = ("pyav", "pyav-seek", "decord", "decord-1thread")',
        tests=[f"{_DECODE}::test_every_decoder_gives_todays_frames_on_real_clips"],
        why="sequential PyAV first: every long video decoded start to end, seeking never used",
    ),
    # ------------------------------------------------------------------ GOP-aware seeking
    dict(
        id="seek-group-by-next-keyframe",
        file="pipeline/seek.py",
        old='at = int(np.searchsorted(keys, i, side="right")) - 1',
        new='at = int(np.searchsorted(keys, i, side="left")) - 1',
        tests=[f"{_SEEK}::test_seek_groups_split_samples_by_their_governing_keyframe"],
        why="a sampled keyframe is grouped with the GOP before it: a seek too early, or too late",
    ),
    dict(
        id="seek-drops-wanted-nonref-frames",
        file="pipeline/seek.py",
        old="keep = packet.pts is None or int(packet.pts) in wanted_pts",
        new="keep = packet.pts is None",
        tests=[f"{_SEEK}::test_merv_sampling_decodes_fewer_frames_than_everything"],
        why="sampled B-frames are dropped with the unneeded ones: the seeking decoder never works",
    ),
    dict(
        id="seek-trusts-out-of-order-pts",
        file="pipeline/seek.py",
        old="if i <= previous:  # the pts are not presentation times",
        new="if False:  # the pts are not presentation times",
        tests=[f"{_SEEK}::test_files_whose_pts_cannot_name_frames_are_declined"],
        why="made-up pts (AVI with B-frames) name frames in decode order: neighbours stored",
    ),
    dict(
        id="seek-avi-taken-as-seekable",
        file="pipeline/probe.py",
        old='and not (fmt & (PYAV_ONLY_FORMATS | NO_PTS_FORMATS))\n            and not self.format.endswith("_pipe")\n        )\n\n    @property\n    def decord_safe',
        new='and not (fmt & PYAV_ONLY_FORMATS)\n            and not self.format.endswith("_pipe")\n        )\n\n    @property\n    def decord_safe',
        tests=[f"{_SEEK}::test_files_whose_pts_cannot_name_frames_are_declined"],
        why="AVI's made-up pts used to seek: the check catches it, a decode pass wasted per video",
    ),
    dict(
        id="decode-fast-size-from-one-encoder",
        file="pipeline/decode_settings.py",
        old="FAST_SCALE = 2 ",
        new="FAST_SCALE = 1 ",
        tests=[
            "tests/jobs/test_decode_modes.py::test_fast_frames_travel_at_the_encoders_size_under_their_own_fingerprint"
        ],
        why="fast frames at the encoders' own size: their resize no longer antialiases",
    ),
    dict(
        id="decode-fast-fingerprint-ignored",
        file="jobs/planning.py",
        old="    if not decode_tag:\n        return spec.fingerprint()",
        new="    if True:\n        return spec.fingerprint()",
        tests=["tests/jobs/test_decode_modes.py::test_a_store_refuses_the_other_decode_mode"],
        why="fast- and exact-decoded features mixed in one array without a word",
    ),
    dict(
        id="decode-rotation-clockwise",
        file="pipeline/decode.py",
        old="frames = np.ascontiguousarray(np.rot90(frames, k=k, axes=(1, 2)))",
        new="frames = np.ascontiguousarray(np.rot90(frames, k=-k, axes=(1, 2)))",
        tests=[f"{_INPUTS}::test_rotated_video_comes_out_upright"],
        why="phone videos turned the wrong way: upside-down or sideways frames",
    ),
    dict(
        id="decode-decord-on-mpegts",
        file="pipeline/probe.py",
        old='        "mpeg",\n        "mpegts",\n',
        new='        "mpeg",\n',
        tests=[f"{_INPUTS}::test_vp9_and_mpeg2_decode_the_true_frames[mpeg2video-ts-25]"],
        why="decord trusted on MPEG-TS: right frame count, wrong frames at sparse indices",
    ),
    # ------------------------------------------------------------------ listing and corpus
    dict(
        id="corpus-plan-unsorted",
        file="pipeline/corpus.py",
        old="return ShardPlan(tuple(sorted(ids)), shard_size)",
        new="return ShardPlan(ids, shard_size)",
        tests=[
            f"{_CORPUS}::test_shard_plan_is_deterministic",
            f"{_JOBS}::test_new_store_rows_are_the_sorted_ids_and_appends_keep_them",
        ],
        why="rows in listing order: another machine's listing gives other rows and shards",
    ),
    dict(
        id="corpus-last-shard-dropped",
        file="pipeline/corpus.py",
        old="return -(-self.num_rows // self.shard_size)",
        new="return self.num_rows // self.shard_size",
        tests=[f"{_CORPUS}::test_shard_plan_arithmetic_and_refusals"],
        why="floor division: the last partial shard is never planned, its videos never run",
    ),
    dict(
        id="corpus-duplicates-planned",
        file="pipeline/corpus.py",
        old='raise ValueError("duplicate video ids in the corpus")',
        new="pass",
        tests=[f"{_CORPUS}::test_shard_plan_arithmetic_and_refusals"],
        why="two videos share a row id: one silently overwrites the other's features",
    ),
    dict(
        id="sources-id-empty-segments",
        file="pipeline/sources/checks.py",
        old='if any(part in ("", ".", "..") for part in video_id.split("/")):',
        new='if any(part == ".." for part in video_id.split("/")):',
        tests=[f"{_SOURCES}::test_id_rules"],
        why="ids like a//b or a/./b accepted: two spellings of one path become two videos",
    ),
    dict(
        id="sources-id-drive-letter",
        file="pipeline/sources/checks.py",
        old='if video_id.startswith("/") or _DRIVE.match(video_id):',
        new='if video_id.startswith("/"):',
        tests=[f"{_SOURCES}::test_id_rules"],
        why="Windows absolute ids (c:/x) accepted as relative",
    ),
    dict(
        id="sources-dup-id-collides",
        file="pipeline/sources/checks.py",
        old='vid = _fresh(f"{vid}#dup{dups[vid]}", taken)',
        new='vid = f"{vid}#dup{dups[vid]}"',
        tests=[f"{_SOURCES}::test_duplicates_are_deterministic_and_never_collide"],
        why="a duplicate's derived id equals a real id (v#dup1): two rows with one id",
    ),
    dict(
        id="sources-same-stem-one-id",
        file="pipeline/sources/files.py",
        old="VideoItem(stem if len(group) == 1 else rel[s], s,",
        new="VideoItem(stem, s,",
        tests=[f"{_CORPUS}::test_listing_is_sorted_recursive_and_keeps_ids_unique"],
        why="a.mp4 and a.avi both get id 'a': one of them fails as a duplicate",
    ),
    # ------------------------------------------------------------------ listing -> work rows
    dict(
        id="sources-tar-offset-off-by-one",
        file="pipeline/sources/webdataset.py",
        old="member=TarMember(url, info.offset_data, info.size),",
        new="member=TarMember(url, info.offset_data + 1, info.size),",
        tests=[f"{_SOURCES}::test_webdataset_shards_by_braces_glob_and_folder", _WORK_ROWS],
        why="a tar member's range starts one byte late: every WebDataset video reads as corrupt",
    ),
    dict(
        id="sources-options-dropped",
        file="pipeline/sources/checks.py",
        old="options = shared_options if item.source_kind != FILE else None",
        new="options = None",
        tests=[
            f"{_SOURCES}::test_fsspec_folder_listing_and_storage_options",
            f"{_SOURCES}::test_tar_members_at_a_url_carry_the_storage_options",
            _WORK_ROWS,
        ],
        why="decode workers read s3:// sources without the job's endpoint or credentials",
    ),
    dict(
        id="sources-listing-error-dropped",
        file="pipeline/sources/checks.py",
        old="vid, error = item.video_id, item.error",
        new="vid, error = item.video_id, None",
        tests=[
            f"{_SOURCES}::test_bad_manifest_entries_become_failing_items",
            f"{_SOURCES}::test_tar_keys_and_duplicates_across_shards_fail_as_rows",
        ],
        why="bad clip bounds and path-less entries lose their reason and are decoded anyway",
    ),
    dict(
        id="rows-listing-error-not-carried",
        file="pipeline/rows.py",
        old='"listing_error": [it.error or "" for it in items],',
        new='"listing_error": ["" for it in items],',
        tests=[f"{_ZOO}::test_every_file_gets_exactly_its_status_and_reason_class", _WORK_ROWS],
        why="duplicates and invalid ids are decoded as if fine: two rows hold one video",
    ),
    dict(
        id="decode-rows-member-ignored",
        file="pipeline/decode_rows.py",
        old="member=_member(batch, i),",
        new="member=None,",
        tests=[_WORK_ROWS],
        why="the recorded byte range is ignored: every tar member scans its whole shard",
    ),
]
