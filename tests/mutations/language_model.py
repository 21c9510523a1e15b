"""Mutations of the lm objective (mixer/lm/*.py, mixer/steps.py)."""

_TRAIN = "tests/mixer/test_lm_train.py"
_PROMPTS = "tests/mixer/test_lm_prompts.py"

MUTATIONS = [
    dict(
        id="lm-visual-before-bos",
        file="mixer/lm/objective.py",
        old='"inputs_embeds": torch.cat([embeds[:, :1], visual, embeds[:, 1:]], dim=1),',
        new='"inputs_embeds": torch.cat([visual, embeds], dim=1),',
        tests=[f"{_TRAIN}::test_visual_tokens_sit_right_after_bos_and_are_never_supervised"],
        why="visual tokens put in front of BOS: the language model sees another layout",
    ),
    dict(
        id="lm-human-turns-supervised",
        file="mixer/lm/prompts.py",
        old='labels += [IGNORE] * len(piece) if role == "human" else list(piece)',
        new="labels += list(piece)",
        tests=[f"{_PROMPTS}::test_multi_turn_labels_cover_exactly_the_answers"],
        why="the loss also trains on the questions",
    ),
    dict(
        id="lm-video-placeholder-stripped",
        file="mixer/lm/prompts.py",
        old='message = message.replace("<image>", "").strip()',
        new='message = message.replace("<image>", "").replace("<video>", "").strip()',
        tests=[f"{_PROMPTS}::test_pure_builder_strings_are_the_references"],
        why="prompts differ from the reference's, which keep the literal <video>",
    ),
    dict(
        id="lm-loss-weight-rows",
        file="mixer/lm/objective.py",
        old="return sum(sum(lab != IGNORE for lab in self.samples[int(i)][1][1:]) for i in targets)",
        new="return len(targets)",
        tests=[f"{_TRAIN}::test_micro_batches_weight_the_loss_by_supervised_tokens"],
        why="accumulated micro-batches average per-batch means, not the batch's tokens",
    ),
    dict(
        id="lm-weights-trainable",
        file="mixer/lm/backbone.py",
        old="    model.requires_grad_(False)\n",
        new="",
        tests=[f"{_TRAIN}::test_the_language_model_gets_no_gradient_and_stays_bitwise_unchanged"],
        why="the frozen language model collects gradients (and memory) it never uses",
    ),
    dict(
        id="micro-accumulation-unweighted",
        file="mixer/steps.py",
        old="(loss * (world * weight / total if total else 0.0)).backward()",
        new="(loss * world).backward()",
        tests=["tests/mixer/test_trainer.py::test_micro_batches_take_the_steps_of_whole_batches"],
        why="accumulated gradients are summed, not averaged: steps grow with the micro-batches",
    ),
    dict(
        id="time-mix-across-cells",
        file="mixer/time_mix.py",
        old="steps = fused.reshape(b, t, n // t, d)  # tokens are stored time-major",
        new="steps = fused.reshape(b, n // t, t, d).transpose(1, 2)",
        tests=["tests/mixer/test_time_mix.py::test_the_mix_runs_along_time_within_each_cell"],
        why="the tokens are read cell-major: the mix blends grid cells of one step, not the "
        "steps of one cell, and motion stays invisible",
    ),
    dict(
        id="time-mix-not-residual",
        file="mixer/time_mix.py",
        old="mixed = steps + torch.einsum(",
        new="mixed = torch.einsum(",
        tests=["tests/mixer/test_time_mix.py::test_untrained_it_is_exactly_merv_mixer"],
        why="an untrained fusion outputs zeros instead of MERV's mixer: alignment starts blind",
    ),
]
