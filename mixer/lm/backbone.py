"""The frozen language model and its tokenizer: loaded from a local folder or a hub id.

Never runs remote code and reads weights from safetensors only. The model is frozen
(``requires_grad`` off, eval mode) and kept out of the mixer's state dict: a checkpoint holds the
projectors and mixer, never the language model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.config import hub_offline


@dataclass
class LanguageModel:
    model: nn.Module  # a transformers *ForCausalLM, frozen
    tokenizer: Any  # its transformers tokenizer
    source: str  # folder or hub id (with @revision)

    @property
    def hidden_size(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[1])

    @property
    def embed(self) -> nn.Module:
        return self.model.get_input_embeddings()


def _where(source: str, revision: str | None) -> tuple[str, dict[str, Any]]:
    """What ``from_pretrained`` is given: a local folder (nothing downloaded) or a hub id."""
    local = Path(source).expanduser()
    if local.is_dir():
        return str(local), {"trust_remote_code": False, "local_files_only": True}
    return source, {"trust_remote_code": False, "revision": revision,
                    "local_files_only": hub_offline()}  # fmt: skip


def _not_found(source: str, err: Exception) -> ValueError:
    offline = " (HF_HUB_OFFLINE is set: only the local cache was searched)"
    local = Path(source).expanduser().is_dir()
    return ValueError(
        f"no language model at {source!r}{'' if local else offline * hub_offline()}: "
        f"{str(err).splitlines()[0]}; pass objective_options.model=<a folder with config.json, "
        "the tokenizer and *.safetensors> or a hub id you can download"
    )


def hidden_size_of(source: str, revision: str | None = None) -> int:
    """The language model's hidden size, from its config alone (no weights read)."""
    from transformers import AutoConfig

    where, kwargs = _where(source, revision)
    try:
        config = AutoConfig.from_pretrained(where, **kwargs)
    except (OSError, ValueError) as err:
        raise _not_found(source, err) from err
    return int(config.hidden_size)


def load_language_model(
    source: str, revision: str | None = None, device: torch.device | str = "cpu"
) -> LanguageModel:
    """``source``: a folder with config.json, tokenizer files and safetensors weights, or a hub
    id (``revision`` pins a commit or tag). bf16 on a GPU, float32 elsewhere. Raises ValueError
    naming how to provide the weights when they cannot be found."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per weights file is noise in a job's log
    device = torch.device(device)
    where, kwargs = _where(source, revision)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            where, dtype=dtype, use_safetensors=True, **kwargs
        )
    except (OSError, ValueError) as err:
        raise _not_found(source, err) from err
    model.requires_grad_(False)
    model.eval().to(device)
    name = source + (f"@{revision}" if revision and not Path(source).is_dir() else "")
    return LanguageModel(model, tokenizer, name)
