"""Mutations of distillation and serving (mixer/distill/*.py, mixer/adapters.py,
jobs/embed.py, jobs/model_stage.py, jobs/workers.py)."""

_DISTILL = "tests/mixer/test_distill.py"
_EMBED = "tests/jobs/test_embed.py"

MUTATIONS = [
    dict(
        id="distill-own-split",
        file="mixer/distill/student.py",
        old="    fields = {k: getattr(taught, k) for k in SAME_AS_TEACHER}",
        new="    fields = {}",
        tests=[f"{_DISTILL}::test_distillation_lowers_the_student_teacher_distance"],
        why="the student ignores the teacher's pooling and split: scored on other rows",
    ),
    dict(
        id="distill-cosine-sign",
        file="mixer/distill/objective.py",
        old="        cosine = 1.0 - F.cosine_similarity(tokens, target, dim=-1).mean()",
        new="        cosine = 1.0 + F.cosine_similarity(tokens, target, dim=-1).mean()",
        tests=[f"{_DISTILL}::test_distillation_lowers_the_student_teacher_distance"],
        why="the cosine term pushes the student's tokens away from the teacher's",
    ),
    dict(
        id="distill-student-without-teacher-head",
        file="mixer/distill/objective.py",
        old='        state.update({f"head.{k}": v for k, v in self.teacher.head.state_dict().items()})',
        new="",
        tests=[f"{_DISTILL}::test_the_student_serves_with_its_teachers_head"],
        why="the saved student has no trained head: it cannot predict anything",
    ),
    dict(
        id="distill-teacher-features-not-streamed",
        file="mixer/epochs.py",
        old="FeatureStream(data.store_url, data.read_encoders, rows, cfg, targets, readers)",
        new="FeatureStream(data.store_url, data.encoders, rows, cfg, targets, readers)",
        tests=[f"{_DISTILL}::test_distillation_lowers_the_student_teacher_distance"],
        why="the teacher's encoders are never read: no target tokens",
    ),
    dict(
        id="distill-scored-on-train-rows",
        file="mixer/distill/compare.py",
        old="    which = data.val if len(data.val) else range(len(data.rows))",
        new="    which = data.train",
        tests=[f"{_DISTILL}::test_distillation_lowers_the_student_teacher_distance"],
        why="the student is scored on the videos it was trained on",
    ),
    dict(
        id="distill-lm-student-scored-on-its-own-rows",
        file="mixer/distill/student.py",
        old='    if config.objective != "distill":\n        return config\n    return saved_train_config(',
        new="    return config\n    return saved_train_config(",
        tests=["tests/mixer/test_lm_train.py::test_alignment_then_eval_generate_export_and_import"],
        why="merv eval of a language-model teacher's student finds no text to score it on",
    ),
    dict(
        id="embed-store-alignment-ignored",
        file="jobs/workers.py",
        old='            self.time_steps, self.grid = int(model["time_steps"]), int(model["grid"])\n',
        new="",
        tests=[f"{_EMBED}::test_embed_runs_only_the_students_encoder_and_matches_the_cache"],
        why="served inputs aligned to the output grid, not as the training store aligned them",
    ),
    dict(
        id="embed-prediction-least-likely",
        file="jobs/model_stage.py",
        old="                        p, c = scores[k].max(-1)",
        new="                        p, c = scores[k].min(-1)",
        tests=[f"{_EMBED}::test_embed_runs_only_the_students_encoder_and_matches_the_cache"],
        why="the manifest's prediction is the least likely class",
    ),
    dict(
        id="embed-not-pooled",
        file="jobs/model_stage.py",
        old="torch.from_numpy(pool_features(f[rows], self.grid, *self.pool)).float()",
        new="torch.from_numpy(f[rows]).float()",
        tests=[f"{_EMBED}::test_embed_runs_only_the_students_encoder_and_matches_the_cache"],
        why="the model is fed unpooled tokens that training never saw",
    ),
]
