"""Runs `detq sensitivity` on every shipped detector and writes eval/reports/sensitivity.md.

For each detectors/*_shapes model with weights: the part × bit-width matrix (ARCQ and RTN,
per-channel weights, W8A8 and W4A4), the per-layer ranking at W4A4 (RTN: the method whose
single-layer damage is large enough to rank) with the proxy's rank correlation, and the mixed-precision
suggestion under a 1 AP budget. Each model's sensitivity.json/.md/.svg are copied to
eval/reports/sensitivity/; the summary compares head and backbone sensitivity across the families.

Standard library only; needs the built detq (`swift build -c release`).
Usage: python3 eval/sensitivity_report.py [--models a,b] [--limit N] [--detq PATH]
A killed run resumes (detq journals every evaluation in out/sensitivity/<model>/).
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

from quantization_report import file_sha256  # eval/ is sys.path[0] when this runs as a script

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORTS = os.path.join(REPO, "eval", "reports")


# The parts without `all` (the whole model is in eval/reports/quantization.md): the coarse parts and the
# head's branches.
PARTS = {
    "fcos": "backbone,neck,head,head.classification_head,head.regression_head",
    "retinanet": "backbone,neck,head,head.classification_head,head.regression_head",
    "ssdlite": "backbone,neck,head,head.classification_head,head.regression_head",
    "fasterrcnn": "backbone,neck,head,rpn,roi_heads",
}


def shipped_models():
    names = []
    for folder in sorted(glob.glob(os.path.join(REPO, "detectors", "*_shapes"))):
        if os.path.exists(os.path.join(folder, "weights.safetensors")) and os.path.exists(os.path.join(folder, "config.json")):
            names.append(os.path.basename(folder))
    return names


def command(args, model):
    return [
        args.detq, "sensitivity", "--model", model,
        "--weights", f"detectors/{model}/weights.safetensors",
        "--calib-images", "datasets/shapes/calib/images", "--calib-count", "32",
        "--images", "datasets/shapes/val/images", "--annotations", "datasets/shapes/val/instances.json",
        "--limit", str(args.limit),
        "--bits", "8/8,4/4", "--methods", args.methods, "--granularity", "per-channel",
        "--per-layer", "--layer-bits", "4/4", "--layer-method", "rtn", "--proxy-images", str(args.proxy_images),
        "--full-layers", str(args.full_layers), "--check-layers", str(args.check_layers),
        "--suggest", "--max-drop", "1.0",
        "--out", os.path.join("out", "sensitivity", model),
    ] + (["--parts", PARTS[model.split("_")[0]]] if args.no_all else [])


def drop(result, part, method, bits):
    """The part's AP drop (points) and its bootstrap standard error (None from runs without one)."""
    for record in result["matrix"]:
        if record["key"] == f"part|{part}|{method}|{bits}" and record.get("stats"):
            return 100 * (result["fp32"][0] - record["stats"][0]), record.get("dropStandardError")
    return None


def fmt(value):
    """A drop, or a (drop, standard error) pair as `0.5 ± 0.2`."""
    if value is None:
        return ""
    if isinstance(value, tuple):
        value, se = value
        if se is not None:
            return f"{value:.1f} ± {se:.1f}"
    return f"{value:.1f}"


def family(model):
    return {"fcos": "FCOS", "retinanet": "RetinaNet", "ssdlite": "SSDlite", "fasterrcnn": "Faster R-CNN"}.get(
        model.split("_")[0], model)


def weights_sha256(model):
    return file_sha256(os.path.join("detectors", model, "weights.safetensors"))


def stale_models(results, measured_weights):
    """The models whose figures were measured on other weights than the shipped ones (or on weights
    that were not recorded)."""
    return [m for m in results if measured_weights.get(m) != weights_sha256(m)]


def start_over_if_other_weights(model, sha):
    """detq resumes a killed run from its folder and refuses one made from other weights. The folders
    this script starts record the weights' sha256; one made from other weights (retrained since) is
    moved aside to `<folder>.previous-weights` so the run starts over."""
    folder = os.path.join(REPO, "out", "sensitivity", model)
    marker = os.path.join(folder, "weights.sha256")
    if os.path.exists(marker):
        with open(marker) as f:
            if f.read().strip() == sha:
                return
        aside = folder + ".previous-weights"
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(folder, aside)
        print(f"   {os.path.relpath(folder, REPO)} was made from other weights: moved to "
              f"{os.path.relpath(aside, REPO)}; starting over", flush=True)
    elif os.path.exists(folder):
        return  # made before the marker existed: detq itself says whether it can resume it
    os.makedirs(folder)
    with open(marker, "w") as f:
        f.write(sha + "\n")


def existing_reading():
    """The Reading section of the current sensitivity.md, kept when the report is rewritten."""
    path = os.path.join(REPORTS, "sensitivity.md")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        text = f.read()
    start = text.find("## Reading\n")
    end = text.find("## Commands\n")
    if start < 0 or end < start:
        return None
    return text[start + len("## Reading\n"):end].strip() or None


def write_summary(results, args, commands, stale):
    lines = ["# Quantization sensitivity of the shipped detectors", ""]
    lines.append("Made by `python3 eval/sensitivity_report.py` (detq sensitivity on each "
                 "`detectors/*_shapes` model; 2 shared CPU cores; the exact command per model is at the end). "
                 "Evaluation: the first N images of `datasets/shapes/val` (N in the first table); calibration: the 32 images of "
                 "`datasets/shapes/calib`; per-channel weights; the first conv stays W8A8 and linear layers "
                 "W8A8 as in every detq quantization. Drops are FP32 − quantized in AP points (AP × 100); "
                 "positive = lost; `± s` is the drop's standard error over 200 bootstrap draws of the evaluation "
                 "images, paired with FP32 (`detq sensitivity --bootstrap`; drops of models run before it existed have "
                 "none). Two drops less than about two standard errors apart cannot be told apart on these images. "
                 "Per-model tables, layer rankings and charts: `eval/reports/sensitivity/`.")
    lines.append("")
    if stale:
        lines.append("> **Stale: %s.** These figures were measured on other weights than the shipped ones (the "
                     "sha256 recorded in `eval/reports/sensitivity/weights.json` differs or is missing). Rerun with "
                     "`python3 eval/sensitivity_report.py --models %s` after deleting their `out/sensitivity/<model>/` "
                     "journals (detq refuses to resume a journal made with other weights)." % (
                         ", ".join(stale), ",".join(stale)))
        lines.append("")
    lines.append("## Head versus backbone, one part quantized at a time")
    lines.append("")
    header = ["model", "images", "FP32 AP"]
    columns = [(part, method, bits) for method in ("rtn", "arcq") for bits in ("4/4", "8/8")
               for part in ("backbone", "neck", "head")]
    header += [f"{part} {method} W{bits.replace('/', 'A')}" for part, method, bits in columns]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for model, result in results.items():
        row = [f"{model} ({family(model)})", str(result["images"]), f"{100 * result['fp32'][0]:.1f}"]
        row += [fmt(drop(result, *c)) for c in columns]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("## Head branches (W4A4, RTN / ARCQ)")
    lines.append("")
    lines.append("| model | branch | layers | RTN drop | ARCQ drop |")
    lines.append("|---|---|---:|---:|---:|")
    for model, result in results.items():
        for part in result["parts"]:
            if part["coarse"] or part["name"] == "all":
                continue
            lines.append(f"| {model} | `{part['name']}` | {len(part['layers'])} | "
                         f"{fmt(drop(result, part['name'], 'rtn', '4/4'))} | {fmt(drop(result, part['name'], 'arcq', '4/4'))} |")
    lines.append("")
    lines.append("## Single layers (RTN W4A4, one layer quantized) and the proxy")
    lines.append("")
    lines.append("The proxy ranks every layer from the first few evaluation images (AP of the quantized detections "
                 "against the FP32 detections, then score/box map error); the worst by the proxy and "
                 "as many more spread over the rest of its ranking get a full evaluation (counts per model below). "
                 "ρ is Spearman's rank correlation between the proxy's damage and the full AP drop over those layers.")
    lines.append("")
    lines.append("| model | layers ranked | fully evaluated | ρ (proxy vs AP drop) | worst layers (AP drop) |")
    lines.append("|---|---:|---:|---:|---|")
    for model, result in results.items():
        evaluated = [row for row in result["layers"] if row.get("apDrop") is not None]
        worst = sorted(evaluated, key=lambda r: -r["apDrop"])[:3]
        rho = result.get("proxyRankCorrelation")
        lines.append(f"| {model} | {len(result['layers'])} | {len(evaluated)} | "
                     f"{'' if rho is None else f'{rho:.2f}'} | "
                     + ", ".join(f"`{r['layer']}` ({fmt((r['apDrop'], r.get('apDropStandardError')))})"
                                 for r in worst) + " |")
    lines.append("")
    lines.append("## Suggested mixed precision (budget 1 AP point; the first method of the run)")
    lines.append("")
    lines.append("| model | method | backbone | neck | head | estimated drop | measured drop |")
    lines.append("|---|---|---|---|---|---:|---:|")
    for model, result in results.items():
        s = result.get("suggestion") or {}
        parts = s.get("parts", {})
        measured = s.get("measuredDrop")
        lines.append(f"| {model} | {s.get('method', '')} | {parts.get('backbone', '')} | {parts.get('neck', '')} | {parts.get('head', '')} | "
                     f"{s.get('estimatedDrop', 0):.2f} | {'' if measured is None else f'{measured:.2f}'}"
                     f"{'' if s.get('measuredDropStandardError') is None else ' ± %.2f' % s['measuredDropStandardError']} |")
    lines.append("")
    lines.append("## Reading")
    lines.append("")
    lines.append(args.reading or "(to be written after looking at the figures)")
    lines.append("")
    lines.append("## Commands")
    lines.append("")
    lines.append("```")
    lines.extend(" ".join(["detq"] + c[1:]) for c in commands)
    lines.append("```")
    with open(os.path.join(REPORTS, "sensitivity.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated (default: every shipped model)")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--full-layers", type=int, default=6)
    parser.add_argument("--proxy-images", type=int, default=8)
    parser.add_argument("--methods", default="arcq,rtn", help="detq sensitivity --methods (the first also makes the suggestion)")
    parser.add_argument("--no-all", action="store_true", help="leave out the whole-model row (CPU budget)")
    parser.add_argument("--check-layers", type=int, default=6)
    parser.add_argument("--detq", default=os.path.join(REPO, ".build", "release", "detq"))
    parser.add_argument("--reading", help="a file with the reading paragraph(s) for the report (default: keep the "
                        "Reading section of the current sensitivity.md)")
    parser.add_argument("--summary-only", action="store_true", help="rewrite the summary from the copied JSON files")
    args = parser.parse_args()
    if args.reading:
        with open(args.reading) as f:
            args.reading = f.read().strip()
    models = args.models.split(",") if args.models else shipped_models()
    os.makedirs(os.path.join(REPORTS, "sensitivity"), exist_ok=True)
    commands = []
    weights_path = os.path.join(REPORTS, "sensitivity", "weights.json")
    measured_weights = json.load(open(weights_path)) if os.path.exists(weights_path) else {}
    for model in models:
        cmd = command(args, model)
        commands.append(cmd)
        if args.summary_only:
            continue
        start = time.time()
        sha = weights_sha256(model)
        print(f"== {model}", flush=True)
        start_over_if_other_weights(model, sha)
        subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        print(f"   {time.time() - start:.0f} s", flush=True)
        for ext in ("json", "md", "svg"):
            shutil.copy(os.path.join(REPO, "out", "sensitivity", model, f"sensitivity.{ext}"),
                        os.path.join(REPORTS, "sensitivity", f"{model}.{ext}"))
        measured_weights[model] = sha
        with open(weights_path, "w") as f:
            json.dump(measured_weights, f, indent=1, sort_keys=True)
            f.write("\n")
    results = {}
    for path in sorted(glob.glob(os.path.join(REPORTS, "sensitivity", "*_shapes.json"))):
        with open(path) as f:
            results[os.path.basename(path)[:-5]] = json.load(f)
    commands_path = os.path.join(REPORTS, "sensitivity", "commands.json")
    recorded = json.load(open(commands_path)) if os.path.exists(commands_path) else {}
    if not args.summary_only:
        for model in models:
            recorded[model] = ["detq"] + command(args, model)[1:]  # not this machine's path to the binary
        with open(commands_path, "w") as f:
            json.dump(recorded, f, indent=1)
    if args.reading is None:
        args.reading = existing_reading()
    write_summary(results, args, [recorded.get(m, command(args, m)) for m in results],
                  stale_models(results, measured_weights))
    print(f"wrote {os.path.join(REPORTS, 'sensitivity.md')}")


if __name__ == "__main__":
    sys.exit(main())
