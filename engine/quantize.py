"""Weight-only quantization, so that a large checkpoint fits a smaller GPU.

As in gpt-fast: weights are stored as small integers with float scales and turned back into the activations' dtype
inside each forward; activations, norms, the router and the (tied) embedding stay as loaded. Two formats:

- int8: one scale per output channel (symmetric, -127..127). For a linear layer the scale is applied to the output,
  which is smaller than the weight (except in float16, whose range the unscaled product would exceed).
- int4: one scale per group of INT4_GROUP input weights (symmetric, -8..7), two weights packed per byte. A tensor whose
  input width is not a multiple of the group falls back to int8.

For google/diffusiongemma-26B-A4B-it about 90% of the weights are the routed experts' stacks; int4 stores them in
about a quarter of their bf16 bytes (bench/RESULTS.md has the counts). The encoder and the decoder share their
weights, so each shared tensor is quantized once and both layers read the same integers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .types import QUANTIZE_FORMATS

WEIGHT_FORMATS = dict(zip(QUANTIZE_FORMATS, (None, 8, 4)))   # name -> bits
INT4_GROUP = 64
EXPERTS_PER_CHUNK = 8
TEXT_MODULES = ("model.decoder.", "model.encoder.language_model.")   # the vision tower is never run: left alone
KEEP = ("router.proj",)   # small (a row per expert), and they pick the experts: rounding them would move the routing


def quantize_weight(weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(integers, scales) for a weight of shape (..., out, in), computed on the weight's own device.

    int8: integers (..., out, in) int8, scales (..., out, 1). int4: integers (..., out, in // 2) uint8 (the even
    input column in the low nibble), scales (..., out, in // INT4_GROUP, 1)."""
    values = weight.detach().float()
    if bits == 8:
        scales = stored_scales(values.abs().amax(dim=-1, keepdim=True) / 127, weight.dtype, 127)  # (..., out, 1)
        integers = torch.round(values / scales.float()).clamp(-127, 127).to(torch.int8)
        return integers, scales
    groups = values.unflatten(-1, (-1, INT4_GROUP))                                        # (..., out, in/g, g)
    scales = stored_scales(groups.abs().amax(dim=-1, keepdim=True) / 7, weight.dtype, 7)    # (..., out, in/g, 1)
    nibbles = (torch.round(groups / scales.float()).clamp(-8, 7) + 8).to(torch.uint8).flatten(-2)  # (..., out, in)
    return nibbles[..., 0::2] | (nibbles[..., 1::2] << 4), scales


def stored_scales(scales: torch.Tensor, dtype: torch.dtype, largest_integer: int) -> torch.Tensor:
    """The scales as they are kept, in the weight's dtype, rounded up: the integers are then computed against the
    kept values (against float32 ones, bfloat16's rounding of the scale moved a weight by up to a whole step), and
    none is cut at the largest integer. Never below the dtype's smallest step: in float16 a small row's scale fell
    to zero or far off among the subnormals. Never so far up that the largest integer times the scale overflows
    (float16 weights near 65504): there it is rounded down, and the largest weights are cut by less than a step."""
    info = torch.finfo(dtype)
    kept = scales.clamp(min=info.tiny * info.eps).to(dtype)
    kept = torch.where(kept.float() < scales, torch.nextafter(kept, torch.full_like(kept, float("inf"))), kept)
    overflows = kept.float() * largest_integer > info.max
    return torch.where(overflows, torch.nextafter(kept, torch.zeros_like(kept)), kept)


def dequantize_weight(integers: torch.Tensor, scales: torch.Tensor, bits: int, dtype: torch.dtype) -> torch.Tensor:
    """The weight back as `dtype`, shape (..., out, in)."""
    if bits == 8:
        return integers.to(dtype) * scales.to(dtype)
    nibbles = torch.stack((integers & 15, integers >> 4), dim=-1).flatten(-2)             # (..., out, in)
    groups = (nibbles.to(dtype) - 8).unflatten(-1, (-1, INT4_GROUP))                       # (..., out, in/g, g)
    return (groups * scales.to(dtype)).flatten(-2)


def bits_for(weight: torch.Tensor, bits: int) -> int:
    return 8 if bits == 4 and weight.shape[-1] % INT4_GROUP else bits


class QuantizedWeight(nn.Module):
    """One quantized tensor: its integers and scales as buffers (they move with the model, are never trained)."""

    def __init__(self, weight: torch.Tensor, bits: int):
        super().__init__()
        self.bits = bits_for(weight, bits)
        # An expert stack a few experts at a time: the float temporaries stay small (a 26B-A4B layer's gate_up
        # stack is 1 GB as bf16, and quantizing it whole took several times that in float32).
        parts = [quantize_weight(chunk, self.bits) for chunk in weight.split(EXPERTS_PER_CHUNK)] \
            if weight.dim() == 3 else [quantize_weight(weight, self.bits)]
        integers, scales = (torch.cat(pieces) for pieces in zip(*parts))
        self.register_buffer("integers", integers, persistent=False)
        self.register_buffer("scales", scales, persistent=False)
        # The float weight's smallest and largest value, for the load's check of NaN and infinity: quantized, an
        # infinity becomes the largest integer and hides (no host sync here: the check reads all of them at once).
        self.extremes = torch.stack(weight.aminmax()).float()                                  # (2,)

    def forward(self, dtype: torch.dtype) -> torch.Tensor:
        return dequantize_weight(self.integers, self.scales, self.bits, dtype)


class QuantizedLinear(nn.Module):
    """An nn.Linear whose weight is a QuantizedWeight (shared when the original weight was shared)."""

    def __init__(self, linear: nn.Linear, weight: QuantizedWeight):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight_q = weight
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_q
        # A per-row scale commutes with the matmul: scale the output, not the whole matrix. Not in float16: the
        # product before scaling is the output divided by a scale of ~1e-3, which overflows float16's range.
        if weight.bits == 8 and x.dtype != torch.float16:
            out = F.linear(x, weight.integers.to(x.dtype)) * weight.scales.to(x.dtype).squeeze(-1)
            return out if self.bias is None else out + self.bias
        return F.linear(x, weight(x.dtype), self.bias)


class _ExpertsWithWeights:
    """transformers' experts functions (grouped_mm, batched_mm, eager) take the experts module as `self` and read
    its two weight stacks from it: this stands in for the module, with the stacks given, and lends it the rest."""

    def __init__(self, experts: nn.Module, gate_up_proj: torch.Tensor, down_proj: torch.Tensor):
        self._experts = experts
        self.gate_up_proj = gate_up_proj    # (experts, 2 * expert_hidden, hidden)
        self.down_proj = down_proj          # (experts, hidden, expert_hidden)

    def __getattr__(self, name):
        return getattr(self._experts, name)


class QuantizedExperts(nn.Module):
    """transformers' routed experts with both weight stacks quantized. Each call dequantizes the stacks to the
    activations' dtype and runs transformers' own experts function, so routing and grouping stay theirs."""

    def __init__(self, experts: nn.Module, gate_up: QuantizedWeight, down: QuantizedWeight):
        super().__init__()
        del experts.gate_up_proj, experts.down_proj     # the float stacks go; the module keeps its settings
        self.experts = experts
        self.gate_up, self.down = gate_up, down

    def forward(self, hidden_states: torch.Tensor, top_k_index: torch.Tensor,
                top_k_weights: torch.Tensor) -> torch.Tensor:
        dtype = hidden_states.dtype
        view = _ExpertsWithWeights(self.experts, self.gate_up(dtype), self.down(dtype))
        return type(self.experts).forward(view, hidden_states, top_k_index, top_k_weights)


def _is_experts(module: nn.Module) -> bool:
    weights = [getattr(module, name, None) for name in ("gate_up_proj", "down_proj")]
    return all(isinstance(w, nn.Parameter) and w.dim() == 3 for w in weights)


def quantize_model(model: nn.Module, weights: str, device: torch.device) -> int:
    """Replace the text model's linear layers and expert stacks by quantized ones, computed on `device` one tensor
    at a time (so a GPU needs room for the quantized model, one float tensor and the float32 temporaries of a few
    experts, never the float model).
    Returns the number of weights quantized (each shared tensor counted once)."""
    bits = WEIGHT_FORMATS[weights]
    if bits is None:
        return 0
    done: dict[int, QuantizedWeight] = {}     # id of the original Parameter -> its quantized form (shared weights)

    def quantized(param: nn.Parameter) -> QuantizedWeight:
        if id(param) not in done:
            done[id(param)] = QuantizedWeight(param.detach().to(device), bits)
        return done[id(param)]

    targets = [(name, module) for name, module in model.named_modules(remove_duplicate=False)
               if name.startswith(TEXT_MODULES) and not name.endswith(KEEP)
               and (type(module) is nn.Linear or _is_experts(module))]
    originals = []                            # keeps every Parameter alive until the end, so no id is reused
    for name, module in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        if _is_experts(module):
            originals += [module.gate_up_proj, module.down_proj]
            new = QuantizedExperts(module, quantized(module.gate_up_proj), quantized(module.down_proj))
        else:
            originals.append(module.weight)
            new = QuantizedLinear(module, quantized(module.weight))
        setattr(parent, attr, new)
    count = sum(weight.integers.numel() * (2 if weight.bits == 4 else 1) for weight in done.values())
    del originals
    return count


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers, each tensor counted once (shared ones too)."""
    seen, total = set(), 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total
