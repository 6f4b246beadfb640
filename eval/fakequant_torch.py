"""Cross-check of detq's W8A8 RTN rows by an independent fake quantization in torch (dev time only).

detq's `quantize --method rtn` + `eval --quantized` and this script implement the same recipe
separately, so agreement says a W8A8 loss belongs to the model, not to detq:

  * BatchNorm (FrozenBatchNorm2d after a conv) folded into the conv, as detq does by default;
  * every conv and linear layer quantized; the first conv at W8A8, the others at --wbits/--abits;
  * weights: affine min/max ranges widened to include 0 (arcq.md §1), per tensor or per output
    channel; linear layers take arcq.md §2's grid instead (both ends shrunk in 10 steps of 0.5 %,
    the lowest Σ|w − ŵ|^2.4 per range);
  * activations: affine per-tensor at the input of every conv / linear, round half to even;
    `static`: the mean over the calibration images of each image's min and max (over all calls of
    the layer in that forward, as detq without --per-level-ranges); `dynamic`: each input's own
    min/max (detq's --act-ranges dynamic);
  * ablations: weights-only (activations float), acts-only (weights float) and noise:SEED (float
    activations; float weights plus seeded uniform noise of one grid step: what a perturbation of
    the size of a rounding error costs, which tells a quantizer's loss from the model's sensitivity);
  * calibration on the 32 images of datasets/shapes/calib/images, evaluation on datasets/shapes/val
    with pycocotools, one image per forward.

Writes eval/reports/fakequant_torch.json (merged by model and setting) and prints AP per row.

Usage (needs the reference Python with torch, torchvision and pycocotools):
    .venv-ref/bin/python eval/fakequant_torch.py --models retinanet_mobilenet_v2_shapes \
        [--settings per-channel/static per-channel/dynamic per-tensor/static] [--threads 1]
"""
import argparse
import glob
import json
import os
import re
import sys
import time

import torch
import torch.nn as nn
from torchvision.ops.misc import FrozenBatchNorm2d

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "detectors", "tools"))
sys.path.insert(0, os.path.join(REPO, "eval"))
import eval_shapes_torch  # noqa: E402
from quantization_report import file_sha256  # noqa: E402

OUT_JSON = os.path.join(REPO, "eval", "reports", "fakequant_torch.json")
CALIB = os.path.join(REPO, "datasets", "shapes", "calib", "images")
LINEAR_FACTORS = [1.0 - 0.005 * i for i in range(10)]


def fold_batch_norms(model):
    """Folds every FrozenBatchNorm2d that directly follows a Conv2d in a Sequential; returns the count."""
    folded = 0
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        keys = list(module._modules)
        for a, b in zip(keys, keys[1:]):
            conv, norm = module._modules[a], module._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, FrozenBatchNorm2d):
                g = norm.weight / torch.sqrt(norm.running_var + norm.eps)
                bias = conv.bias.data if conv.bias is not None else torch.zeros_like(norm.bias)
                conv.weight.data = conv.weight.data * g.view(-1, 1, 1, 1)
                conv.bias = nn.Parameter(norm.bias + (bias - norm.running_mean) * g)
                module._modules[b] = nn.Identity()
                folded += 1
    left = sum(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    if left:
        raise SystemExit(f"{left} FrozenBatchNorm2d not directly after a conv: this script cannot fold them")
    return folded


def fake_quant(x, low, high, bits):
    """Affine quantize-dequantize of x for the range [low, high] widened to include 0 (arcq.md §1)."""
    low, high = torch.clamp(low, max=0.0), torch.clamp(high, min=0.0)
    steps = 2 ** bits - 1
    scale = torch.clamp((high - low) / steps, min=1e-5)
    zero = torch.clamp(torch.round(-low / scale), 0, steps)
    return (torch.clamp(torch.round(x / scale) + zero, 0, steps) - zero) * scale


def quantize_weight(weight, bits, per_channel, linear):
    rows = weight.reshape(weight.shape[0], -1) if per_channel else weight.reshape(1, -1)
    low, high = rows.min(1, keepdim=True).values, rows.max(1, keepdim=True).values
    if linear:  # arcq.md §2: the 10-point grid, lowest Σ|w − ŵ|^2.4 per range
        best_error, best = None, None
        for f in LINEAR_FACTORS:
            error = (rows - fake_quant(rows, low * f, high * f, bits)).abs().pow(2.4).sum(1, keepdim=True)
            if best is None:
                best_error, best = error, torch.full_like(error, f)
            else:
                better = error < best_error
                best_error, best = torch.where(better, error, best_error), torch.where(better, torch.full_like(error, f), best)
        low, high = low * best, high * best
    return fake_quant(rows, low, high, bits).reshape(weight.shape)


def add_step_noise(weight, bits, per_channel):
    """The weight plus uniform noise in ±step/2 of its min/max grid (the size of a rounding error)."""
    rows = weight.reshape(weight.shape[0], -1) if per_channel else weight.reshape(1, -1)
    low, high = rows.min(1, keepdim=True).values.clamp(max=0), rows.max(1, keepdim=True).values.clamp(min=0)
    step = ((high - low) / (2 ** bits - 1)).clamp(min=1e-5)
    return (rows + (torch.rand_like(rows) - 0.5) * step).reshape(weight.shape)


class FakeQuant:
    """Quantizes the weights of every conv / linear once and their inputs on every call."""

    def __init__(self, model, wbits, abits, per_channel, mode):
        """`mode`: static | dynamic (weights and activations), weights-only (activations float), acts-only
        (static activation ranges, float weights) or noise:SEED (float activations; the float weights plus
        uniform noise of one step of the weight grid, seeded: how much a perturbation of 8-bit size costs)."""
        self.layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        self.first = self.layers[0]
        self.abits, self.mode = abits, mode
        self.ranges, self.collect = {}, None
        if mode.startswith("noise:"):
            torch.manual_seed(int(mode.split(":")[1]))
        for layer in self.layers:
            bits = 8 if layer is self.first or isinstance(layer, nn.Linear) else wbits
            if mode.startswith("noise:"):
                layer.weight.data = add_step_noise(layer.weight.data, bits, per_channel)
            elif mode != "acts-only":
                layer.weight.data = quantize_weight(layer.weight.data, bits, per_channel, isinstance(layer, nn.Linear))
            if mode in ("static", "dynamic", "acts-only"):
                layer.register_forward_pre_hook(self.hook)

    def hook(self, layer, inputs):
        x = inputs[0]
        if self.collect is not None:
            low, high = self.collect.get(layer, (x.min(), x.max()))
            self.collect[layer] = (torch.minimum(low, x.min()), torch.maximum(high, x.max()))
            return None
        bits = 8 if layer is self.first or isinstance(layer, nn.Linear) else self.abits
        low, high = (x.min(), x.max()) if self.mode == "dynamic" else self.ranges[layer]
        return (fake_quant(x, low, high, bits),) + tuple(inputs[1:])

    @torch.no_grad()
    def calibrate(self, model, paths):
        per_image = {}
        for path in paths:
            self.collect = {}
            model([eval_shapes_torch.read_image(path)])
            for layer, r in self.collect.items():
                per_image.setdefault(layer, []).append(r)
        self.collect = None
        missing = [layer for layer in self.layers if layer not in per_image]
        if missing:
            raise SystemExit(f"{len(missing)} layers never ran during calibration")
        self.ranges = {layer: (torch.stack([r[0] for r in v]).mean(), torch.stack([r[1] for r in v]).mean())
                       for layer, v in per_image.items()}


def run(name, setting, wbits, abits, split_dir=eval_shapes_torch.VAL_DIR):
    """AP stats of `name` under `setting` ('fp32' or 'GRANULARITY/RANGES') on the images of `split_dir`."""
    model, config = eval_shapes_torch.load_shipped(name)
    if setting != "fp32":
        granularity, mode = setting.split("/")
        fold_batch_norms(model)
        quant = FakeQuant(model, wbits, abits, granularity == "per-channel", mode)
        if mode in ("static", "acts-only"):
            quant.calibrate(model, sorted(glob.glob(os.path.join(CALIB, "*.jpg"))))
    # one image per forward: dynamic ranges are then per image, as in detq
    return eval_shapes_torch.evaluate_model(model, config, val_dir=split_dir, quiet=True, batch_size=1)[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", required=True, help="comma-separated shipped detector names")
    parser.add_argument("--settings", nargs="+", default=["per-channel/static", "per-channel/dynamic", "per-tensor/static"],
                        help="GRANULARITY/MODE: per-tensor|per-channel / static|dynamic|weights-only|acts-only|noise:SEED")
    parser.add_argument("--wbits", type=int, default=8)
    parser.add_argument("--abits", type=int, default=8)
    parser.add_argument("--split", choices=["val", "heldout"], default="val",
                        help="evaluation images: datasets/shapes/val (200) or heldout (2000, `generate.py --split "
                             "heldout`); heldout rows are keyed '... (heldout)'")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; the committed figures are from 1 (another count changes the float "
                             "summation order, and RetinaNet's W8A8 AP by up to 0.1 point)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for s in args.settings:
        g, _, m = s.partition("/")
        if g not in ("per-tensor", "per-channel") or not (
                m in ("static", "dynamic", "weights-only", "acts-only") or re.fullmatch(r"noise:\d+", m)):
            parser.error(f"--settings {s!r}: expected per-tensor|per-channel / static|dynamic|weights-only|acts-only|noise:SEED")
    report = {}
    if os.path.exists(OUT_JSON):
        with open(OUT_JSON) as f:
            report = json.load(f)
    for name in args.models.split(","):
        weights = os.path.join(REPO, "detectors", name, "weights.safetensors")
        digest = file_sha256(weights)
        if report.get(name, {}).get("weights_sha256") != digest:
            report[name] = {"weights_sha256": digest}  # rows of other weights do not carry over
        entry = report[name]
        entry.setdefault("rows", {})
        for setting in ["fp32"] + args.settings:
            start = time.time()
            split_dir = os.path.join(REPO, "datasets", "shapes", args.split)
            if not os.path.exists(os.path.join(split_dir, "instances.json")):
                raise SystemExit(f"{split_dir} has no instances.json: python datasets/shapes/generate.py --split {args.split}")
            stats = run(name, setting, args.wbits, args.abits, split_dir)
            key = setting if setting == "fp32" else f"w{args.wbits}a{args.abits} rtn {setting}"
            if args.split != "val":
                key += f" ({args.split})"
            entry["rows"][key] = {"AP": stats[0], "AP50": stats[1], "AP75": stats[2], "seconds": round(time.time() - start, 1)}
            print(f"{name} {key}: AP {stats[0]:.4f} AP50 {stats[1]:.4f} AP75 {stats[2]:.4f}", flush=True)
        entry["made_by"] = "eval/fakequant_torch.py (torch %s)" % torch.__version__
    tmp = OUT_JSON + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, OUT_JSON)
    print("wrote", os.path.relpath(OUT_JSON, REPO))


if __name__ == "__main__":
    main()
