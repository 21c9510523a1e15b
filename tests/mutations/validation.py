"""Mutations of config validation, `--store` checks, one-line errors and exit codes."""

_T = "tests/jobs/test_exit_codes.py"

MUTATIONS = [
    dict(
        id="validation-grid-bound-off-by-one",
        file="jobs/config.py",
        old='"grid": Range(1, 16),',
        new='"grid": Range(1, 17),',
        tests=[f"{_T}::test_a_bad_number_is_refused_before_anything_starts"],
        why="a grid past the largest patch grid is accepted: the store repeats values",
    ),
    dict(
        id="validation-range-low-bound-excluded",
        file="pipeline/config.py",
        old="value <= self.low if self.above else value < self.low",
        new="value <= self.low if self.above else value <= self.low",
        tests=[f"{_T}::test_the_bounds_themselves_are_allowed"],
        why="the lowest allowed value (batch_size 1, decode_workers 0) is refused",
    ),
    dict(
        id="validation-cpus-zero-allowed",
        file="jobs/config.py",
        old='"encoder_cpus": Range(0, above=True),',
        new='"encoder_cpus": Range(0),',
        tests=[f"{_T}::test_a_bad_number_is_refused_before_anything_starts"],
        why="encoder_cpus 0 passes and Ray refuses it after the store was created",
    ),
    dict(
        id="exits-max-failed-comparison-reversed",
        file="jobs/exits.py",
        old="if failed <= failed_allowed(max_failed, processed):",
        new="if failed >= failed_allowed(max_failed, processed):",
        tests=[f"{_T}::test_failed_videos_fail_the_job_only_past_max_failed"],
        why="a job within --max-failed exits 3 and one past it exits 0",
    ),
    dict(
        id="exits-io-error-is-a-bug",
        file="jobs/exits.py",
        old="if isinstance(err, (StoreError, OSError, RuntimeError)) or _from_ray(err):",
        new="if isinstance(err, (StoreError, RuntimeError)) or _from_ray(err):",
        tests=[f"{_T}::test_every_error_is_one_line_with_its_exit_code"],
        why="a full disk reads as an internal error (exit 1) instead of a job to rerun (4)",
    ),
    dict(
        id="store-target-foreign-folder-accepted",
        file="jobs/store_target.py",
        old="    if others:",
        new="    if False:",
        tests=[f"{_T}::test_a_store_path_that_is_not_a_store_ends_in_one_line"],
        why="a folder of other files becomes a store: Zarr's traceback, or files mixed in",
    ),
]
