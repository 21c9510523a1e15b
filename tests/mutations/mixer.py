"""Mutations for the mixer: cached-feature dataset, projectors, fusion, head, trainer, export."""

D = "tests/mixer/test_dataset.py"
M = "tests/mixer/test_modules.py"
T = "tests/mixer/test_trainer.py"
C = "tests/mixer/test_checkpoint.py"

PROBE_FORWARD = """
    def forward(self, tokens: Tensor) -> Tensor:
        if tokens.shape[1] != self.n_tokens:
            raise ValueError(f"probe built for {self.n_tokens} tokens got {tokens.shape[1]}")
        z = F.gelu(self.reduce(tokens))  # [B, N, r]
"""

MUTATIONS = [
    # --- dataset: split ------------------------------------------------------------------------
    dict(
        id="mixer-split-global-shuffle",
        file="mixer/splits.py",
        old="    for c in np.unique(targets):\n"
        "        idx = rng.permutation(np.nonzero(targets == c)[0])\n",
        new="    for c in [None]:\n        idx = rng.permutation(targets.size)\n",
        tests=[f"{D}::test_split_per_class_counts_for_every_seed"],
        why="one global shuffle instead of a per-class one: rare classes end up missing from "
        "train or val and val accuracy is measured on a different class mix",
    ),
    dict(
        id="mixer-split-not-shuffled",
        file="mixer/splits.py",
        old="idx = rng.permutation(np.nonzero(targets == c)[0])",
        new="idx = np.nonzero(targets == c)[0]",
        tests=[
            f"{D}::test_split_per_class_counts_for_every_seed",
            f"{D}::test_split_validation_is_not_a_fixed_block_of_each_class",
        ],
        why="validation is always the first rows of each class (store order, i.e. one source "
        "or time range) and the seed does nothing",
    ),
    dict(
        id="mixer-split-whole-class-to-val",
        file="mixer/splits.py",
        old="n_val = min(int(round(val_fraction * idx.size)), idx.size - 1)",
        new="n_val = int(round(val_fraction * idx.size))",
        tests=[f"{D}::test_split_per_class_counts_for_every_seed"],
        why="a class with one or two examples goes entirely to validation: never trained on",
    ),
    dict(
        id="mixer-split-truncates",
        file="mixer/splits.py",
        old="n_val = min(int(round(val_fraction * idx.size)), idx.size - 1)",
        new="n_val = min(int(val_fraction * idx.size), idx.size - 1)",
        tests=[f"{D}::test_split_per_class_counts_for_every_seed"],
        why="int() truncates instead of rounding: small classes get no validation examples",
    ),
    # --- dataset: pooling, labels, selection ----------------------------------------------------
    dict(
        id="mixer-pool-grid-transposed",
        file="mixer/dataset.py",
        old="y = x.reshape(n * t, grid, grid, c).permute(0, 3, 1, 2)",
        new="y = x.reshape(n * t, grid, grid, c).permute(0, 3, 2, 1)",
        tests=[f"{D}::test_pool_8_to_4_is_the_mean_of_each_2x2_block"],
        why="rows and columns swapped: pooled token (i, j) holds cell (j, i), the spatial "
        "layout no longer matches the stored row-major grid",
    ),
    dict(
        id="mixer-pool-reshape-not-permute",
        file="mixer/dataset.py",
        old="y = x.reshape(n * t, grid, grid, c).permute(0, 3, 1, 2)",
        new="y = x.reshape(n * t, c, grid, grid)",
        tests=[f"{D}::test_pool_8_to_4_is_the_mean_of_each_2x2_block"],
        why="reshape where a permute is needed: channels and grid cells are scrambled",
    ),
    dict(
        id="mixer-pool-max",
        file="mixer/dataset.py",
        old="y = F.adaptive_avg_pool2d(y, pool_grid)",
        new="y = F.adaptive_max_pool2d(y, pool_grid)",
        tests=[f"{D}::test_pool_8_to_4_is_the_mean_of_each_2x2_block"],
        why="max instead of mean pooling: not the reference's token reduction",
    ),
    dict(
        id="mixer-pool-fixed-kernel",
        file="mixer/dataset.py",
        old="y = F.adaptive_avg_pool2d(y, pool_grid)",
        new="y = F.avg_pool2d(y, grid // pool_grid)",
        tests=[f"{D}::test_pool_8_to_3_uses_adaptive_overlapping_bins"],
        why="fixed kernel grid // pool_grid: wrong grid (4x4, not 3x3) when it does not divide",
    ),
    dict(
        id="mixer-labels-sorted-as-text",
        file="mixer/dataset.py",
        old="        return sorted(set(values))\n",
        new="        return sorted(set(values), key=str)\n",
        tests=[
            f"{D}::test_numeric_labels_are_ordered_as_numbers",
            f"{D}::test_integer_manifest_labels_map_to_numeric_class_order",
        ],
        why="numeric labels sorted as text (10 < 2): class index k no longer means label k",
    ),
    dict(
        id="mixer-dataset-reads-failed-rows",
        file="mixer/selection.py",
        old="rows = np.sort(np.asarray(st.ok_rows(needed), dtype=np.int64))",
        new="rows = np.arange(len(st.video_ids), dtype=np.int64)",
        tests=[f"{D}::test_rows_not_ok_are_skipped_with_their_labels"],
        why="failed rows (zero-filled features) are trained on",
    ),
    dict(
        id="mixer-rows-ok-for-all-encoders",
        file="mixer/selection.py",
        old="st.ok_rows(needed)",
        new="st.ok_rows()",
        tests=[f"{D}::test_rows_are_ok_for_the_chosen_encoders_not_every_encoder"],
        why="rows must be ok for every encoder of the store, not just the ones trained on: "
        "adding an encoder to a store hides every video it has not reached yet",
    ),
    dict(
        id="mixer-classes-from-every-label",
        file="mixer/dataset.py",
        old="classes = class_names([label_map[v] for v in vids])",
        new="classes = class_names(list(label_map.values()))",
        tests=[f"{D}::test_rows_not_ok_are_skipped_with_their_labels"],
        why="classes taken from every labelled video, failed ones included: a class with no "
        "examples and shifted class indices",
    ),
    # --- projectors -----------------------------------------------------------------------------
    dict(
        id="mixer-projector-no-bias",
        file="mixer/projectors.py",
        old="self.projector = nn.Linear(in_dim, out_dim, bias=True)",
        new="self.projector = nn.Linear(in_dim, out_dim, bias=False)",
        tests=[
            f"{M}::test_projector_state_dict_and_export_use_the_reference_keys",
            f"{C}::test_checkpoint_keys_values_and_spec_round_trip",
        ],
        why="projector without bias: the export misses projector.bias and no longer loads "
        "into the reference MERV",
    ),
    dict(
        id="mixer-mlp-no-activation",
        file="mixer/projectors.py",
        old="            nn.GELU(),\n",
        new="",
        tests=[f"{M}::test_projector_state_dict_and_export_use_the_reference_keys"],
        why="the gelu-mlp loses its GELU: two stacked linears, and keys projector.0/.1 "
        "instead of the reference's projector.0/.2",
    ),
    dict(
        id="mixer-mlp-relu",
        file="mixer/projectors.py",
        old="            nn.GELU(),\n",
        new="            nn.ReLU(),\n",
        tests=[f"{M}::test_projector_forward_by_hand"],
        why="ReLU instead of the reference's GELU: same keys, different function",
    ),
    # --- fusion ---------------------------------------------------------------------------------
    dict(
        id="mixer-fusion-scale-d-model",
        file="mixer/fusions.py",
        old="self.scale = 1.0 / math.sqrt(attn_dim)",
        new="self.scale = 1.0 / math.sqrt(d_model)",
        tests=[f"{M}::test_cross_attention_at_merv_width_by_hand"],
        why="scaled by the key input width instead of the attention width (3072)",
    ),
    dict(
        id="mixer-fusion-no-scale",
        file="mixer/fusions.py",
        old=".squeeze(-1) * self.scale  # [B, E]",
        new=".squeeze(-1)  # [B, E]",
        tests=[f"{M}::test_cross_attention_at_merv_width_by_hand"],
        why="unscaled logits: the softmax saturates on one encoder",
    ),
    dict(
        id="mixer-fusion-softmax-over-batch",
        file="mixer/fusions.py",
        old="return logits.softmax(dim=-1)",
        new="return logits.softmax(dim=0)",
        tests=[f"{M}::test_cross_attention_at_merv_width_by_hand"],
        why="softmax over the batch instead of over encoders: weights depend on the other "
        "videos in the batch and do not sum to 1 per video",
    ),
    dict(
        id="mixer-fusion-first-token",
        file="mixer/fusions.py",
        old="summaries = torch.stack([x.mean(dim=1) for x in xs], dim=1)",
        new="summaries = torch.stack([x[:, 0] for x in xs], dim=1)",
        tests=[f"{M}::test_cross_attention_at_merv_width_by_hand"],
        why="keys from the first token (CLS habit) instead of the mean token (averagetoken)",
    ),
    dict(
        id="mixer-fusion-q-no-bias",
        file="mixer/fusions.py",
        old="self.q_proj = nn.Linear(attn_dim, attn_dim, bias=True)",
        new="self.q_proj = nn.Linear(attn_dim, attn_dim, bias=False)",
        tests=[f"{M}::test_cross_attention_export_reference_keys_and_values"],
        why="the query projection has no bias (the reference's in_proj_bias has one)",
    ),
    dict(
        id="mixer-fusion-weighted-sum-index",
        file="mixer/fusions.py",
        old="out = out + xs[e] * weights[:, e, None, None]",
        new="out = out + xs[e] * weights[:, e - 1, None, None]",
        tests=[f"{M}::test_cross_attention_at_merv_width_by_hand"],
        why="off-by-one: encoder e's tokens weighted by encoder e-1's weight",
    ),
    # --- model and head -------------------------------------------------------------------------
    dict(
        id="mixer-spec-tokens-per-step-grid",
        file="mixer/model.py",
        old='"tokens_per_step": data.grid * data.grid,',
        new='"tokens_per_step": data.grid,',
        tests=[f"{T}::test_model_spec_takes_the_data_and_every_model_field_of_the_config"],
        why="tokens per step taken as the grid side, not its area: the probe is built for "
        "the wrong number of tokens",
    ),
    dict(
        id="mixer-spec-shares-config-options",
        file="mixer/model.py",
        old="f.name: copy.copy(getattr(config, f.name))",
        new="f.name: getattr(config, f.name)",
        tests=[f"{T}::test_model_spec_takes_the_data_and_every_model_field_of_the_config"],
        why="the spec holds the config's own options dicts: editing one after training "
        "changes the other (and the checkpoint written from it)",
    ),
    dict(
        id="mixer-cli-train-drops-encoders",
        file="jobs/train_cmd.py",
        old='    flags["encoders"] = args.encoders or None',
        new="    pass",
        tests=[f"{T}::test_cli_train_config_is_the_file_then_the_flags"],
        why="--encoders silently ignored: every encoder of the store is trained on",
    ),
    dict(
        id="mixer-model-grid-major-tokens",
        file="mixer/model.py",
        old="projected = [p(x.flatten(1, -2)) for p, x",
        new="projected = [p(x.transpose(1, 2).flatten(1, -2)) for p, x",
        tests=[f"{M}::test_model_tokens_are_time_major"],
        why="tokens flattened cell-major instead of time-major: the LLM stage reads them out "
        "of temporal order",
    ),
    dict(
        id="mixer-probe-time-mean",
        file="mixer/objectives.py",
        old="        self.classifier = nn.Linear(n_tokens * token_dim, num_classes)\n"
        + PROBE_FORWARD
        + "        return self.classifier(self.dropout(z.flatten(1)))\n",
        new="        self.classifier = nn.Linear(token_dim, num_classes)\n"
        + PROBE_FORWARD
        + "        return self.classifier(self.dropout(z.mean(1)))\n",
        tests=[
            f"{M}::test_probe_head_logits_loss_and_correct_by_hand",
            f"{M}::test_probe_sees_token_order",
        ],
        why="head averages over tokens: labels that depend on temporal order become unlearnable",
    ),
    dict(
        id="mixer-probe-nll-on-logits",
        file="mixer/objectives.py",
        old="return F.cross_entropy(logits, targets)",
        new="return F.nll_loss(logits, targets)",
        tests=[f"{M}::test_probe_head_logits_loss_and_correct_by_hand"],
        why="nll_loss on raw logits (log_softmax forgotten): an unbounded, wrong loss",
    ),
    # --- trainer --------------------------------------------------------------------------------
    dict(
        id="mixer-decay-on-1d-params",
        file="mixer/trainer.py",
        old='(no_decay if p.ndim <= 1 or name.endswith(".bias") else decay)',
        new='(no_decay if name.endswith(".bias") else decay)',
        tests=[f"{T}::test_param_groups_decay_only_matrices"],
        why="1-D parameters that are not biases (the static mixer's scalar, norms) decayed",
    ),
    dict(
        id="mixer-decay-groups-swapped",
        file="mixer/trainer.py",
        old='        {"params": decay, "weight_decay": weight_decay},\n'
        '        {"params": no_decay, "weight_decay": 0.0},\n',
        new='        {"params": decay, "weight_decay": 0.0},\n'
        '        {"params": no_decay, "weight_decay": weight_decay},\n',
        tests=[f"{T}::test_param_groups_decay_only_matrices"],
        why="weight decay applied to biases and not to weights",
    ),
    dict(
        id="mixer-optimizer-ignores-groups",
        file="mixer/trainer.py",
        old="        param_groups(model, config.weight_decay),\n",
        new="        [{'params': list(model.parameters()), 'weight_decay': config.weight_decay}],\n",
        tests=[f"{T}::test_training_uses_groups_warmup_cosine_and_clipping"],
        why="AdamW built on all parameters: biases decayed too",
    ),
    dict(
        id="mixer-warmup-ceil",
        file="mixer/trainer.py",
        old="warmup = int(total_steps * warmup_fraction)",
        new="warmup = math.ceil(total_steps * warmup_fraction)",
        tests=[f"{T}::test_warmup_cosine_exact_values"],
        why="warmup length rounded up: one step longer than the reference schedule",
    ),
    dict(
        id="mixer-cosine-over-all-steps",
        file="mixer/trainer.py",
        old="progress = (step - warmup) / max(1, total_steps - warmup)",
        new="progress = step / max(1, total_steps)",
        tests=[f"{T}::test_warmup_cosine_exact_values"],
        why="cosine progress counted from step 0: the LR drops at the end of warmup",
    ),
    dict(
        id="mixer-cosine-quarter-period",
        file="mixer/trainer.py",
        old="return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))",
        new="return math.cos(0.5 * math.pi * min(1.0, progress))",
        tests=[f"{T}::test_warmup_cosine_exact_values"],
        why="quarter-period cosine: 1 -> 0 too, but the LR stays high much longer",
    ),
    dict(
        id="mixer-cosine-not-clamped",
        file="mixer/trainer.py",
        old="math.cos(math.pi * min(1.0, progress))",
        new="math.cos(math.pi * progress)",
        tests=[f"{T}::test_warmup_cosine_exact_values"],
        why="past the last step the LR rises again (a resumed or extended run)",
    ),
    dict(
        id="mixer-schedule-per-epoch",
        file="mixer/trainer.py",
        old="warmup_cosine(config.epochs * steps_per_epoch, config.warmup)",
        new="warmup_cosine(config.epochs, config.warmup)",
        tests=[f"{T}::test_training_uses_groups_warmup_cosine_and_clipping"],
        why="schedule sized in epochs but stepped per batch: LR reaches 0 after a few batches",
    ),
    dict(
        id="mixer-steps-per-epoch-floor",
        file="mixer/trainer.py",
        old="steps_per_epoch = math.ceil(n_train / config.batch_size)",
        new="steps_per_epoch = n_train // config.batch_size",
        tests=[f"{T}::test_training_uses_groups_warmup_cosine_and_clipping"],
        why="last partial batch not counted: the schedule ends early and LR sits at 0",
    ),
    dict(
        id="mixer-scheduler-before-optimizer",
        file="mixer/steps.py",
        old="    opt.step()\n    sched.step()\n",
        new="    sched.step()\n    opt.step()\n",
        tests=[f"{T}::test_training_uses_groups_warmup_cosine_and_clipping"],
        why="scheduler stepped before the optimizer: the first warmup value is skipped",
    ),
    dict(
        id="mixer-clip-after-step",
        file="mixer/steps.py",
        old="    norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)\n"
        "    opt.step()\n",
        new="    opt.step()\n"
        "    norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)\n",
        tests=[f"{T}::test_training_uses_groups_warmup_cosine_and_clipping"],
        why="gradients clipped after the optimizer step: clipping has no effect",
    ),
    dict(
        id="mixer-unseeded-init",
        file="mixer/trainer.py",
        old="    torch.manual_seed(config.seed)\n",
        new="",
        tests=[f"{T}::test_same_seed_same_weights"],
        why="model init not seeded: two runs with the same seed give different weights",
    ),
    # --- checkpoint and export ------------------------------------------------------------------
    dict(
        id="mixer-checkpoint-half",
        file="mixer/checkpoint.py",
        old='v.detach().to("cpu").contiguous()',
        new='v.detach().to("cpu").half().contiguous()',
        tests=[f"{C}::test_checkpoint_keys_values_and_spec_round_trip"],
        why="weights saved in float16 to save space: the loaded model is not the trained one",
    ),
    dict(
        id="mixer-export-projector-prefix",
        file="mixer/export.py",
        old='projectors[f"{index}.projector.{rest}"] = value.detach().cpu()',
        new='projectors[f"projectors.{index}.projector.{rest}"] = value.detach().cpu()',
        tests=[f"{M}::test_export_loads_into_reference_3davg_projectors"],
        why="exported projector keys keep the 'projectors.' prefix: "
        "vidlm.projectors.load_state_dict rejects them",
    ),
    dict(
        id="mixer-export-flat-projector-keys",
        file="mixer/export.py",
        old='projectors[f"{index}.projector.{rest}"] = value.detach().cpu()',
        new='projectors[f"{index}.{rest}"] = value.detach().cpu()',
        tests=[f"{M}::test_export_loads_into_reference_3davg_projectors"],
        why="our keys exported as they are: the released MERV's 3davg+linear projectors keep "
        "the linear one level deeper (projector.projector.*) and refuse them",
    ),
    dict(
        id="mixer-export-in-proj-bias-order",
        file="mixer/export.py",
        old='torch.cat([sd["q_proj.bias"], sd["k_proj.bias"], zeros_bias])',
        new='torch.cat([sd["k_proj.bias"], sd["q_proj.bias"], zeros_bias])',
        tests=[f"{M}::test_cross_attention_export_reference_keys_and_values"],
        why="in_proj_bias packed k | q instead of q | k: the reference mixes differently",
    ),
    dict(
        id="mixer-export-query-key",
        file="mixer/export.py",
        old='"Q": sd["query"],',
        new='"query": sd["query"],',
        tests=[f"{M}::test_cross_attention_export_reference_keys_and_values"],
        why="learned query exported under our name, not the reference's 'Q'",
    ),
]
