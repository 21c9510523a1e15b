"""Exact and fast decoding through the whole job, on real clips: 1080p, rotated, AVI, small.

Exact stores what today's decoders and the reference transforms give, bit for bit; fast stores
features within cosine 0.999 of exact for every video and encoder, under fingerprints of its own
so the two never mix in one array."""

import shutil

import numpy as np
import pytest

from encoders import ENCODER_SETS, get_spec
from jobs.planning import stored_fingerprint
from jobs.status import store_status
from pipeline.decode import decode_video
from pipeline.store import FeatureStore, StoreError
from tests.helpers import direct_encode, run_extract_quietly
from tests.pipeline.zoo import remux_rotated

TINY = ENCODER_SETS["tiny"]
CLIPS = (
    "mmaction2_demo_skeleton.mp4",  # 1080p, 72 frames
    "ntu_S001C001P001R001A001_rgb.avi",  # 1080p AVI with B-frames: decoded in order
    "mmaction2_part_0.mp4",  # 340x256: below the fast size, so decoded as coded
    "videollava_sample_demo_3.mp4",  # 640x360
)
ROTATED = "skeleton_turned"  # the 1080p clip's packets with a 90-degree display matrix
JOB = {"shard_size": 8, "batch_size": 4}


@pytest.fixture(scope="module")
def hd_corpus(tmp_path_factory, real_corpus):
    folder = tmp_path_factory.mktemp("hd_corpus")
    for name in CLIPS:
        shutil.copy(real_corpus / name, folder / name)
    remux_rotated(str(real_corpus / CLIPS[0]), str(folder / f"{ROTATED}.mp4"), 90)
    return folder


@pytest.fixture(scope="module")
def stores(hd_corpus, tmp_path_factory, ray_session):
    root = tmp_path_factory.mktemp("decode_modes")
    for mode in ("exact", "fast"):
        t = run_extract_quietly(hd_corpus, root / mode, "tiny", decode_mode=mode, **JOB)
        assert (t.ok, t.failed) == (5, 0)
    return FeatureStore.open(str(root / "exact")), FeatureStore.open(str(root / "fast"))


def _path(folder, video_id: str) -> str:
    return str(next(folder.glob(f"{video_id}.*")))


def test_exact_mode_stores_todays_features_bit_for_bit(stores, hd_corpus):
    exact, _ = stores
    for row, video_id in enumerate(exact.video_ids):
        # FFmpeg's own in-order decode: the frames decord gave before (tests/pipeline)
        frames = decode_video(_path(hd_corpus, video_id), decoders=("pyav",)).frames
        for name in TINY:
            expected = direct_encode(name, frames, pad_to=JOB["batch_size"])
            np.testing.assert_array_equal(exact.read_rows(name, [row])[0], expected, video_id)
        assert exact.encoder_attrs(name)["fingerprint"] == get_spec(name).fingerprint()


def test_fast_mode_features_stay_within_cosine_0999_of_exact(stores):
    exact, fast = stores
    assert fast.video_ids == exact.video_ids
    worst = {}
    for name in TINY:
        a = exact.read_rows(name, range(5)).astype(np.float64).reshape(5, -1)
        b = fast.read_rows(name, range(5)).astype(np.float64).reshape(5, -1)
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        worst[name] = float(cos.min())
        assert (cos >= 0.999).all(), (name, dict(zip(exact.video_ids, cos.round(5), strict=True)))
    small = exact.video_ids.index("mmaction2_part_0")  # below the fast size: the same frames
    for name in TINY:
        assert np.array_equal(exact.read_rows(name, [small]), fast.read_rows(name, [small]))


def test_fast_frames_travel_at_the_encoders_size_under_their_own_fingerprint(stores):
    exact, fast = stores
    rows = {m["video_id"]: m for m in fast.manifest().to_pylist()}
    skeleton, turned = rows[CLIPS[0].split(".")[0]], rows[ROTATED]
    assert (skeleton["height"], skeleton["width"]) == (448, 796)  # 2 x 224 on the short side
    assert (turned["height"], turned["width"]) == (796, 448) and turned["rotation"] == 270
    assert (skeleton["source_height"], skeleton["source_width"]) == (1080, 1920)
    assert skeleton["decoder"] == "pyav-seek" and skeleton["frames_decoded"] == 72
    assert skeleton["keyframe_interval"] == 72  # one keyframe: the whole clip is one group
    assert rows["mmaction2_part_0"]["height"] == 256  # never enlarged
    tag = {"mode": "fast", "short_side": 448, "scaler": "bicubic"}
    for name in TINY:
        attrs = fast.encoder_attrs(name)
        assert attrs["spec"]["decode"] == tag
        assert attrs["fingerprint"] == stored_fingerprint(get_spec(name), tag)
        assert attrs["fingerprint"] != exact.encoder_attrs(name)["fingerprint"]
    assert store_status(fast.url)["encoders"][TINY[0]]["decode"] == "fast@448"
    assert store_status(exact.url)["encoders"][TINY[0]]["decode"] == "exact"
    saved = open(f"{fast.root}/_jobs/extract.yaml").read()
    assert "decode_mode: fast" in saved and "decode_short_side: 448" in saved


def test_a_store_refuses_the_other_decode_mode(stores, hd_corpus):
    exact, fast = stores
    with pytest.raises(StoreError, match="fast decoding at 448.*this job.*exact decoding"):
        run_extract_quietly(hd_corpus, fast.url, "tiny", **JOB)
    with pytest.raises(StoreError, match="exact decoding.*this job.*fast decoding at 336"):
        run_extract_quietly(hd_corpus, exact.url, "tiny", decode_mode="fast",
                            decode_short_side=336, **JOB)  # fmt: skip


def test_a_model_is_served_with_the_decoding_its_features_had(stores, monkeypatch):
    """The feature recipe a checkpoint keeps carries the store's decode tag; `merv embed`
    decodes new videos the same way unless told otherwise."""
    from types import SimpleNamespace

    import jobs.embed
    from encoders import EncoderSpec
    from jobs.config import ExtractConfig
    from jobs.extract import _job_encoders
    from mixer.selection import feature_recipe

    exact, fast = stores
    tag = fast.encoder_attrs(TINY[0])["spec"]["decode"]
    recipe = feature_recipe(fast, fast.url, list(TINY[:2]), None, None)
    assert recipe["decode"] == dict.fromkeys(TINY[:2], tag)
    spec = EncoderSpec.from_dict(recipe["encoders"][TINY[0]])  # "decode" is not a spec field
    assert spec == get_spec(TINY[0])
    assert jobs.embed._decode(recipe) == tag
    assert jobs.embed._decode({**recipe, "decode": {TINY[0]: tag, TINY[1]: None}}) is None
    assert jobs.embed._decode(feature_recipe(exact, exact.url, list(TINY), None, None)) is None

    plan = SimpleNamespace(encoder_specs=[spec], store_spec=None, time_steps=16, grid=8, decode=tag)
    monkeypatch.setattr(jobs.embed, "embed_plan", lambda model: plan)
    served = _job_encoders(ExtractConfig(model="m.safetensors", random_weights=True))[0]
    assert (served.decode_mode, served.decode_short_side) == ("fast", 448)
    told = ExtractConfig(model="m.safetensors", random_weights=True, decode_mode="exact")
    assert _job_encoders(told)[0].decode_mode == "exact"
