"""A checkpoint's files, found and checked without torch: what the model option names (the embedded model, a local
folder or a hub id the user allowed) and whether a local folder holds a DiffusionGemma with weights and a tokenizer.
The model host runs these first, so a wrong path is said at once, not after the seconds torch and transformers take
to import (engine/loading.py runs them again, as part of every load)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .types import QUANTIZE_FORMATS, EngineConfig, ModelLoadError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")


def embedded_model_dir() -> Path:
    """The shipped model: package data of `diffusion_infill_models` (models/ in the source tree), so a wheel
    carries it; the source tree's own folder when the project is run without being installed."""
    try:
        import diffusion_infill_models
    except ImportError:
        return Path(__file__).resolve().parents[1] / "models" / "diffusion-infill-small"
    return Path(diffusion_infill_models.__file__).resolve().parent / "diffusion-infill-small"


DEFAULT_MODEL_DIR = embedded_model_dir()


def resolve_source(config: EngineConfig) -> tuple[str, bool]:
    """(where to load from, is it a local folder). Refuses the hub unless the user allowed it."""
    if config.model is None:
        if not DEFAULT_MODEL_DIR.is_dir():
            raise ModelLoadError(f"the embedded model is missing: {DEFAULT_MODEL_DIR} does not exist")
        return str(DEFAULT_MODEL_DIR), True
    path = Path(config.model).expanduser()
    if path.is_dir():
        return str(path), True
    if path.exists():
        raise ModelLoadError(f"the model option names a file, {config.model}; name the checkpoint folder that holds "
                             f"it ({path.parent}) instead")
    looks_like_hub_id = config.model.count("/") == 1 and not config.model.startswith((".", "/", "~"))
    if not looks_like_hub_id:
        raise ModelLoadError(f"model folder not found: {config.model}")
    parent = Path(config.model.split("/")[0])
    if holds_model_folders(parent):
        # `models/mine-typo` where models/ holds checkpoints: a mistyped folder, not a hub id to send to
        # huggingface.co. (A project's own `google/` of protobuf files leaves `google/...` a hub id.)
        raise ModelLoadError(f"model folder not found: there is no {path.resolve()} (the folder {parent.resolve()} "
                             f"holds models, so '{config.model}' is read as a folder in it, not as a hub id)")
    if not config.allow_download and not in_hub_cache(config.model):
        # A relative folder that does not exist looks like a hub id too: say where it was looked for.
        raise ModelLoadError(
            f"'{config.model}' is not a local folder (there is no {path.resolve()}) nor in the local hub cache; as a "
            "hub id it would have to be downloaded, and downloading is off. Set allowDownload (or pass "
            "--allow-download) to fetch it, or point the model option at a local folder (an absolute path is "
            "safest).")
    return config.model, False


def holds_model_folders(folder: Path, looked_at: int = 256) -> bool:
    """Whether `folder` has a subfolder with a config.json among its first `looked_at` entries."""
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= looked_at:
                    break
                if entry.is_dir() and (Path(entry.path) / "config.json").is_file():
                    return True
    except OSError:   # (not a folder, or not readable)
        return False
    return False


def in_hub_cache(repo_id: str) -> bool:
    """Whether the local hub cache holds this repository's config (a download made earlier): read without the
    network, so a hub model fetched once loads offline without allowDownload."""
    try:
        from huggingface_hub import try_to_load_from_cache
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:   # (an id the hub client rejects, an unreadable cache: not there, as far as we can tell)
        return False


def check_local_folder(folder: Path) -> None:
    if not os.access(folder, os.R_OK | os.X_OK):   # unlisted, glob() would find no weights and say so
        raise ModelLoadError(f"cannot read the folder {folder}: permission denied")
    try:
        check_folder_files(folder)
    except PermissionError as exc:   # a folder that cannot be listed or entered (the files' own are named below)
        raise ModelLoadError(f"cannot read {exc.filename or folder}: {exc.strerror}") from exc


def check_folder_files(folder: Path) -> None:
    check_config_file(folder)
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise ModelLoadError(f"{folder} has a config but no weights (*.safetensors)")
    for weights in weight_files(folder):   # safetensors' own error names neither the file nor the cause
        try:
            with weights.open("rb") as handle:
                handle.read(8)
        except OSError as exc:
            raise ModelLoadError(f"cannot read {weights}: {exc.strerror or exc}") from exc
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        # transformers would build an empty tokenizer that reads all code as <unk>, and every fill would be empty
        raise ModelLoadError(f"{folder} has no tokenizer ({' or '.join(TOKENIZER_FILES)})")


def check_config_file(folder: Path, source: str | None = None) -> None:
    """The folder's config.json is a DiffusionGemma's with a text model (`source`: the hub id it came from, named
    in the messages instead of its cache folder)."""
    config_file = folder / "config.json"
    named = f"{source}'s config.json" if source else str(config_file)
    if not config_file.is_file():
        raise ModelLoadError(f"{source or folder} has no config.json: not a transformers checkpoint")
    try:
        config = json.loads(config_file.read_text())
    except OSError as exc:
        raise ModelLoadError(f"cannot read {config_file}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{named} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ModelLoadError(f"{named} must hold a JSON object")
    model_type = config.get("model_type")
    if model_type != "diffusion_gemma":
        holds = f"holds a '{model_type}' model" if model_type is not None else "names no model_type"
        raise ModelLoadError(f"{source or folder} {holds}; this server needs a DiffusionGemma "
                             "(model_type 'diffusion_gemma') checkpoint")
    if not isinstance(config.get("text_config"), dict):   # (transformers failed on it deep inside, with a TypeError)
        raise ModelLoadError(f"{named} has no text_config object: the text model's sizes are not given")


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files transformers reads: those its index names when there is one, else model.safetensors."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            return sorted({folder / name for name in json.loads(index.read_text())["weight_map"].values()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return []
    return [folder / "model.safetensors"] if (folder / "model.safetensors").is_file() else []


def check_before_loading(config: EngineConfig) -> None:
    """The checks a load makes before it needs torch: the quantize name, where the model is, and a local folder's
    files. A hub model is checked once fetched (engine/loading.py)."""
    if config.quantize not in QUANTIZE_FORMATS:
        raise ModelLoadError(f"unknown quantize '{config.quantize}' (use {', '.join(QUANTIZE_FORMATS)})")
    source, local = resolve_source(config)
    if local:
        check_local_folder(Path(source))
