"""Goldens for executing detq quantized files: a second, independent executor in torch (dev time only).

For each case below, `detq quantize` makes a quantized file of a shipped detector; this script
reads the file (format detq-quantized/1, see SPEC.md) and runs it in torch with the shipped model's
torchvision code around the quantized layers:

  * every quantized conv / linear computes, in Float64 on integers (exact), what arcq.md §1/§3 say:
    the input's centred integers X_c (and remainder codes D_a for a layer that compensates
    activations) from the static range of this call (call k of a forward uses range k mod count),
    A = X_c ⊛ W_c with W_c = weight_q − weight_zero_point, the compensation
    C = roundDivHalfEven(Q_a·(X_c ⊛ D_w) + Q_w·(D_a ⊛ W_c), Q_a·Q_w) with the terms the recipe
    switches on, then s_a·s_w·(A + C) (Float64, then Float32) + the file's bias;
  * the quantizer of a range: Float32 arithmetic as arcq.md §1 (range widened to include 0,
    s = max((u − l)/Q, 1e-5), z = rnd(−l/s), round half to even);
  * batch norms after a conv become identities (their factors are folded into the file's codes);
  * everything else — the transform, anchors, box decoding, NMS, RoI align — is torchvision's,
    one image per forward.

It writes Tests/DetQKitTests/Fixtures/quantized_goldens.json: per case the quantize arguments, the
file's recipe (its metadata), static activation ranges and SHA-256, and torch's detections on the
first validation images (the best 25 of each). The Swift test (QuantizedGoldenTests) quantizes with
the recipe's options, checks it made the same layers and choices and the same ranges up to float
noise, puts the golden's exact ranges in (a range one float step away moves a rounding, and a
two-stage detector's proposals can carry that into scores 0.03 apart), executes the file in both of
detq's modes and matches these detections. Every case is free of discrete choices float noise could
tip (no clipping search; all or no layers compensated), so the codes follow from the weights alone. Regenerate after a change to the shipped weights or to how detq
quantizes (calibration, ranges, codes):

    swift build -c release && .venv-ref/bin/python eval/quantized_goldens_torch.py
"""
import argparse
import json
import os
import subprocess
import sys
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "detectors", "tools"))
sys.path.insert(0, os.path.join(REPO, "eval"))
import eval_shapes_torch  # noqa: E402
import safetensors_io  # noqa: E402
from fakequant_torch import fold_batch_norms  # noqa: E402
from quantization_report import file_sha256, write_atomic  # noqa: E402

OUT_JSON = os.path.join(REPO, "Tests", "DetQKitTests", "Fixtures", "quantized_goldens.json")
WORK = os.path.join(REPO, "out", "quantized-goldens")
IMAGES = 3
KEEP = 25

# Cases with no discrete choice that float noise could tip (no clipping search, every layer below
# 8 bits compensated): with the same ranges, another machine makes the same codes.
CASES = [
    {"name": "fasterrcnn_w8a8_rtn_per-channel", "model": "fasterrcnn_mobilenet_v2_shapes",
     "arguments": ["--method", "rtn", "--wbits", "8", "--abits", "8", "--granularity", "per-channel",
                   "--calib-count", "4"]},
    {"name": "fcos_w4a4_arcq_per-channel_per-level", "model": "fcos_mobilenet_v2_shapes",
     "arguments": ["--method", "arcq", "--wbits", "4", "--abits", "4", "--granularity", "per-channel",
                   "--compensation", "all", "--clip-grid", "1", "--per-level-ranges", "--calib-count", "4"]},
    {"name": "retinanet_w4a8_arcq_per-tensor", "model": "retinanet_mobilenet_v2_shapes",
     "arguments": ["--method", "arcq", "--wbits", "4", "--abits", "8", "--granularity", "per-tensor",
                   "--compensation", "all", "--clip-grid", "1", "--calib-count", "4"]},
    {"name": "ssdlite_w6a6_arcq_per-tensor_clamped", "model": "ssdlite_mobilenet_v2_shapes",
     "arguments": ["--method", "arcq", "--wbits", "6", "--abits", "6", "--granularity", "per-tensor",
                   "--compensation", "all", "--clip-grid", "1", "--remainder-mode", "clamped", "--calib-count", "4"]},
]


def f32(value):
    return torch.tensor(value, dtype=torch.float32)


def round_div_half_even(numerator, denominator):
    """Integer numerator / positive integer denominator, rounded half to even (exact in Float64 here:
    every |quotient| < 2^30 and a non-half quotient lies at least 1/(2·denominator) from a half)."""
    return torch.round(numerator / denominator)


class QuantizedLayer:
    """One quantized conv / linear of the file, executed on the centred integers."""

    def __init__(self, module, entry, tensors):
        path = entry["path"]
        self.module, self.entry, self.calls = module, entry, 0
        if entry["activation_mode"] != "static":
            raise SystemExit(f"{path}: only static activation ranges are executed here")
        zero = tensors[path + ".weight_zero_point"].to(torch.float64)
        codes = tensors[path + ".weight_q"].to(torch.float64)
        self.weight = codes - zero.view(-1, *([1] * (codes.dim() - 1)))
        self.weight_scale = tensors[path + ".weight_scale"].to(torch.float32)
        self.remainder = tensors.get(path + ".weight_remainder")
        if self.remainder is not None:
            self.remainder = self.remainder.to(torch.float64)
        self.ranges = tensors[path + ".input_range"].to(torch.float32)
        self.bias = tensors.get(path + ".bias")
        self.qw = 2 ** entry["weight_bits"] - 1
        self.qa = 2 ** entry["activation_bits"] - 1
        self.unclamped = entry["remainder_mode"] == "unclamped"

    def quantize_input(self, x):
        low, high = self.ranges[self.calls % self.ranges.shape[0]]
        self.calls += 1
        lower, upper = torch.clamp(low, max=0.0), torch.clamp(high, min=0.0)
        steps = f32(float(self.qa))
        scale = torch.clamp((upper - lower) / steps, min=1e-5)
        zero = torch.clamp(torch.round(-lower / scale), 0.0, steps)
        quotient = x / scale
        rounded = torch.round(quotient)
        centred = torch.clamp(rounded + zero, f32(0.0), steps) - zero
        if self.unclamped:
            remainder = torch.round(steps * (quotient - rounded))
        else:
            bound = float(2 ** (self.entry["activation_bits"] - 1))
            remainder = torch.clamp(torch.round(steps * (quotient - centred)), -bound, bound)
        return scale, centred.to(torch.float64), remainder.to(torch.float64)

    def __call__(self, x):
        scale, centred, remainder = self.quantize_input(x)
        module = self.module
        if isinstance(module, nn.Conv2d):
            def op(a, w):
                return F.conv2d(a, w, None, module.stride, module.padding, module.dilation, module.groups)
            shape = (1, -1, 1, 1)
        else:
            def op(a, w):
                return F.linear(a, w)
            shape = (1, -1)
        total = op(centred, self.weight)
        weight_term = self.entry["compensates_weights"] and self.remainder is not None
        activation_term = self.entry["compensates_activations"]
        if weight_term or activation_term:
            numerator = torch.zeros_like(total)
            if weight_term:
                numerator += self.qa * op(centred, self.remainder)
            if activation_term:
                numerator += self.qw * op(remainder, self.weight)
            total = total + round_div_half_even(numerator, self.qa * self.qw)
        factor = scale.to(torch.float64) * self.weight_scale.to(torch.float64)
        out = (factor.view(shape) * total).to(torch.float32)
        if self.bias is not None:
            out = out + self.bias.view(shape)
        return out


def install(model, path):
    """Replaces the forward of every quantized layer in `model` by the file's; returns the file's recipe
    and the installed layers."""
    tensors, metadata = safetensors_io.load(path)
    if metadata.get("format") != "detq-quantized/1":
        raise SystemExit(f"{path}: not a detq-quantized/1 file")
    recipe = json.loads(metadata["recipe"])
    fold_batch_norms(model)
    layers = []
    for entry in recipe["layers"]:
        module = model.get_submodule(entry["path"])
        layer = QuantizedLayer(module, entry, tensors)
        module.forward = types.MethodType(lambda self, x, layer=layer: layer(x), module)
        layers.append(layer)
    quantized = {id(layer.module) for layer in layers}
    left = [name for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in quantized]
    if left:
        raise SystemExit(f"{path}: layers not in the file run in float here: {left[:5]}")

    def reset(_module, _inputs):
        for layer in layers:
            layer.calls = 0
    model.register_forward_pre_hook(reset)
    return recipe, layers


def compact_json(golden):
    """JSON with a recipe layer or a detection per line, readable in a diff."""
    def lines(value, indent):
        pad = " " * indent
        if isinstance(value, dict) and any(isinstance(v, (dict, list)) and v and not _flat(v) for v in value.values()):
            items = [f"{pad} {json.dumps(k)}: {lines(v, indent + 1).lstrip()}" for k, v in value.items()]
            return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(value, list) and value and not _flat(value):
            return pad + "[\n" + ",\n".join(lines(v, indent + 1) for v in value) + "\n" + pad + "]"
        return pad + json.dumps(value)
    return lines(golden, 0) + "\n"


def _flat(value):
    """A list or dict of scalars or of small flat dicts (a detection, a recipe layer): one line."""
    items = value.values() if isinstance(value, dict) else value
    return all(not isinstance(v, (dict, list)) or (isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v))
               for v in items)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detq", default=os.path.join(REPO, ".build", "release", "detq"))
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    os.makedirs(WORK, exist_ok=True)
    golden = {"format": "detq-quantized-goldens/1", "made_by": "eval/quantized_goldens_torch.py (torch %s)" % torch.__version__,
              "cases": []}
    if os.path.exists(OUT_JSON):
        with open(OUT_JSON) as f:
            golden["cases"] = json.load(f).get("cases", [])
    wanted = args.cases.split(",") if args.cases else [c["name"] for c in CASES]
    with open(os.path.join(eval_shapes_torch.VAL_DIR, "instances.json")) as f:
        images = json.load(f)["images"][:IMAGES]
    paths = [os.path.join(eval_shapes_torch.VAL_DIR, "images", im["file_name"]) for im in images]
    for case in CASES:
        if case["name"] not in wanted:
            continue
        model_name = case["model"]
        out = os.path.join(WORK, case["name"] + ".safetensors")
        command = [args.detq, "quantize", "--model", model_name,
                   "--weights", f"detectors/{model_name}/weights.safetensors",
                   "--calib-images", "datasets/shapes/calib/images", "--quiet", "--out", out] + case["arguments"]
        subprocess.run(command, cwd=REPO, check=True)
        model, _ = eval_shapes_torch.load_shipped(model_name)
        recipe, layers = install(model, out)
        outputs = eval_shapes_torch.detect(model, paths, batch_size=1)
        entries = []
        for path, found in zip(paths, outputs):
            detections = eval_shapes_torch.detection_dicts(found)
            # the best KEEP (torchvision orders by score); the count is of all of them
            entries.append({"file": os.path.relpath(path, REPO), "count": len(detections), "detections": detections[:KEEP]})
        ranges = [{"path": layer.entry["path"], "ranges": layer.ranges.tolist()} for layer in layers]
        entry = {"name": case["name"], "model": model_name, "arguments": case["arguments"],
                 "quantized_sha256": file_sha256(out), "recipe": recipe, "input_ranges": ranges, "images": entries}
        golden["cases"] = [c for c in golden["cases"] if c["name"] != case["name"]] + [entry]
        print("%s: %d layers (%d compensated), %s detections" % (
            case["name"], len(recipe["layers"]), len(recipe["compensated_layers"]), [len(e["detections"]) for e in entries]),
            flush=True)
    order = [c["name"] for c in CASES]
    golden["cases"].sort(key=lambda c: order.index(c["name"]) if c["name"] in order else len(order))
    write_atomic(OUT_JSON, compact_json(golden))
    print("wrote", os.path.relpath(OUT_JSON, REPO))


if __name__ == "__main__":
    main()
