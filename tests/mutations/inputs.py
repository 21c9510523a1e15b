"""Mutations of the input guards: non-files refused (pipeline/fetch.py), stores never listed
(pipeline/sources/files.py), poison pills bounded (jobs/poison.py)."""

_T = "tests/pipeline/test_not_a_file.py"

MUTATIONS = [
    dict(
        id="inputs-fifo-not-refused",
        file="pipeline/fetch.py",
        old="    if not stat.S_ISREG(st.st_mode):\n",
        new="    if stat.S_ISCHR(st.st_mode):\n",
        tests=[f"{_T}::test_check_local_refuses_non_files_before_reading"],
        why="only devices refused: a FIFO is opened and read, and the decode task hangs",
    ),
    dict(
        id="inputs-proc-files-read",
        file="pipeline/fetch.py",
        old='_VIRTUAL_ROOTS = ("/proc/", "/sys/")',
        new="_VIRTUAL_ROOTS = ()",
        tests=[f"{_T}::test_check_local_refuses_devices_and_kernel_files"],
        why="a /proc file passes as a regular file: read as a (zero-size, changing) video",
    ),
    dict(
        id="inputs-store-folder-listed",
        file="pipeline/sources/files.py",
        old="        dirs[:] = [\n",
        new="        dirs[:] = dirs or [\n",
        tests=[f"{_T}::test_store_folders_are_never_listed"],
        why="store folders not pruned: with --all-files the store is its own input",
    ),
    dict(
        id="inputs-listing-ignores-non-files",
        file="pipeline/sources/files.py",
        old='    return {p: f"{failures.NOT_A_FILE}: {r}" for p, r in reasons.items() if r}',
        new="    return {}",
        tests=[f"{_T}::test_folder_listing_fails_non_files_as_rows"],
        why="a FIFO listed as a video to decode, not a not-a-file row",
    ),
    dict(
        id="inputs-retries-unbounded",
        file="jobs/poison.py",
        old='    options: dict = {"max_retries": task_retries}',
        new='    options: dict = {"max_retries": -1}',
        tests=[f"{_T}::test_decode_task_options_bound_retries"],
        why="Ray retries a poison pill without end: the job never finishes",
    ),
    dict(
        id="inputs-crash-rows-dropped",
        file="jobs/poison.py",
        old="        record(crash_row(row, attempts))",
        new="        pass",
        tests=[f"{_T}::test_poison_rows_are_retried_a_bounded_number_of_times"],
        why="rows lost to crashes never recorded: their shard never completes",
    ),
    dict(
        id="inputs-no-one-per-block-retry",
        file="jobs/poison.py",
        old="run_pass(missing, 1, max_video_retries - 1)",
        new="run_pass(missing, 0, max_video_retries - 1)",
        tests=[f"{_T}::test_poison_rows_are_retried_a_bounded_number_of_times"],
        why="the retry keeps whole blocks: a poison pill takes its block's neighbours with it",
    ),
]
