"""Mutations of ablation grids, explanations and cost (mixer/ablation/*.py, jobs/ablate.py,
jobs/cost_cmd.py)."""

_ABLATE = "tests/jobs/test_ablate.py"

MUTATIONS = [
    dict(
        id="ablate-rows-per-variant",
        file="mixer/ablation/grid.py",
        old='    base = {**grid.train, "store": grid.store, "row_encoders": used}',
        new='    base = {**grid.train, "store": grid.store}',
        tests=[f"{_ABLATE}::test_grid_trains_every_variant_and_reports"],
        why="each variant trains on its own encoders' ok rows: comparisons on different videos",
    ),
    dict(
        id="ablate-std-population",
        file="mixer/ablation/results.py",
        old="values.std(ddof=1)",
        new="values.std()",
        tests=[f"{_ABLATE}::test_grid_trains_every_variant_and_reports"],
        why="the table's standard deviation is not the sample one it claims",
    ),
    dict(
        id="ablate-rerun-retrains-everything",
        file="jobs/ablate.py",
        old="    todo = [v for v in variants if read_result(out, v) is None]",
        new="    todo = list(variants)",
        tests=[f"{_ABLATE}::test_a_killed_grid_reruns_only_the_missing_variants"],
        why="a rerun after a kill trains the whole grid again",
    ),
    dict(
        id="side-by-side-shares-one-rng",
        file="mixer/side_by_side.py",
        old="        torch.set_rng_state(self.cpu_state)",
        new="        pass",
        tests=["tests/mixer/test_side_by_side.py::test_side_by_side_equals_each_run_alone"],
        why="runs side by side draw dropout from one RNG: results differ from each run alone",
    ),
    dict(
        id="side-by-side-wrong-columns",
        file="mixer/side_by_side.py",
        old="        return dataclasses.replace(batch, features=[batch.features[j] for j in self.columns])",
        new="        return dataclasses.replace(batch, features=batch.features[: len(self.columns)])",
        tests=["tests/mixer/test_side_by_side.py::test_side_by_side_equals_each_run_alone"],
        why="a model side by side gets the first encoders' features, not its own",
    ),
    dict(
        id="side-by-side-ignores-seed",
        file="mixer/side_by_side.py",
        old='    "checkpoint_every", "keep_checkpoints", "log_every", "progress",',
        new='    "checkpoint_every", "keep_checkpoints", "log_every", "progress", "seed",',
        tests=["tests/mixer/test_side_by_side.py::test_only_runs_that_read_alike_share"],
        why="runs of different seeds (other splits, other data order) share one read",
    ),
    dict(
        id="ablate-skips-the-node-check",
        file="jobs/ablate.py",
        old="        if address is not None:  # a cluster: every node must read the store and see `out`",
        new="        if False:",
        tests=["tests/jobs/test_cluster.py::test_ablate_output_only_the_driver_sees_is_refused"],
        why="a grid whose output only the driver sees starts, and fails variant after variant",
    ),
    dict(
        id="cost-ignores-preprocess",
        file="jobs/cost_cmd.py",
        old='    per_video = (cost["decode_s"] + sum(e["preprocess_s"] + e["forward_s"]',
        new='    per_video = (cost["decode_s"] + sum(e["forward_s"]',
        tests=["tests/jobs/test_cost.py::test_cost_per_encoder_and_break_even"],
        why="the on-the-fly cost forgets preprocessing: the cache looks less worth it",
    ),
    dict(
        id="ablate-train-overrides-an-axis",
        file="mixer/ablation/grid.py",
        old="        for key in [k for k in self.train if k in SET_BY_GRID]:",
        new="        for key in []:",
        tests=[f"{_ABLATE}::test_a_grid_axis_under_train_is_refused_not_overridden"],
        why="`train: {pool_grid: 2}` is dropped without a word: every variant reads 8x8 tokens",
    ),
]
