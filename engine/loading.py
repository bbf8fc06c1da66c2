"""Find, check and load a DiffusionGemma checkpoint and its tokenizer, with errors a user can act on."""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .memory import available_cpu_memory, out_of_memory, release_cached_gpu_memory
from .model_files import DEFAULT_MODEL_DIR, embedded_model_dir  # noqa: F401 (named here by tests and bench/)
from .model_files import check_config_file, check_local_folder, resolve_source, weight_files
from .quantize import WEIGHT_FORMATS, QuantizedWeight, quantize_model
from .types import Cancelled, EngineConfig, ModelLoadError

log = logging.getLogger(__name__)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TOKENIZER_PROBE = "def total(values):\n    return sum(value * 2 for value in values)  # doubled\n"
MIN_CANVAS = 16   # the smallest canvas bucket: room for a line, its <eos> and, suffix-pinned, 8 suffix tokens
MIN_PROMPT_TOKENS = 16    # a smaller context leaves no room for the sentinels and a line of code


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    source: str                 # folder or hub id it came from
    device: torch.device
    dtype: torch.dtype
    max_prompt_tokens: int      # longest prompt the model was trained for
    canvas_length: int
    # The canvas lengths it reads well (training/train.py writes those it trained on; the starter's were measured,
    # bench/canvas_lengths.py); empty: any bucket.
    canvas_lengths: tuple[int, ...] = ()
    fim_order: str = "spm"      # with FIM sentinels: "spm" (suffix first) or "psm" (prefix first)
    noise: str = "uniform"      # the noise it was trained with: "uniform" (DiffusionGemma) or "masked"
    quantize: str = "none"      # weight format in memory: none (as loaded) | int8 | int4 (engine/quantize.py)
    quantized_weights: int = 0  # weights stored quantized (each shared tensor once)


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise ModelLoadError(f"unknown device '{requested}' (use auto, cpu, cuda, cuda:N or mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device '{requested}' was requested but CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ModelLoadError(f"device '{requested}' was requested but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s), numbered from 0")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"device '{requested}' was requested but Apple's MPS is not available on this machine")
    return device


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    if requested == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if requested not in DTYPES:
        raise ModelLoadError(f"unknown dtype '{requested}' (use auto, float32, bfloat16 or float16)")
    return DTYPES[requested]


SMALL_MODEL_PARAMETERS = 100_000_000


TORCH_DEFAULT_THREADS = torch.get_num_threads()  # before any rule here changed it: a reload can go back to it


def usable_cores() -> int:
    """The cores this process may run on: `taskset` and CPU sets leave it fewer than the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):   # (no affinity on macOS or Windows)
        return os.cpu_count() or 1


def pick_cpu_threads(model: torch.nn.Module) -> None:
    """A small model's matrices are too small to keep many cores busy, and torch's default (a thread per core)
    collapses when anything else needs a core: on this project's 2-core machine one busy core made a step 3x
    slower with 2 threads, while 1 thread kept its pace (bench/RESULTS.md). So a small model takes half the cores
    (at most 4), leaving the rest to the editor; bigger models keep torch's default."""
    small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS
    torch.set_num_threads(max(1, min(4, usable_cores() // 2)) if small else TORCH_DEFAULT_THREADS)


OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")   # huggingface_hub honours either


def hub_offline() -> str | None:
    """The Hugging Face offline switch that is on, read as huggingface_hub reads them (1, ON, YES or TRUE, any
    case), or None."""
    return next((name for name in OFFLINE_SWITCHES
                 if os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}), None)


# What a checkpoint folder needs from a hub repository (not its other formats: GGUF, PyTorch pickles, ...).
HUB_FILES = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt"]


def hub_file_patterns(trust_remote_code: bool) -> dict:
    return {"allow_patterns": HUB_FILES + (["*.py"] if trust_remote_code else []), "ignore_patterns": ["*/*"]}


def hub_snapshot(repo_id: str, trust_remote_code: bool = False, cancel: Callable[[], bool] | None = None,
                 allow_download: bool = True) -> Path:
    """The hub model's files as a folder of the local hub cache: downloaded (the user allowed it: resolve_source)
    unless HF_HUB_OFFLINE is set or downloading is off, when only the cache is read. Files of the repository's top
    folder only (its subfolders hold other checkpoints and formats; `*` would match them too), and its Python code
    only when remote code is trusted. The small files come first and the config is checked before any weight is
    fetched (a wrong repository costs kilobytes, not its checkpoint); then the weights, a file at a time, with
    `cancel` asked between files (a newer load, or the server closing, stops a download of many gigabytes)."""
    from huggingface_hub import hf_hub_download, snapshot_download, try_to_load_from_cache

    switch = hub_offline()
    offline = bool(switch) or not allow_download
    patterns = hub_file_patterns(trust_remote_code)
    small_files = [pattern for pattern in patterns["allow_patterns"] if pattern != "*.safetensors"]
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=small_files, ignore_patterns=patterns["ignore_patterns"],
                                        local_files_only=offline))
        check_config_file(folder, repo_id)
        for name in hub_weight_names(folder):
            if cancel is not None and cancel():
                raise Cancelled()
            if offline:
                # (looked up in the cache's folders: hf_hub_download builds request headers even when it reads only
                # the cache, and huggingface_hub 2.4 fetches a registry from huggingface.co for them)
                if not isinstance(try_to_load_from_cache(repo_id, name, revision=folder.name), str):
                    raise FileNotFoundError(f"{name} is not in the local hub cache")
                continue
            log.info("fetching %s of %s", name, repo_id)
            # the revision the snapshot resolved (its folder's name): every file from one commit
            hf_hub_download(repo_id, name, revision=folder.name)
    except (Cancelled, ModelLoadError):
        raise
    except Exception as exc:   # not on the hub, no network, not in the cache, a gated repository, ...
        if switch:
            raise ModelLoadError(f"could not load the model {repo_id} from the local hub cache, and {switch} is "
                                 f"set, so nothing was downloaded: {type(exc).__name__}: {exc}") from exc
        if offline:
            raise ModelLoadError(f"the local hub cache holds only part of the model {repo_id}, and downloading is "
                                 "off: set allowDownload (or pass --allow-download) to fetch the rest "
                                 f"({type(exc).__name__}: {exc})") from exc
        raise ModelLoadError(f"could not download the model {repo_id}: {type(exc).__name__}: {exc}") from exc
    return folder


def hub_weight_names(folder: Path) -> list[str]:
    """The safetensors files of a hub checkpoint whose small files are in `folder`: those its index names, else
    model.safetensors (the files transformers reads: weight_files)."""
    if (folder / "model.safetensors.index.json").is_file():
        return [path.name for path in weight_files(folder) if "/" not in path.relative_to(folder).as_posix()]
    return ["model.safetensors"]


def read_extra(folder: Path) -> dict:
    """The project's own notes on a checkpoint (diffusion_infill.json: layout, noise, context and canvas sizes)."""
    path = folder / "diffusion_infill.json"
    if not path.is_file():
        return {}
    try:
        extra = json.loads(path.read_text())
        if not isinstance(extra, dict):
            raise ValueError("it must hold a JSON object")
        for name, least in (("max_prompt_tokens", MIN_PROMPT_TOKENS), ("canvas_length", MIN_CANVAS)):
            if name in extra and not (isinstance(extra[name], int) and extra[name] >= least):
                raise ValueError(f"{name} must be a whole number from {least}")
        lengths = extra.get("canvas_lengths", [])
        if not (isinstance(lengths, list) and all(isinstance(n, int) and n >= MIN_CANVAS for n in lengths)):
            raise ValueError(f"canvas_lengths must be a list of whole numbers from {MIN_CANVAS}")
    except (OSError, UnicodeDecodeError, ValueError) as exc:   # json.JSONDecodeError is a ValueError
        raise ModelLoadError(f"{path} is not usable: {exc}") from exc
    return extra


MAX_SAFETENSORS_HEADER = 100_000_000   # safetensors' own limit on a header's size
SAFETENSORS_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def stored_weights(folder: Path) -> dict[str, dict] | None:
    """Each stored weight's safetensors header entry ({"dtype", "shape", ...}) by name, read without reading a
    tensor; None when a header cannot be read (transformers' own error then says what is wrong)."""
    weights = {}
    for path in weight_files(folder):
        try:
            with open(path, "rb") as file:
                size = int.from_bytes(file.read(8), "little")
                if not 0 < size <= MAX_SAFETENSORS_HEADER:
                    return None
                header = json.loads(file.read(size))
            weights.update((name, entry) for name, entry in header.items() if name != "__metadata__")
        except (OSError, ValueError, TypeError, AttributeError):
            return None
    return weights


def converted_weights(weights: dict[str, dict] | None, dtype: torch.dtype) -> int | None:
    """How many numbers of the checkpoint (its stored_weights) are stored in another dtype than `dtype`: loading
    copies those into memory, converted; the others stay mapped from the file. None when a header cannot be read."""
    stored_as = SAFETENSORS_DTYPES.get(dtype)
    try:
        return None if weights is None else sum(math.prod(entry["shape"]) for entry in weights.values()
                                                if entry["dtype"] != stored_as)
    except (KeyError, TypeError, AttributeError):
        return None


def check_config_fits_weights(folder: Path, weights: dict[str, dict] | None, model_class, source: str) -> None:
    """check_weight_shapes before loading: transformers builds a weight whose stored shape differs from the
    config's at the config's size, and fills it, before its loading info names it; a vocab_size or hidden_size
    edited upwards took gigabytes for a 27 MB checkpoint (or failed as "out of memory"). The model is built on the
    meta device (no memory) to compare the shapes of the weights both name (`weights`: the stored_weights)."""
    if not weights:
        return
    try:
        config = model_class.config_class.from_pretrained(folder, local_files_only=True)
        with torch.device("meta"):
            skeleton = model_class(config)
        expected = {name: tuple(tensor.shape) for name, tensor in skeleton.state_dict().items()}
        mismatched = [(name, tuple(entry["shape"]), expected[name]) for name, entry in weights.items()
                      if name in expected and tuple(entry["shape"]) != expected[name]]
    except Exception:   # a config transformers cannot read: from_pretrained says why
        return
    check_weight_shapes(mismatched, source)


def check_fits_in_memory(weights: dict[str, dict] | None, dtype: torch.dtype, source: str) -> None:
    """Weights stored in another dtype than the one asked for are converted into the machine's memory, whole,
    before the model moves to its device or is quantized. When they cannot fit, the kernel's out-of-memory killer
    ends the server with no word to the user; so that is refused here, before loading, counting those weights
    alone (the real peak is higher). `weights`: the checkpoint's stored_weights."""
    converted, available = converted_weights(weights, dtype), available_cpu_memory()
    if not converted or available is None:
        return
    needed = converted * dtype.itemsize
    if needed > available:
        name = str(dtype).removeprefix("torch.")
        raise ModelLoadError(
            f"{source}: {converted / 1e9:.2f}B weights converted to {name} take {needed / 1e9:.1f} GB while it loads, "
            f"and this machine has {available / 1e9:.1f} GB of memory available. Free memory, or choose a smaller "
            "model, or the dtype its weights are stored in (then they are read from the file as needed)")


# The text model: the decoder that denoises and the encoder that reads the prompt. The vision tower is never used.
TEXT_WEIGHTS = ("model.decoder.", "model.encoder.language_model.")


def check_weight_shapes(mismatched_keys, source: str) -> None:
    """A weight whose shape is not the one the config gives (hidden_size or vocab_size edited, the config of
    another model) would be left random: refused, naming the first such weight and both shapes."""
    mismatched = sorted(mismatched_keys)   # (name, the checkpoint's shape, the config's shape)
    if mismatched:
        name, stored, configured = mismatched[0]
        more = f" and {len(mismatched) - 1} more" if len(mismatched) > 1 else ""
        raise ModelLoadError(f"{source}: the checkpoint's {name} has shape {tuple(stored)} where its config.json "
                             f"asks for {tuple(configured)}{more}; the config and the weights do not belong together")


def check_finite_weights(model: torch.nn.Module, source: str, dtype: torch.dtype) -> None:
    """A weight holding NaN or infinity makes every fill fail (NaN logits): refused at load, where it is one
    message, instead of a model announced ready whose every answer is an error. The smallest and largest value
    of each weight, in its own dtype (a NaN or infinity anywhere shows in them; no copy of the weight, no
    overflow), and one host sync for them all. A quantized weight's were taken from its float values before it was
    quantized (QuantizedWeight.extremes)."""
    named = [(name, param) for name, param in model.named_parameters()
             if param.is_floating_point() and param.numel() and param.device.type != "meta"]
    quantized = [(name, module) for name, module in model.named_modules() if isinstance(module, QuantizedWeight)]
    if not named and not quantized:
        return
    with torch.no_grad():
        extremes = torch.stack([torch.stack(param.aminmax()).float() for _, param in named]
                               + [module.extremes for _, module in quantized])                     # (weights, 2)
        finite = torch.isfinite(extremes).all(dim=1).tolist()
    bad = [name for (name, _), ok in zip(named + quantized, finite) if not ok]
    if bad:
        stored = str(dtype).removeprefix("torch.")
        raise ModelLoadError(f"{source}: {len(bad)} weights hold NaN or infinite numbers in {stored} "
                             f"({shown_keys(bad)}): the checkpoint is damaged"
                             + ("" if dtype == torch.float32 else ", or its values overflow "
                                f"{stored}; try dtype float32"))


def check_text_weights_present(model: torch.nn.Module, missing_keys, source: str, unexpected_keys=()) -> None:
    """transformers fills weights a checkpoint lacks with random values, and drops weights its config has no
    place for, and only logs either: a config that names more layers than the checkpoint holds would load and
    write noise, one that names fewer would run part of the model. A missing matrix of the text model is refused,
    and so is a left-over weight of a text-model layer; a missing norm or scale is left to transformers' default
    (a checkpoint may rely on it), and other extra weights (a head this class does not use) to its log."""
    shapes = {name: tuple(param.shape) for name, param in model.named_parameters()}
    absent = sorted(key for key in missing_keys
                    if key.startswith(TEXT_WEIGHTS) and len(shapes.get(key, ())) >= 2)
    if absent:
        raise ModelLoadError(f"{source}: the checkpoint lacks {len(absent)} weight matrices its config asks for "
                             f"({shown_keys(absent)}); the config and the weights do not belong together")
    unused = sorted(key for key in unexpected_keys if key.startswith(TEXT_WEIGHTS) and ".layers." in key)
    if unused:
        raise ModelLoadError(f"{source}: the checkpoint holds {len(unused)} weights its config has no place for "
                             f"({shown_keys(unused)}); the config and the weights do not belong together")


def end_of_text_id(tokenizer, model_config, source: str) -> int:
    """The token that ends a middle: the tokenizer's <eos>, else the one the model's config names (the first, where
    it lists several, as the 26B-A4B's does). Every canvas row ends with it, so a checkpoint with neither is refused."""
    if tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id
    for config in (model_config, getattr(model_config, "text_config", None)):
        named = getattr(config, "eos_token_id", None)
        if isinstance(named, (list, tuple)):
            named = named[0] if named else None
        if named is not None:
            return int(named)
    raise ModelLoadError(f"{source}: the checkpoint names no end-of-text token (neither the tokenizer's eos_token "
                         "nor the config's eos_token_id), and a fill needs one to end the middle")


def shown_keys(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def memory_advice(quantize: str, device: torch.device | str, loading: bool = True) -> str:
    """Ways to run with less memory, from the weight format in use: a smaller one on a GPU, or once loaded; while
    loading on the CPU the float weights are all in memory before any is quantized, so quantizing only adds to the
    load's peak."""
    ways = []
    if torch.device(device).type != "cpu" or not loading:
        smaller = [name for name, bits in WEIGHT_FORMATS.items() if bits and bits < (WEIGHT_FORMATS[quantize] or 16)]
        ways += [f"quantize {' or '.join(smaller)}"] if smaller else []
    elif quantize != "none":
        ways.append("quantize none")
    ways += ["a smaller model", "a smaller dtype"]
    return ", ".join(ways[:-1]) + " or " + ways[-1]


def load(config: EngineConfig, cancel: Callable[[], bool] | None = None) -> LoadedModel:
    """The checkpoint `config` names, checked, on its device. `cancel` is asked between the files of a hub
    download (raising Cancelled)."""
    from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # stderr belongs to the user (and the editor's log), not to a progress bar

    if config.quantize not in WEIGHT_FORMATS:   # before anything is fetched or read
        raise ModelLoadError(f"unknown quantize '{config.quantize}' (use {', '.join(WEIGHT_FORMATS)})")
    source, local = resolve_source(config)
    # A hub model is fetched (or found in the hub cache) as a folder first, so that it gets the same checks and
    # reads the same diffusion_infill.json as a local one.
    folder = Path(source) if local else hub_snapshot(source, config.trust_remote_code, cancel, config.allow_download)
    check_local_folder(folder)
    device = pick_device(config.device)
    dtype = pick_dtype(config.dtype, device)
    weights = stored_weights(folder)   # (the safetensors headers, read once for both checks)
    check_fits_in_memory(weights, dtype, source)
    check_config_fits_weights(folder, weights, DiffusionGemmaForBlockDiffusion, source)
    if config.threads:   # (no more than the cores: the rest only wait for one another, InfillEngine notes it)
        torch.set_num_threads(min(config.threads, usable_cores()))
    hub_kwargs = {"local_files_only": True, "trust_remote_code": config.trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **hub_kwargs)
        # sdpa: the engine's masks are boolean 4D masks (engine/masks.py); flash attention could not read them.
        # Mismatched shapes come back in loading_info (refused below, by name): transformers' own error points
        # to a report in the log, which an editor's user never sees.
        model, loading_info = DiffusionGemmaForBlockDiffusion.from_pretrained(
            folder, dtype=dtype, attn_implementation="sdpa", output_loading_info=True, ignore_mismatched_sizes=True,
            **hub_kwargs)
    except Exception as exc:  # corrupt safetensors, mismatched shapes, out of memory, ...
        if where := out_of_memory(exc):
            raise ModelLoadError(f"out of {where} memory while loading {source}; try a smaller model or "
                                 f"dtype") from exc
        raise ModelLoadError(f"could not load the model from {source}: {type(exc).__name__}: {exc}") from exc
    check_weight_shapes(loading_info.get("mismatched_keys", ()), source)
    check_text_weights_present(model, loading_info.get("missing_keys", ()), source,
                               loading_info.get("unexpected_keys", ()))
    if device.type == "cpu" and not config.threads:
        pick_cpu_threads(model)   # before quantizing: quantized weights are buffers, which it does not count
    try:
        # Quantized on the device one tensor at a time, before the rest moves: the float model never has to fit.
        doing = f"quantizing {source} to {config.quantize} on {device}"
        quantized_weights = quantize_model(model, config.quantize, device)
        doing = f"moving {source} to {device}"
        model.to(device)
        where = None
    except (RuntimeError, MemoryError) as exc:
        where = out_of_memory(exc)
        if where is None:
            raise
    if where is not None:
        # Drop the weights (some may be on the GPU already) before the cache is emptied, outside the handler: its
        # traceback would keep this frame, and so the model, alive.
        del model
        release_cached_gpu_memory()
        raise ModelLoadError(f"out of {where} memory {doing}; try {memory_advice(config.quantize, device)}")
    model.eval()
    check_finite_weights(model, source, dtype)
    extra = read_extra(folder)
    vocab_size = model.config.text_config.vocab_size
    try:
        probe_ids = tokenizer(TOKENIZER_PROBE, add_special_tokens=False)["input_ids"]
    except Exception as exc:   # e.g. tokenizer.json without its tokenizer_config.json: no unknown token named
        raise ModelLoadError(f"{source}: the tokenizer cannot encode code ({type(exc).__name__}: {exc}); is its "
                             f"tokenizer_config.json missing or from another tokenizer?") from exc
    if max(probe_ids, default=0) >= vocab_size:
        # Token ids past the embedding table fail every fill (on CUDA, a device assert that breaks the context).
        # A probe, not len(tokenizer): a real checkpoint may list a few more tokens than its table rows.
        raise ModelLoadError(f"{source}: the tokenizer writes code with ids beyond the model's {vocab_size} "
                             f"tokens; they do not belong together")
    configured = getattr(model.config, "canvas_length", None)
    canvas_length = int(extra.get("canvas_length", 256 if configured is None else configured))   # 0 is refused
    if canvas_length < MIN_CANVAS:
        raise ModelLoadError(f"{source}: a canvas of {canvas_length} tokens is too small (at least {MIN_CANVAS})")
    # Our checkpoints say which canvas lengths they read well; one that names only canvas_length knows no other.
    trained = extra.get("canvas_lengths", [canvas_length] if "canvas_length" in extra else [])
    return LoadedModel(
        model=model, tokenizer=tokenizer, source=source, device=device, dtype=dtype,
        max_prompt_tokens=int(extra.get("max_prompt_tokens", 4096)),
        canvas_length=canvas_length,
        canvas_lengths=tuple(sorted(n for n in set(trained) if n <= canvas_length)),
        fim_order="psm" if str(extra.get("layout", "")).startswith("psm") else "spm",
        noise="masked" if extra.get("noise") == "masked" else "uniform",
        quantize=config.quantize, quantized_weights=quantized_weights,
    )
