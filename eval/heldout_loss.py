"""One W8A8 row's AP loss on a larger held-out draw of the shapes generator, with its bootstrap.

The quantization report measures every W8A8 RTN loss on the 2000 held-out images (standard errors
0.06–0.08 AP). Where a loss sits at the 0.5 bound within that error, this measures it again on N
images (seed 3, so the first 2000 are the report's held-out split and the rest are new):

    python3 eval/heldout_loss.py --model fasterrcnn_mobilenet_v2_shapes --tag w8a8_rtn_per-channel_all --count 10000

It uses the quantized file of the report's row (out/quantization/M/TAG.safetensors, made by
`eval/quantization_report.py`, or made here by the row's recorded quantize command when missing; detq
refuses it when it was made from other weights), generates
datasets/shapes/heldout-N when missing (not committed), evaluates FP32 and the row with `detq eval`
(results in out/quantization/M/heldout-N/, reused when there), bootstraps the loss with `detq cocoeval
--compare --bootstrap`, also over the first 2000 images alone (which repeat the report's held-out
figures: the same recipe on the same images; to float noise, as another machine's BLAS kernels move AP
in the sixth decimal), and writes eval/reports/heldout_loss.json, which the quantization report's W8A8
table shows.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quantization_report as qr  # noqa: E402

OUT_JSON = qr.HELDOUT_LOSS_JSON


def subset(gt_path, results, count, folder):
    """The ground truth and the `results` files restricted to the first `count` images (id order),
    written into `folder` as first-COUNT.*; returns their paths (ground truth first)."""
    gt = qr.load_json(gt_path)
    keep = set(sorted(im["id"] for im in gt["images"])[:count])
    made = [(os.path.join(folder, "first-%d.instances.json" % count),
             dict(gt, images=[im for im in gt["images"] if im["id"] in keep],
                  annotations=[a for a in gt["annotations"] if a["image_id"] in keep]))]
    for path in results:
        made.append((os.path.join(folder, "first-%d.%s" % (count, os.path.basename(path))),
                     [r for r in qr.load_json(path) if r["image_id"] in keep]))
    for path, content in made:
        with open(os.path.join(qr.ROOT, path), "w") as f:
            json.dump(content, f)
    return [os.path.join(qr.ROOT, path) for path, _ in made]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--tag", default="w8a8_rtn_per-channel_all", help="the quantization report's row")
    parser.add_argument("--count", type=int, default=10000, help="held-out images (seed 3)")
    parser.add_argument("--bootstrap", type=int, default=qr.HELDOUT_BOOTSTRAP)
    parser.add_argument("--detq", default=".build/release/detq")
    parser.add_argument("--timeout", type=int, default=4 * 3600, help="seconds per detq eval")
    args = parser.parse_args(argv)

    def log(message):
        print("[%s] %s" % (time.strftime("%H:%M:%S"), message), file=sys.stderr, flush=True)

    report = qr.load_json(qr.REPORT_JSON)
    entry = report["models"].get(args.model)
    row = next((r for r in (entry or {}).get("rows", []) if r["tag"] == args.tag), None)
    if row is None or row.get("status") != "ok":
        raise SystemExit("%s has no row %s that ran: make it with eval/quantization_report.py" % (args.model, args.tag))
    weights = entry["weights"]
    quantized = row["quantized"]
    if not qr.exists(quantized):
        # the report's own command for the row (quantizing takes seconds; a fresh clone has no out/)
        command = shlex.split(row["quantize_command"])
        command[0] = args.detq
        log("making %s: %s" % (quantized, " ".join(command[1:])))
        os.makedirs(os.path.dirname(os.path.join(qr.ROOT, quantized)), exist_ok=True)
        subprocess.run(command, cwd=qr.ROOT, check=True, stdout=subprocess.DEVNULL)
    # (detq eval refuses a quantized file made from other weights than `weights`.)

    split = "datasets/shapes/heldout-%d" % args.count
    annotations = split + "/instances.json"
    if not qr.exists(annotations):
        log("generating %s (seed 3, %d images)" % (split, args.count))
        subprocess.run([qr.REF_PYTHON, "datasets/shapes/generate.py", "--out", split, "--seed", "3",
                        "--count", str(args.count)], cwd=qr.ROOT, check=True)
    folder = "%s/%s/heldout-%d" % (qr.OUT, args.model, args.count)
    os.makedirs(os.path.join(qr.ROOT, folder), exist_ok=True)
    runner = qr.Runner(args.detq, log)
    evaluations = {}
    for name, q in (("fp32", None), (args.tag, quantized)):
        log("%s: %s on %d held-out images" % (args.model, name, args.count))
        ev = qr.evaluate_detector(runner, args.model, weights, q, folder, name, args.timeout, True,
                                  split + "/images", annotations)
        if "error" in ev:
            raise SystemExit("%s: %s" % (name, ev["error"]))
        evaluations[name] = ev
    gt_file = os.path.join(qr.ROOT, annotations)
    base = os.path.join(qr.ROOT, folder, "fp32.results.json")
    other = os.path.join(qr.ROOT, folder, args.tag + ".results.json")
    log("bootstrap of the loss (%d draws)" % args.bootstrap)
    spread = qr.loss_bootstrap(gt_file, base, other, args.bootstrap)
    # The first 2000 images alone: the report's held-out split, which must give its figures again.
    head = qr.loss_bootstrap(*subset(gt_file, [base, other], 2000, folder), args.bootstrap)
    reported = qr.heldout_row(entry, row["granularity"]).get("loss")

    out = qr.load_json(OUT_JSON) if qr.exists(OUT_JSON) else {}
    out.setdefault(args.model, {})[args.tag] = {
        "images": args.count, "seed": 3, "annotations_sha256": qr.file_sha256(annotations),
        "weights_sha256": qr.file_sha256(weights), "quantized_sha256": qr.file_sha256(quantized),
        "granularity": row["granularity"], "quantize_command": row.get("quantize_command"),
        "fp32_stats": evaluations["fp32"]["stats"], "stats": evaluations[args.tag]["stats"],
        "loss": spread["drop"], "bootstrap": spread,
        "first_2000": {"loss": head["drop"], "standard_error": head["standard_error"],
                       "report_heldout_loss": reported},
        "eval_commands": [evaluations[n]["eval_command"] for n in ("fp32", args.tag)],
        "made": qr.utc_now(),
    }
    qr.write_atomic(OUT_JSON, json.dumps(out, indent=1, sort_keys=True) + "\n")
    print("%s %s on %d held-out images: FP32 AP %.2f, loss %.2f ± %.2f (95 %% interval [%.2f, %.2f]); first 2000: "
          "%.2f ± %.2f (the report's held-out figure: %s)" % (
              args.model, args.tag, args.count, 100 * evaluations["fp32"]["stats"][0], spread["drop"],
              spread["standard_error"], spread["interval_95"][0], spread["interval_95"][1], head["drop"],
              head["standard_error"], "%.2f" % reported if reported is not None else "none"))


if __name__ == "__main__":
    main()
