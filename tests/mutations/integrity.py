"""Mutations of store integrity: atomic small writes, unreadable markers, shard checksums,
`merv verify` and the read layer's errors (pipeline/store/files.py, markers.py, integrity.py,
reading.py, root.py, jobs/planning.py)."""

_UNIT = "tests/pipeline/test_store_integrity_unit.py"

MUTATIONS = [
    dict(
        id="integ-checksum-not-compared",
        file="pipeline/store/integrity.py",
        old='if hashes and file_digest(self.fs, self._path(rel)) != want["sha256"]:',
        new="if False:",
        tests=[f"{_UNIT}::test_size_then_hash_then_absence"],
        why="verify checks sizes only: a same-size corruption is reported ok",
    ),
    dict(
        id="integ-size-not-compared",
        file="pipeline/store/integrity.py",
        old='if have != want["size"]:',
        new="if False:",
        tests=[f"{_UNIT}::test_size_then_hash_then_absence"],
        why="the cheap check misses a truncated shard: extract never repairs it",
    ),
    dict(
        id="integ-unreadable-marker-committed",
        file="pipeline/store/markers.py",
        old="                bad.append(s)\n",
        new='                good[s] = {"rows": [0, 1 << 30], "failed": {}, "files": {}}\n',
        tests=[f"{_UNIT}::test_unreadable_marker_is_pending_with_one_warning"],
        why="an unreadable (0-byte, garbage) marker counts as committed: its rows are served",
    ),
    dict(
        id="integ-marker-files-shape-unchecked",
        file="pipeline/store/markers.py",
        old="        if not isinstance(files, dict) or not all(",
        new="        if False and not all(",
        tests=[f"{_UNIT}::test_malformed_markers_parse_as_none"],
        why="a marker whose files record is garbage is accepted and crashes verify later",
    ),
    dict(
        id="integ-invalidate-keeps-damaged-file",
        file="pipeline/store/integrity.py",
        old="for path in (self._commit_path(name, shard), self._path(self.shard_file(name, shard))):",
        new="for path in (self._commit_path(name, shard),):",
        tests=[f"{_UNIT}::test_size_then_hash_then_absence"],
        why="a damaged shard file is kept: the writer reads it back and crashes on it",
    ),
    dict(
        id="integ-read-error-traceback",
        file="pipeline/store/reading.py",
        old="except (ValueError, RuntimeError, OSError, EOFError) as err:",
        new="except KeyError as err:",
        tests=[f"{_UNIT}::test_reads_of_an_undecodable_shard_fail_in_one_line"],
        why="training meets a codec checksum traceback instead of one line naming the shard",
    ),
    dict(
        id="integ-atomic-write-in-place",
        file="pipeline/store/files.py",
        old="            os.replace(tmp, path)\n",
        new="            os.replace(tmp, tmp + '.x')\n",
        tests=[f"{_UNIT}::test_atomic_write_replaces_whole_and_leaves_nothing_behind"],
        why="the temporary file is never renamed into place: markers are never written",
    ),
]
