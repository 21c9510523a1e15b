"""Mutations of streaming training (mixer/stream.py, resume.py, metrics.py, selection.py)."""

_STREAM = "tests/mixer/test_stream.py"
_RESUME = "tests/mixer/test_resume_training.py"
_SPLITS = "tests/mixer/test_splits.py"

MUTATIONS = [
    dict(
        id="stream-order-ignores-epoch",
        file="mixer/stream.py",
        old="    rng = np.random.default_rng([seed, epoch])",
        new="    rng = np.random.default_rng([seed, 0])",
        tests=[f"{_STREAM}::test_order_is_a_function_of_seed_and_epoch"],
        why="every epoch of a large store sees the same order",
    ),
    dict(
        id="stream-rank-split-off",
        file="mixer/stream.py",
        old="    first = rank * q + np.minimum(rank, rem)",
        new="    first = rank * q",
        tests=[f"{_STREAM}::test_rank_positions_follow_array_split"],
        why="ranks overlap and drop rows when a batch does not split evenly",
    ),
    dict(
        id="resume-optimizer-not-restored",
        file="mixer/resume.py",
        old='    opt.load_state_dict(_optimizer_state(tensors, json.loads(meta["param_groups"])))',
        new="    _optimizer_state(tensors, json.loads(meta['param_groups']))",
        tests=[f"{_RESUME}::test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run"],
        why="a resumed run restarts Adam's moments: its losses drift from the clean run",
    ),
    dict(
        id="resume-metrics-kept-past-checkpoint",
        file="mixer/metrics.py",
        old='r["step"] <= resume_step',
        new="True",
        tests=[f"{_RESUME}::test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run"],
        why="the steps between the checkpoint and the kill are logged twice",
    ),
    dict(
        id="split-test-rows-trained",
        file="mixer/selection.py",
        old='        kept = named.parts != "test"',
        new="        kept = np.ones(len(named.parts), dtype=bool)",
        tests=[f"{_SPLITS}::test_split_file_gives_exactly_its_train_and_val_rows"],
        why="held-out test videos leak into the run",
    ),
    dict(
        id="resume-rows-not-compared",
        file="mixer/resume.py",
        old='    if meta.get("rows") and rows and meta["rows"] != rows:',
        new="    if False:",
        tests=[f"{_SPLITS}::test_resume_refuses_a_changed_split"],
        why="a resumed run silently continues on other rows",
    ),
    dict(
        id="readers-start-for-every-run",
        file="mixer/epochs.py",
        old="    if len(data.rows) > config.shuffle_rows:",
        new="    if True:",
        tests=[f"{_STREAM}::test_readers_start_with_the_run_only_when_its_streams_use_them"],
        why="a run small enough to read in its own process still starts reader processes",
    ),
    dict(
        id="readers-start-on-the-first-read",
        file="mixer/epochs.py",
        old="        readers.warm()",
        new="        pass",
        tests=[f"{_STREAM}::test_readers_start_with_the_run_only_when_its_streams_use_them"],
        why="readers import the read path only when the first batch is due, not while models are built",
    ),
    dict(
        id="early-reads-serve-a-resumed-epoch",
        file="mixer/stream.py",
        old="        early = self._ahead.pop(epoch, None) if skip == 0 else None",
        new="        early = self._ahead.pop(epoch, None)",
        tests=[f"{_STREAM}::test_reads_asked_for_early_give_the_same_batches"],
        why="an epoch resumed mid-way takes the windows read ahead from its first batch",
    ),
    dict(
        id="read-ahead-holds-every-window",
        file="mixer/stream.py",
        old="            self._submit(plan, pending, most=1)",
        new="            self._submit(plan, pending)",
        tests=[f"{_STREAM}::test_reads_asked_for_early_give_the_same_batches"],
        why="reading the next pass ahead holds a reader's share of windows more, not one",
    ),
]
