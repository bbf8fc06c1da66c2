"""Fixtures the engine tests need, apart from conftest.py: that one imports the LSP client, which the GPU machine
lacks, so the CUDA runbook runs the engine tests with --noconftest and they import these themselves."""
from __future__ import annotations

from pathlib import Path

import pytest

# A frozen copy of the starter model's code tokenizer (4,096 tokens with the FIM specials) for random test models.
CODE_TOKENIZER_DIR = Path(__file__).parent / "data" / "code-tokenizer"


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A tiny random-weight DiffusionGemma (transformers' own class) with the frozen code tokenizer, saved as a
    checkpoint folder: for engine tests that need real shapes, not real text. Frozen, so that shipping another model
    changes none of the random model's choices (a random model's near-ties decide a fill's text)."""
    import json

    import torch
    from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion

    from engine.configs import tiny_config

    folder = tmp_path_factory.mktemp("tiny-diffusion-gemma")
    tokenizer = AutoTokenizer.from_pretrained(CODE_TOKENIZER_DIR)
    torch.manual_seed(0)
    model = DiffusionGemmaForBlockDiffusion(tiny_config(vocab_size=len(tokenizer), canvas_length=32))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "diffusion_infill.json").write_text(json.dumps({"max_prompt_tokens": 64, "canvas_length": 32,
                                                          "canvas_lengths": [16, 32]}))
    return folder
