"""The bad-input zoo plus every real clip, listed from one manifest and decoded row by row
(the decode task's code without Ray): exactly one status, and the right reason class, per file.
The same zoo runs through the whole job in tests/jobs/test_inputs_e2e.py."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.decode_rows import decode_rows
from pipeline.failures import reason_class
from pipeline.rows import CLIP_COLUMNS, DECODE_FACT_COLUMNS, LISTING_COLUMNS, work_table
from pipeline.sources import list_videos
from tests.pipeline.zoo import (
    ZooEntry,
    dead_url,
    expected_rows,
    make_zoo,
    serve_folder,
    write_manifest,
)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, real_corpus):
    folder = tmp_path_factory.mktemp("zoo")
    with serve_folder(str(folder)) as base:
        entries = make_zoo(str(folder), http_base=base, dead_url=dead_url())
        for clip in sorted(real_corpus.iterdir()):
            shutil.copy(clip, folder / clip.name)
            entries.append(
                ZooEntry(f"real/{clip.stem}{clip.suffix}", str(folder / clip.name), "ok")
            )
        items = list_videos(write_manifest(entries, str(folder / "zoo.csv")))
        ids = [it.video_id for it in items]
        work = SimpleNamespace(
            rows=range(len(ids)), encoders_by_row=dict.fromkeys(range(len(ids)), ())
        )
        rows = {}
        for row in work_table([work], ids, items).to_pylist():  # one decode task per row
            out = decode_rows({k: np.array([v]) for k, v in row.items()}, 32)
            rows[row["video_id"]] = {k: v[0] for k, v in out.items()}
    return entries, rows


def test_zoo_has_at_least_twenty_kinds(zoo):
    entries, _ = zoo
    kinds = {e.video_id for e in entries if not e.video_id.startswith("real/")}
    assert len(kinds) >= 20
    assert {e.reason for e in entries if e.reason} >= {
        "empty",
        "corrupt",
        "undecodable",
        "no-video-stream",
        "no-frames",
        "not-video",
        "missing",
        "not-a-file",  # a folder named like a video (unreadable: root reads everything)
        "unreachable",
        "duplicate-id",
        "invalid-id",
        "invalid-clip",
        "invalid-entry",
    }


def test_every_file_gets_exactly_its_status_and_reason_class(zoo):
    entries, rows = zoo
    expected = expected_rows(entries)
    assert sorted(rows) == sorted(expected)  # one row per entry, none lost, none extra
    got = {vid: (str(r["status"]), reason_class(str(r["error"]))) for vid, r in rows.items()}
    assert got == expected
    for r in rows.values():
        error = str(r["error"])
        assert "\n" not in error and len(error) <= 500
        if r["status"] == "ok":
            assert r["frames"].shape[0] == 32 and r["frames"].dtype == np.uint8
            assert len(r["sampled_indices"]) == 32 and error == ""
        assert not set(LISTING_COLUMNS) & set(r)  # read by the decode task, not passed on
        assert set(json.loads(str(r["extra"]))) <= {"kind", *CLIP_COLUMNS, *DECODE_FACT_COLUMNS}


def test_salvaged_resized_rotated_and_clipped_rows_say_so(zoo):
    _, rows = zoo
    facts = {vid: json.loads(str(r["extra"])) for vid, r in rows.items()}
    assert "salvaged" in facts["truncated_faststart"]["decode_note"]
    assert "salvaged" in facts["damaged_tail"]["decode_note"]
    assert facts["huge_resolution"]["source_height"] == 2560
    assert rows["huge_resolution"]["height"] == rows["huge_resolution"]["width"] == 1080
    assert facts["rotated"]["rotation"] == 270 and rows["rotated"]["height"] == 64
    assert (facts["clip"]["clip_start"], facts["clip"]["clip_end"]) == (0.5, 1.5)
    assert rows["clip"]["sampled_indices"].min() == 8 and rows["clip"]["n_frames"] == 16
    assert set(rows["one_frame"]["sampled_indices"].tolist()) == {0}
    assert rows["mpeg2"]["decoder"] == "pyav" and rows["still_image"]["n_frames"] == 1
    assert facts["ok_h264"]["kind"] == "ok"  # the manifest's own column is carried
