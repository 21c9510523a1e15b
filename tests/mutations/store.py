"""Mutations of the feature store, planning, the shard writer and `merv status`
(pipeline/store/*.py, jobs/planning.py, jobs/writer.py, jobs/status.py)."""

_STORE = "tests/pipeline/test_store_commits.py"
_INTEROP = "tests/pipeline/test_store_interop.py"
_JOBS = "tests/jobs/test_writer_and_planning.py"

MUTATIONS = [
    # ------------------------------------------------------------------ store: reading
    dict(
        id="store-read-rows-first-last",
        file="pipeline/store/reading.py",
        old="lo, hi = int(rows[sel].min()), int(rows[sel].max()) + 1",
        new="lo, hi = int(rows[sel][0]), int(rows[sel][-1]) + 1",
        tests=[f"{_STORE}::test_read_rows_returns_rows_in_the_requested_order"],
        why="read_rows assumes rows sorted within a shard: [1, 0, 2] reads the wrong rows",
    ),
    dict(
        id="store-read-rows-block-prefix",
        file="pipeline/store/reading.py",
        old="out[sel] = block[rows[sel] - lo]",
        new="out[sel] = block[: sel.size]",
        tests=[f"{_STORE}::test_read_rows_returns_rows_in_the_requested_order"],
        why="read_rows assumes sorted, contiguous, unique rows: a shuffled batch gets other rows",
    ),
    dict(
        id="store-read-rows-dedup",
        file="pipeline/store/reading.py",
        old="rows = np.asarray(list(rows), dtype=np.int64)",
        new="rows = np.unique(np.asarray(list(rows), dtype=np.int64))",
        tests=[f"{_STORE}::test_read_rows_returns_rows_in_the_requested_order"],
        why="rows sorted and de-duplicated 'for speed': batches come back in another order",
    ),
    dict(
        id="store-ok-rows-serves-pending",
        file="pipeline/store/reading.py",
        old="keep &= self.row_status(name) == OK",
        new="keep &= self.row_status(name) != FAILED",
        tests=[f"{_STORE}::test_ok_rows_need_a_committed_marker_for_every_encoder"],
        why="a row no marker commits (pending) is served: uncommitted zeros are read",
    ),
    dict(
        id="store-ok-rows-every-encoder",
        file="pipeline/store/reading.py",
        old="for name in encoders or self.encoders:",
        new="for name in self.encoders:",
        tests=[
            f"{_STORE}::test_row_status_per_encoder_whole_store_and_one_shard",
            f"{_JOBS}::test_added_encoder_writes_only_itself_and_keeps_the_old_failures",
        ],
        why="a row failed or pending for an encoder not asked for is dropped from a subset",
    ),
    # ------------------------------------------------------------------ store: markers
    dict(
        id="store-ok-rows-ignores-marker-failures",
        file="pipeline/store/markers.py",
        old='            status[[r - rows.start for r in marker["failed"]]] = FAILED\n',
        new="",
        tests=[f"{_STORE}::test_ok_rows_need_a_committed_marker_for_every_encoder"],
        why="a row an encoder failed (zeros) is served because its marker covers it",
    ),
    dict(
        id="store-row-status-failed-at-store-rows",
        file="pipeline/store/markers.py",
        old='status[[r - rows.start for r in marker["failed"]]] = FAILED',
        new='status[list(marker["failed"])] = FAILED',
        tests=[f"{_STORE}::test_row_status_per_encoder_whole_store_and_one_shard"],
        why="one shard's status marks its failures at whole-store positions: wrong rows failed",
    ),
    dict(
        id="store-ok-rows-whole-shard",
        file="pipeline/store/markers.py",
        old="status[covered.start - rows.start : covered.stop - rows.start] = OK",
        new="status[self.shard_rows(s).start - rows.start : self.shard_rows(s).stop - rows.start] = OK",
        tests=[f"{_STORE}::test_marker_covering_a_prefix_commits_only_that_prefix"],
        why="a marker counts for the whole shard: appended rows it never covered are served",
    ),
    dict(
        id="store-committed-any-marker",
        file="pipeline/store/markers.py",
        old=(
            "full = {\n                s for s, m in markers.items() if self.covered_rows(name, s, m)"
            " == self.shard_rows(s)\n            }"
        ),
        new="full = set(markers)",
        tests=[f"{_STORE}::test_marker_covering_a_prefix_commits_only_that_prefix"],
        why="any marker means done: a shard grown by appended videos is never completed",
    ),
    dict(
        id="store-committed-union",
        file="pipeline/store/markers.py",
        old="done = full if done is None else done & full",
        new="done = full if done is None else done | full",
        tests=[f"{_STORE}::test_ok_rows_need_a_committed_marker_for_every_encoder"],
        why="a shard committed for one encoder counts as done for all of them",
    ),
    dict(
        id="store-covered-ignores-marker-end",
        file="pipeline/store/markers.py",
        old='return range(rows.start, min(int(marker["rows"][1]), rows.stop))',
        new="return range(rows.start, rows.stop)",
        tests=[
            f"{_STORE}::test_marker_covering_a_prefix_commits_only_that_prefix",
            f"{_JOBS}::test_planning_skips_what_markers_commit_and_retries_only_failures",
        ],
        why="a marker covers its whole shard, not the committed prefix: appended rows never run",
    ),
    # ------------------------------------------------------------------ store: layout, ids
    dict(
        id="store-shard-rows-past-end",
        file="pipeline/corpus.py",
        old="return range(start, min(start + self.shard_size, self.num_rows))",
        new="return range(start, start + self.shard_size)",
        tests=[f"{_STORE}::test_shard_rows_by_hand"],
        why="the last shard's rows run past the end of the store",
    ),
    dict(
        id="store-one-channel-dimension",
        file="pipeline/store/layout.py",
        old='return (ID_DIM, "time", "token", f"channel_{encoder}")',
        new='return (ID_DIM, "time", "token", "channel")',
        tests=[
            f"{_INTEROP}::test_xarray_opens_the_features_as_one_dataset_with_a_video_id_coordinate"
        ],
        why="encoders of different widths share a dimension name: xarray cannot open the group",
    ),
    dict(
        id="store-id-bytes-not-widened",
        file="pipeline/store/ids.py",
        old="    index.resize(data.shape)\n    index[:] = data\n",
        new="    index.resize((n, index.shape[1]))\n    index[:] = data[:, : index.shape[1]]\n",
        tests=[f"{_STORE}::test_ids_are_utf8_bytes_grown_for_longer_ids_and_a_string_coordinate"],
        why="an appended id longer than every old one is cut to the old width",
    ),
    dict(
        id="store-coordinate-not-grown",
        file="pipeline/store/ids.py",
        old="    coordinate.resize((n,))\n    coordinate[:] = _strings(video_ids)\n",
        new="    coordinate.resize((n,))\n",
        tests=[
            f"{_STORE}::test_ids_are_utf8_bytes_grown_for_longer_ids_and_a_string_coordinate",
            f"{_INTEROP}::test_xarray_opens_the_features_as_one_dataset_with_a_video_id_coordinate",
        ],
        why="xarray's video_id coordinate misses the appended videos (empty strings)",
    ),
    dict(
        id="store-version-1-ids-as-bytes",
        file="pipeline/store/ids.py",
        old="    if data.ndim == 2:\n        return decode_ids(data)\n",
        new="    return decode_ids(data)\n",
        tests=[f"{_STORE}::test_a_version_1_store_is_read_and_grown_in_its_own_form"],
        why="a version 1 store's string index is read as if it were version 2's bytes",
    ),
    # ------------------------------------------------------------------ planning
    dict(
        id="plan-retries-without-flag",
        file="jobs/planning.py",
        old="todo[i] = (status == PENDING) | (retry_failed & (status == FAILED))",
        new="todo[i] = (status == PENDING) | (status == FAILED)",
        tests=[f"{_JOBS}::test_planning_skips_what_markers_commit_and_retries_only_failures"],
        why="every rerun re-decodes every failure, although failures are final unless asked",
    ),
    dict(
        id="plan-every-encoder-per-row",
        file="jobs/planning.py",
        old="key = tuple(n for n, run in zip(encoders, todo[:, row], strict=True) if run)",
        new="key = tuple(encoders)",
        tests=[f"{_JOBS}::test_planning_skips_what_markers_commit_and_retries_only_failures"],
        why="an added encoder recomputes (and rewrites) every existing encoder too",
    ),
    dict(
        id="plan-append-in-input-order",
        file="jobs/planning.py",
        old="new_ids = sorted({it.video_id for it in items} - known)",
        new="new_ids = [it.video_id for it in items if it.video_id not in known]",
        tests=[f"{_JOBS}::test_new_store_rows_are_the_sorted_ids_and_appends_keep_them"],
        why="appended rows follow input order: the same corpus gives different stores",
    ),
    # ------------------------------------------------------------------ writer
    dict(
        id="writer-zeroes-untouched-rows",
        file="jobs/writer.py",
        old="block = store.read(name, rows.start, rows.stop)  # rows this run did not compute",
        new="block = np.zeros_like(store.read(name, rows.start, rows.stop))",
        tests=[
            f"{_JOBS}::test_retry_failed_rewrites_the_failed_row_and_keeps_the_others",
            f"{_JOBS}::test_appended_videos_leave_the_old_rows_of_their_shard_unchanged",
        ],
        why="a partial rewrite (retry, appended videos) zeroes the shard's other rows",
    ),
    dict(
        id="writer-drops-old-failures",
        file="jobs/writer.py",
        old="reasons = _failures(markers[name], shard)",
        new="reasons = {}",
        tests=[f"{_JOBS}::test_appended_videos_leave_the_old_rows_of_their_shard_unchanged"],
        why="rewriting a shard forgets earlier failures: their zero rows become 'ok'",
    ),
    dict(
        id="writer-retried-row-stays-failed",
        file="jobs/writer.py",
        old="reasons.pop(row, None)",
        new="reasons.get(row)",
        tests=[f"{_JOBS}::test_retry_failed_rewrites_the_failed_row_and_keeps_the_others"],
        why="a retried video that now decodes keeps its old failure",
    ),
    dict(
        id="writer-rewrites-every-encoder",
        file="jobs/writer.py",
        old="written = [e for e in store.encoders if any(e in needs[r] for r in got)]",
        new="written = list(store.encoders)",
        tests=[
            f"{_JOBS}::test_added_encoder_writes_only_itself_and_keeps_the_old_failures",
            f"{_JOBS}::test_rows_are_pending_until_every_encoder_commits_them",
        ],
        why="encoders this run did not compute are rewritten and marked committed (zeros)",
    ),
    dict(
        id="writer-pending-any-marker",
        file="jobs/writer.py",
        old="pending = any(status[row - rows.start] == PENDING for status in kept.values())",
        new="pending = any(not markers[n] for n in kept)",
        tests=[f"{_JOBS}::test_rows_are_pending_until_every_encoder_commits_them"],
        why="an appended row is 'ok' while another encoder's marker covers only the old prefix",
    ),
    dict(
        id="writer-pending-over-failed",
        file="jobs/writer.py",
        old='entry["status"] = FAILED if reasons else PENDING if pending else OK',
        new='entry["status"] = PENDING if pending else FAILED if reasons else OK',
        tests=[f"{_JOBS}::test_rows_are_pending_until_every_encoder_commits_them"],
        why="a failed video shows as pending while another encoder has not run",
    ),
    dict(
        id="writer-forgets-other-encoders-failures",
        file="jobs/writer.py",
        old="n: failed[n] if n in failed else _failures(markers[n], shard) for n in encoders",
        new="n: failed.get(n, {}) for n in encoders",
        tests=[f"{_JOBS}::test_added_encoder_writes_only_itself_and_keeps_the_old_failures"],
        why="a row failed for an encoder not run now turns 'ok' when another encoder succeeds",
    ),
    dict(
        id="writer-manifest-rebuilt",
        file="jobs/writer.py",
        old='return dict(old.get(row) or {"row": row, "video_id": self.plan.video_ids[row]})',
        new='return {"row": row, "video_id": self.plan.video_ids[row]}',
        tests=[f"{_JOBS}::test_retry_failed_rewrites_the_failed_row_and_keeps_the_others"],
        why="rows not recomputed lose their manifest metadata (frames, fps, labels)",
    ),
    dict(
        id="writer-shard-complete-at-shard-size",
        file="jobs/writer.py",
        old="if len(rows) == len(self.needs[shard]):",
        new="if len(rows) == len(self.plan.shard_rows(shard)):",
        tests=[f"{_JOBS}::test_retry_failed_rewrites_the_failed_row_and_keeps_the_others"],
        why="a shard is written only with all its rows: a retry of one row never writes",
    ),
    # ------------------------------------------------------------------ status
    dict(
        id="status-failed-counted-ok",
        file="jobs/status.py",
        old='"ok": int((status == OK).sum()),',
        new='"ok": int((status != PENDING).sum()),',
        tests=[f"{_JOBS}::test_status_counts_each_encoders_rows_from_its_markers"],
        why="merv status counts failed rows as ok as well as failed",
    ),
]
