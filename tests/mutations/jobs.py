"""Mutations of the encoder stage that runs on Ray workers (jobs/workers.py)."""

_ACTOR_TESTS = ["tests/jobs/test_encoder_actor.py"]

MUTATIONS = [
    dict(
        id="actor-no-padding",
        file="jobs/workers.py",
        old="grid = encoder.encode(chunk, pad_to=size, timings=spent)",
        new="grid = encoder.encode(chunk)",
        tests=_ACTOR_TESTS,
        why="forwards of varying size: a video's features depend on its batch (resume differs)",
    ),
    dict(
        id="actor-batch-error-fails-all",
        file="jobs/workers.py",
        old="""                except Exception:  # noqa: BLE001 - one video at a time isolates the culprit
                    for i in rows:
                        try:
                            feats[i] = self._encode(encoder, [frames[i]])[0]
                        except Exception as err:  # noqa: BLE001 - recorded, job goes on""",
        new="""                except Exception as err:  # noqa: BLE001
                    for i in rows:
                        if True:""",
        tests=[
            "tests/jobs/test_encoder_actor.py::test_one_videos_encoder_error_fails_only_that_video"
        ],
        why="one encoder error fails every video of the batch instead of its own",
    ),
    dict(
        id="actor-reason-unclassified",
        file="jobs/workers.py",
        old='error[i] = f"{failures.ENCODER}: {name}: {failures.one_line(err)}"',
        new='error[i] = f"encoder {name}: {failures.one_line(err)}"',
        tests=[
            "tests/jobs/test_encoder_actor.py::test_one_videos_encoder_error_fails_only_that_video"
        ],
        why="the reason has no class token: reason_class() is None, status --failed can't group it",
    ),
    dict(
        id="actor-ignores-wanted-encoders",
        file="jobs/workers.py",
        old='rows = [i for i in range(n) if status[i] == "ok" and name in wanted[i]]',
        new='rows = [i for i in range(n) if status[i] == "ok"]',
        tests=[
            "tests/jobs/test_encoder_actor.py::"
            "test_rows_that_failed_decoding_or_want_other_encoders_stay_zero"
        ],
        why="an incremental run recomputes encoders a row did not ask for",
    ),
    dict(
        id="actor-reason-multiline",
        file="jobs/workers.py",
        old="{failures.one_line(err)}",
        new="{err}",
        tests=[
            "tests/jobs/test_encoder_actor.py::test_one_videos_encoder_error_fails_only_that_video"
        ],
        why="a multi-line exception text breaks the one-line manifest reason",
    ),
]
