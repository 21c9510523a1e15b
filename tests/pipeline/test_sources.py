"""Listing every input format: manifests, LLaVA JSON, WebDataset tars, fsspec URLs, id checks."""

import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.corpus import plan_shards
from pipeline.sources import input_kind, list_videos
from pipeline.sources.checks import check_id
from pipeline.sources.item import FILE, TAR_MEMBER, URL, TarMember


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_input_kind_by_suffix():
    assert input_kind("a/b.csv") == input_kind("s3://b/m.parquet") == "manifest"
    assert input_kind("train.json") == input_kind("x.jsonl") == "manifest"
    assert input_kind("s/{000..003}.tar") == input_kind("s/*.tar") == "webdataset"
    assert input_kind("videos/") == input_kind("videos/*.mp4") == "files"


def test_csv_manifest_resolves_paths_and_carries_typed_columns(tmp_path):
    _touch(tmp_path / "v" / "a.mp4")
    _touch(tmp_path / "v" / "b.mp4")
    (tmp_path / "m.csv").write_text(
        "video_id,path,start,end,label,duration,score\n"
        "007,v/a.mp4,,,3,12.5,1\n"
        "clipA,v/a.mp4,1.5,4,2,12.5,0.5\n"
        f"b,{tmp_path / 'v' / 'b.mp4'},,,1,,\n"
    )
    items = {it.video_id: it for it in list_videos(str(tmp_path / "m.csv"))}
    assert sorted(items) == ["007", "b", "clipA"]  # "007" stays text, not the number 7
    assert items["007"].source == str(tmp_path / "v" / "a.mp4")
    assert (items["clipA"].start, items["clipA"].end) == (1.5, 4.0)
    assert items["007"].start is None and items["b"].end is None
    assert items["007"].extra == {"label": 3, "input_duration": 12.5, "score": 1.0}
    assert items["b"].extra == {"label": 1}  # empty cells are absent, not NaN
    assert not any(it.error for it in items.values())


def test_parquet_jsonl_and_csv_list_the_same_items(tmp_path):
    _touch(tmp_path / "a.mp4")
    rows = [
        {"video_id": "a", "path": "a.mp4", "start": 0.0, "end": 2.0, "label": "cat"},
        {"video_id": "b", "path": "a.mp4", "start": None, "end": None, "label": "dog"},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "m.parquet")
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (tmp_path / "m.csv").write_text(
        "video_id,path,start,end,label\na,a.mp4,0,2,cat\nb,a.mp4,,,dog\n"
    )
    listed = [list_videos(str(tmp_path / f"m.{ext}")) for ext in ("parquet", "jsonl", "csv")]
    assert listed[0] == listed[1] == listed[2]
    assert listed[0][0].source == str(tmp_path / "a.mp4")


def test_manifest_without_id_column_and_with_video_root(tmp_path):
    _touch(tmp_path / "root" / "sub" / "x.mp4")
    (tmp_path / "m.csv").write_text("path\nsub/x.mp4\nhttp://host/y.webm\n")
    items = list_videos(str(tmp_path / "m.csv"), video_root=str(tmp_path / "root"))
    assert [(i.video_id, i.source) for i in items] == [
        ("sub/x", str(tmp_path / "root" / "sub" / "x.mp4")),
        ("y", "http://host/y.webm"),
    ]


def test_bad_manifest_entries_become_failing_items(tmp_path):
    (tmp_path / "m.csv").write_text(
        "video_id,path,start,end\nok,a.mp4,,\nbad_clip,a.mp4,3,1\nneg,a.mp4,-1,\n"
        "words,a.mp4,soon,\nnopath,,,\n"
    )
    items = {it.video_id: it for it in list_videos(str(tmp_path / "m.csv"))}
    assert items["ok"].error is None
    for vid in ("bad_clip", "neg", "words"):
        assert items[vid].error.startswith("invalid-clip:"), vid
    assert items["nopath"].error.startswith("invalid-entry:")


def test_llava_json_is_a_manifest(tmp_path):
    entries = [
        {"id": "v1", "video": "clips/v1.mp4", "conversations": [{"from": "human", "value": "Q1"}]},
        {"id": "v1", "video": "clips/v1.mp4", "conversations": [{"from": "human", "value": "Q2"}]},
        {"id": "img", "image": "x.jpg", "conversations": []},  # an image sample: not a video
        {"id": "v2", "video": "clips/v2.mp4", "conversations": [], "source": "msrvtt"},
    ]
    (tmp_path / "train.json").write_text(json.dumps(entries))
    items = list_videos(str(tmp_path / "train.json"), video_root="/data")
    assert [(i.video_id, i.source) for i in items] == [
        ("v1", "/data/clips/v1.mp4"),
        ("v2", "/data/clips/v2.mp4"),
    ]
    first = items[0].extra
    assert first["llava_entries"] == 2
    assert [c[0]["value"] for c in json.loads(first["conversations"])] == ["Q1", "Q2"]
    assert items[1].extra["input_source"] == "msrvtt"  # never overwrites the store's column


def _tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_webdataset_shards_by_braces_glob_and_folder(tmp_path):
    _tar(
        tmp_path / "s-000.tar",
        [
            ("a.mp4", b"AAAA"),
            ("a.json", b'{"label": 1, "start": 0.5}'),
            ("b.avi", b"BBBBBB"),
            ("b.cls", b"7"),
            ("meta_only.json", b"{}"),
        ],
    )
    _tar(tmp_path / "s-001.tar", [("sub/c.video.mp4", b"CC"), ("sub/c.txt", b"a caption\n")])
    by_braces = list_videos(str(tmp_path / "s-{000..001}.tar"))
    assert by_braces == list_videos(str(tmp_path / "s-*.tar")) == list_videos(str(tmp_path))
    items = {it.video_id: it for it in by_braces}
    assert sorted(items) == ["a", "b", "sub/c"]  # the json-only sample holds no video
    assert items["a"].start == 0.5 and items["a"].extra == {"label": 1}
    assert items["b"].extra == {"cls": 7} and items["sub/c"].extra == {"txt": "a caption"}
    assert items["sub/c"].source == f"tar://sub/c.video.mp4::{tmp_path / 's-001.tar'}"
    assert {it.source_kind for it in by_braces} == {TAR_MEMBER}
    member = items["b"].member
    assert member.shard == str(tmp_path / "s-000.tar")
    with open(member.shard, "rb") as f:  # the recorded byte range is the member's bytes
        f.seek(member.offset)
        assert f.read(member.size) == b"BBBBBB"
    assert items["sub/c"].member.size == 2 and items["a"].storage_options is None


def test_tar_keys_and_duplicates_across_shards_fail_as_rows(tmp_path):
    _tar(tmp_path / "s-0.tar", [("x.mp4", b"1"), ("../../etc/evil.mp4", b"2")])
    _tar(tmp_path / "s-1.tar", [("x.mp4", b"3")])
    (tmp_path / "s-2.tar").write_bytes(b"this is not a tar" * 100)
    items = {it.video_id: it for it in list_videos(str(tmp_path / "s-*.tar"))}
    assert items["x"].source.endswith("s-0.tar") and items["x"].error is None
    assert items["x#dup1"].error.startswith("duplicate-id:")
    invalid = [it for vid, it in items.items() if vid.startswith("#invalid-")]
    assert len(invalid) == 1 and invalid[0].error.startswith("invalid-id:")
    assert items["#shard-s-2.tar"].error.startswith("corrupt:")
    plan_shards(list(items.values()), 2)  # unique, plannable


@pytest.mark.parametrize(
    "vid, ok",
    [
        ("a", True),
        ("dir/clip_001", True),
        ("v:1#2 x", True),
        ("", False),
        ("../x", False),
        ("a/../b", False),
        ("/abs", False),
        ("C:\\x", False),
        ("a//b", False),
        ("a/./b", False),
        ("c:/x", False),
        ("tab\there", False),
        (" padded", False),
        ("x" * 600, False),
        (5, False),
    ],
)
def test_id_rules(vid, ok):
    assert (check_id(vid) is None) is ok


def test_duplicates_are_deterministic_and_never_collide(tmp_path):
    _touch(tmp_path / "a.mp4")
    rows = "video_id,path\nv,a.mp4\nv#dup1,a.mp4\nv,b.mp4\nv,c.mp4\n"
    (tmp_path / "m.csv").write_text(rows)
    first = list_videos(str(tmp_path / "m.csv"))
    assert first == list_videos(str(tmp_path / "m.csv"))
    by_id = {it.video_id: it for it in first}
    assert sorted(by_id) == ["v", "v#dup1", "v#dup1.2", "v#dup2"]
    assert by_id["v"].error is None and by_id["v#dup1"].error is None  # a real id stays real
    assert by_id["v#dup1.2"].source.endswith("b.mp4") and by_id["v#dup2"].source.endswith("c.mp4")
    assert "already the id of" in by_id["v#dup2"].error


def test_fsspec_folder_listing_and_storage_options(tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    for name in ("corpus/a.mp4", "corpus/sub/b.webm", "corpus/notes.txt"):
        fs.pipe(f"/{name}", b"data")
    items = list_videos("memory://corpus", storage_options={"anon": "true"})
    assert [(i.video_id, i.source) for i in items] == [
        ("a", "memory:///corpus/a.mp4"),
        ("sub/b", "memory:///corpus/sub/b.webm"),
    ]
    assert items[0].storage_options == {"anon": True}  # typed, travels to workers
    assert items[0].source_kind == URL and items[0].extra == {}
    assert [i.video_id for i in list_videos("memory://corpus/*.mp4")] == ["a"]
    local = list_videos(str(_touch(tmp_path / "c.mp4")), storage_options={"anon": "1"})[0]
    assert (local.source_kind, local.storage_options, local.extra) == (FILE, None, {})


def test_manifest_at_a_url_resolves_relative_paths_against_it():
    import fsspec

    fsspec.filesystem("memory").pipe(
        "/lists/m.csv", b"video_id,path\nv,clips/v.mp4\nw,/abs/w.mp4\n"
    )
    items = list_videos("memory://lists/m.csv")
    assert [(i.video_id, i.source) for i in items] == [
        ("v", "memory://lists/clips/v.mp4"),
        ("w", "/abs/w.mp4"),
    ]


def test_tar_members_at_a_url_carry_the_storage_options():
    import fsspec

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("k.mp4", b"VIDEO"), ("k.cls", b"2")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    fsspec.filesystem("memory").pipe("/wds/s-0.tar", buf.getvalue())
    (item,) = list_videos("memory://wds/s-0.tar", storage_options={"anon": "true"})
    assert (item.video_id, item.source_kind, item.extra) == ("k", TAR_MEMBER, {"cls": 2})
    assert item.storage_options == {"anon": True}
    assert item.member == TarMember("memory://wds/s-0.tar", 512, 5)  # after one 512-byte header


def test_input_columns_named_like_pipeline_fields_stay_the_users(tmp_path):
    # Nothing the pipeline needs rides in ``extra``: a manifest column cannot pose as a tar
    # member, fsspec options or a failure, and is carried into the manifest like any other.
    (tmp_path / "m.csv").write_text(
        "video_id,path,_merv,error,listing_error,source_kind,member,storage_options\n"
        'v,v.mp4,x,oops,bad,tar-member,"{""offset"": 1}",anon\n'
    )
    (item,) = list_videos(str(tmp_path / "m.csv"), storage_options={"anon": "1"})
    assert item.source_kind == FILE
    assert item.error is item.member is item.storage_options is None
    assert item.extra == {
        "_merv": "x",
        "input_error": "oops",
        "listing_error": "bad",
        "source_kind": "tar-member",
        "member": '{"offset": 1}',
        "storage_options": "anon",
    }


def test_an_item_kind_and_its_member_agree():
    from pipeline.sources.item import VideoItem

    with pytest.raises(ValueError, match="member"):
        VideoItem("a", "tar://a.mp4::s.tar", source_kind=TAR_MEMBER)
    with pytest.raises(ValueError, match="member"):
        VideoItem("a", "a.mp4", member=TarMember("s.tar", 512, 3))
    with pytest.raises(ValueError, match="source_kind"):
        VideoItem("a", "a.mp4", source_kind="ftp")
