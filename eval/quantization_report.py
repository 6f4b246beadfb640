#!/usr/bin/env python3
"""Quantization report: FP32 against W8A8 and W4A4 quantization of every shipped model (issue #6).

Python 3 standard library only; it drives the `detq` binary through subprocess and writes
  eval/reports/quantization.json   every figure, per model and per row, machine-readable
  eval/reports/quantization.md     the tables, the checks and the commands that made them
Intermediate files (quantized models, per-layer reports, COCO results) go to out/quantization/.

Models
  * every shipped detector `detectors/*_shapes` that has `weights.safetensors` and `config.json`:
    calibration on datasets/shapes/calib/images (32 images), evaluation on the 200 images of
    datasets/shapes/val (COCO AP with `detq eval --report`);
  * the classifier `mobilenet_v2` on its ImageNet weights (../shared/data/weights): calibration
    and evaluation on the 13 photos of ../shared/data/photos; quality is the top-1 agreement of
    `detq classify --quantized` with FP32 `detq classify` (there are no labels).

Rows per model (every method at equal granularity and scope; the first conv is W8A8 in every
quantized row, as detq's default):
  FP32; W8A8 rtn per-tensor, per-channel, per-tensor with the batch norms kept and per-channel
  with dynamic activation ranges (scope all); W4A4 rtn, mse, bias-correction,
  adaround, arcq, per-tensor and per-channel, with scope all, backbone only and head only (the part
  scopes for detectors only: a classifier is all backbone).
Each row is `detq quantize ... --report R.json` then `detq eval|classify --quantized`. A row
that fails records the error and the run goes on. Each W8A8 RTN loss of a detector also gets a
paired bootstrap over the evaluation images (`detq cocoeval --compare --bootstrap`, --bootstrap
draws): how far the 200 images can pin the loss down.

Usage (from the repository root; the script lowers its own priority with nice, default +5):
  python3 eval/quantization_report.py                       # every shipped model, fresh JSON
  python3 eval/quantization_report.py --models retinanet_mobilenet_v2_shapes --merge
  python3 eval/quantization_report.py --r50-timing --models none --merge
  python3 eval/quantization_report.py --render-only          # markdown again from the JSON
  python3 eval/quantization_report.py --models M --merge --reuse --heldout   # + the W8A8 rows on 2000 held-out images

`--merge` keeps the other models of an existing quantization.json and adds or replaces the
models run now. `--r50-timing` times ARCQ W4A4 calibration of a full-size RetinaNet-R50 (seeded
random weights made with the reference Python) on 32 images; without it the JSON keeps the last
measured figure.
"""
import argparse
import datetime
import glob
import hashlib
import json
import math
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT_JSON = "eval/reports/quantization.json"
REPORT_MD = "eval/reports/quantization.md"
FAKEQUANT_JSON = "eval/reports/fakequant_torch.json"  # written by eval/fakequant_torch.py (dev time, torch)
HELDOUT_LOSS_JSON = "eval/reports/heldout_loss.json"  # written by eval/heldout_loss.py
OUT = "out/quantization"

SHAPES_CALIB = "datasets/shapes/calib/images"
SHAPES_VAL_IMAGES = "datasets/shapes/val/images"
SHAPES_VAL_ANN = "datasets/shapes/val/instances.json"
# --heldout: the W8A8 RTN losses again on a larger draw of the same generator (seed 3, not committed)
HELDOUT_IMAGES = "datasets/shapes/heldout/images"
HELDOUT_ANN = "datasets/shapes/heldout/instances.json"
HELDOUT_BOOTSTRAP = 300
CALIB_COUNT = 32

CLASSIFIER = "mobilenet_v2"
CLASSIFIER_WEIGHTS = "../shared/data/weights/mobilenet_v2-b0353104.pth"
PHOTOS = "../shared/data/photos"

R50_MODEL = "retinanet_resnet50_fpn"
R50_WEIGHTS = OUT + "/retinanet_r50_random.pth"
R50_LIMIT_S = 600.0
REF_PYTHON = ".venv-ref/bin/python"

METHODS_W4 = ["rtn", "mse", "bias-correction", "adaround", "arcq"]
GRANULARITIES = ["per-tensor", "per-channel"]
# W8A8 RTN also runs per tensor with the batch norms kept (`--batchnorm keep`): the reference code's
# weight grid (it does not fold), stored per channel; per-channel ranges do not depend on folding.
BN_KEPT = "per-tensor-bn-kept"
# ... and per channel with dynamic activation ranges (each input's own min/max, `--act-ranges dynamic`,
# the reference code's mode): what the calibrated static ranges cost.
DYNAMIC = "per-channel-dynamic"
W8_GRANULARITIES = GRANULARITIES + [BN_KEPT, DYNAMIC]
# paired bootstrap of the W8A8 RTN losses over the evaluation images (detq cocoeval --bootstrap)
BOOTSTRAP_SEED = 0
SCOPE_ALL = "backbone,neck,head"
STAT_NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


# ----------------------------------------------------------------------------------------------
# rows

def settings(kind):
    """The quantized rows of one model, in table order: (method, wbits, abits, granularity, scope)."""
    rows = [("rtn", 8, 8, g, SCOPE_ALL) for g in W8_GRANULARITIES]
    for g in GRANULARITIES:
        rows += [(m, 4, 4, g, SCOPE_ALL) for m in METHODS_W4]
    if kind == "detector":
        # backbone only and head only: every W4A4 method at both granularities, as for scope all
        for scope in ("backbone", "head"):
            for g in GRANULARITIES:
                rows += [(m, 4, 4, g, scope) for m in METHODS_W4]
    return rows


def tag(method, wbits, abits, granularity, scope):
    return "w%da%d_%s_%s_%s" % (wbits, abits, method, granularity, "all" if scope == SCOPE_ALL else scope.replace(",", "+"))


def granularity_args(granularity):
    """detq's options for a row's granularity."""
    if granularity == BN_KEPT:
        return ["--granularity", "per-tensor", "--batchnorm", "keep"]
    if granularity == DYNAMIC:
        return ["--granularity", "per-channel", "--act-ranges", "dynamic"]
    return ["--granularity", granularity]


def granularity_label(granularity):
    return {BN_KEPT: "per-tensor, BN kept", DYNAMIC: "per-channel, dynamic ranges"}.get(granularity, granularity)


def scope_label(scope):
    return "all" if scope == SCOPE_ALL else scope.replace(",", "+") + " only"


def row_label(row):
    if row["method"] == "fp32":
        return "FP32"
    return "W%dA%d %s" % (row["wbits"], row["abits"], row["method"])


# ----------------------------------------------------------------------------------------------
# running detq

class Runner:
    def __init__(self, detq, log):
        self.detq = detq
        self.log = log

    def binary_id(self):
        st = os.stat(os.path.join(ROOT, self.detq))
        return {"sha256": file_sha256(self.detq)[:16],
                "mtime": datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}

    def wait_for_binary(self, limit_s=1800):
        """Another engineer rebuilds detq now and then: wait while the binary is missing."""
        start = time.time()
        path = os.path.join(ROOT, self.detq)
        while not os.access(path, os.X_OK):
            if time.time() - start > limit_s:
                raise RuntimeError("%s missing for %.0f s" % (self.detq, limit_s))
            self.log("waiting for %s (missing, probably being rebuilt)" % self.detq)
            time.sleep(15)

    def run(self, args, log_path, timeout_s):
        """Runs `detq args`; returns dict(rc, wall_s, cpu_s, error, command). Retries once when the
        binary vanished or changed while it ran (a rebuild)."""
        for attempt in (1, 2):
            self.wait_for_binary()
            before_id = os.stat(os.path.join(ROOT, self.detq)).st_mtime
            binary = self.binary_id()["sha256"]
            started, load = utc_now(), os.getloadavg()[0]
            command = [self.detq] + [str(a) for a in args]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.time()
            error = None
            try:
                with open(log_path, "w") as log_file:
                    proc = subprocess.run(command, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                                          timeout=timeout_s)
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc, error = -1, "timed out after %d s" % timeout_s
            except OSError as e:
                rc, error = -2, "could not run detq: %s" % e
            wall = time.time() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            if rc != 0 and error is None:
                error = last_error(log_path) or "exit status %d" % rc
            path = os.path.join(ROOT, self.detq)
            changed = not os.path.exists(path) or os.stat(path).st_mtime != before_id
            if rc != 0 and changed and attempt == 1:
                self.log("detq changed while running (rebuild?); running again: %s" % error)
                continue
            return {"rc": rc, "wall_s": wall, "cpu_s": cpu, "error": error, "started": started, "loadavg_1min": load,
                    "binary": binary, "command": " ".join(shlex.quote(c) for c in command)}

    def run_or_reuse(self, args, log_path, timeout_s, outputs, reuse):
        """`run`, or with `reuse` the earlier run whose outputs are all there (its record in
        outputs[0].run.json, or what the files tell when that is missing) and that was made from
        the same weights (sha256 in the record; for older records, repository weights not modified since)."""
        record = outputs[0] + ".run.json"
        weights = str(args[args.index("--weights") + 1]) if "--weights" in args else None
        digest = file_sha256(weights) if weights else None
        if reuse and all(exists(o) for o in outputs) and not self.made_from_other_weights(record, outputs[0], weights, digest):
            if exists(record):
                run = load_json(record)
                if not run.get("started"):  # records of the first version of this script
                    end = os.path.getmtime(os.path.join(ROOT, record))
                    run["started"] = datetime.datetime.fromtimestamp(end - (run.get("wall_s") or 0), datetime.timezone.utc) \
                        .strftime("%Y-%m-%dT%H:%M:%SZ")
                return run
            full = os.path.join(ROOT, outputs[0])
            wall = None
            try:
                wall = load_json(outputs[0]).get("wall_seconds")
            except (ValueError, AttributeError):
                pass
            return {"rc": 0, "wall_s": wall, "cpu_s": None, "error": None, "binary": None, "loadavg_1min": None,
                    "started": datetime.datetime.fromtimestamp(os.path.getmtime(full), datetime.timezone.utc)
                    .strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "command": " ".join(shlex.quote(c) for c in [self.detq] + [str(a) for a in args])}
        rm(*outputs)
        run = self.run(args, log_path, timeout_s)
        run["weights_sha256"] = digest
        with open(os.path.join(ROOT, record), "w") as f:
            json.dump(run, f)
        return run


    def made_from_other_weights(self, record, output, weights, digest):
        if not weights:
            return False
        recorded = load_json(record).get("weights_sha256") if exists(record) else None
        if recorded is not None:
            stale = recorded != digest
        elif os.path.normpath(weights).startswith(".."):
            # read-only data outside the repository (../shared): copied afresh for each session, so its
            # modification time says nothing, and it is never retrained
            stale = False
        else:
            stale = os.path.getmtime(os.path.join(ROOT, weights)) > os.path.getmtime(os.path.join(ROOT, output))
        if stale:
            self.log("not reusing %s: made from other weights than %s" % (output, weights))
        return stale


_SHA256 = {}


def file_sha256(path):
    """sha256 of a file (relative to the repository root), computed once per path and modification time."""
    full = os.path.join(ROOT, path)
    key = (full, os.path.getmtime(full))
    if key not in _SHA256:
        digest = hashlib.sha256()
        with open(full, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _SHA256[key] = digest.hexdigest()
    return _SHA256[key]


def last_error(log_path):
    try:
        with open(log_path, errors="replace") as f:
            lines = [l.strip() for l in f.read().replace("\r", "\n").split("\n") if l.strip()]
    except OSError:
        return None
    errors = [l for l in lines if l.startswith("error:") or "Fatal error" in l or "fatal" in l.lower()]
    if errors:
        return errors[-1][:400]
    return lines[-1][:400] if lines else None


def rm(*paths):
    for p in paths:
        for q in (p, p + ".partial"):
            try:
                os.remove(os.path.join(ROOT, q))
            except FileNotFoundError:
                pass


def load_json(path):
    with open(os.path.join(ROOT, path)) as f:
        return json.load(f)


def exists(path):
    return os.path.exists(os.path.join(ROOT, path))


# ----------------------------------------------------------------------------------------------
# one model

def quantize_row(runner, model, weights, calib, setting, folder, timeout_s, reuse):
    method, wbits, abits, granularity, scope = setting
    name = tag(*setting)
    q = "%s/%s.safetensors" % (folder, name)
    report = "%s/%s.report.json" % (folder, name)
    row = {"method": method, "wbits": wbits, "abits": abits, "granularity": granularity, "scope": scope,
           "tag": name, "quantized": q, "quantize_report": report}
    args = ["quantize", "--model", model, "--weights", weights, "--calib-images", calib,
            "--calib-count", CALIB_COUNT, "--method", method, "--wbits", wbits, "--abits", abits]
    args += granularity_args(granularity) + ["--scope", scope, "--out", q, "--report", report]
    run = runner.run_or_reuse(args, "%s/%s.quantize.log" % (folder, name), timeout_s, [report, q], reuse)
    row["quantize_run"] = {k: run.get(k) for k in ("started", "loadavg_1min", "binary")}
    row["quantize_command"] = run["command"]
    row["quantize_wall_s"] = run["wall_s"]
    row["quantize_cpu_s"] = run["cpu_s"]
    if run["rc"] != 0 or not exists(report):
        row["status"] = "error"
        row["error"] = "quantize: " + (run["error"] or "no report written")
        return row, None
    rep = load_json(report)
    row["detq_wall_s"] = rep.get("wall_seconds")
    row["calibration_s"] = rep.get("calibration_seconds")
    row["search_s"] = rep.get("search_seconds")
    row["totals"] = rep.get("totals")
    opts = rep.get("recipe", {}).get("options", {})
    if method == "adaround" and "adaround" in opts:
        row["adaround_iterations"] = opts["adaround"].get("iterations")
    row["status"] = "ok"
    return row, rep


def evaluate_detector(runner, model, weights, q, folder, name, timeout_s, reuse,
                      images=SHAPES_VAL_IMAGES, annotations=SHAPES_VAL_ANN):
    results = "%s/%s.results.json" % (folder, name)
    report = "%s/%s.eval.json" % (folder, name)
    args = ["eval", "--model", model, "--weights", weights]
    if q:
        args += ["--quantized", q]
    args += ["--images", images, "--annotations", annotations, "--results", results, "--report", report]
    run = runner.run_or_reuse(args, "%s/%s.eval.log" % (folder, name), timeout_s, [report, results], reuse)
    out = {"eval_command": run["command"], "eval_wall_s": run["wall_s"],
           "eval_run": {k: run.get(k) for k in ("started", "loadavg_1min", "binary")}}
    if run["rc"] != 0 or not exists(report):
        out["error"] = "eval: " + (run["error"] or "no report written")
        return out
    rep = load_json(report)
    out["stats"] = rep["stats"]
    out["images"] = rep.get("images")
    return out


def photos():
    files = sorted(f for f in glob.glob(os.path.join(ROOT, PHOTOS, "*"))
                   if f.lower().endswith((".jpg", ".jpeg", ".png")))
    return [os.path.relpath(f, ROOT) for f in files]


def evaluate_classifier(runner, model, weights, q, folder, name, timeout_s, reuse):
    out_json = "%s/%s.classify.json" % (folder, name)
    args = ["classify", "--model", model, "--weights", weights]
    if q:
        args += ["--quantized", q]
    args += ["--top", "1000", "--json", out_json] + photos()
    run = runner.run_or_reuse(args, "%s/%s.classify.log" % (folder, name), timeout_s, [out_json], reuse)
    out = {"eval_command": run["command"].replace(" ".join(shlex.quote(p) for p in photos()), PHOTOS + "/*"),
           "eval_wall_s": run["wall_s"], "classify_json": out_json,
           "eval_run": {k: run.get(k) for k in ("started", "loadavg_1min", "binary")}}
    if run["rc"] != 0 or not exists(out_json):
        out["error"] = "classify: " + (run["error"] or "no output written")
    return out


def distributions(classify_json):
    """file → {class index: probability} from `classify --top 1000 --json`."""
    data = load_json(classify_json)
    for img in data["images"]:
        for t in img["top"]:
            CLASS_NAMES[t["index"]] = t["name"]
    return {os.path.basename(img["file"]): {t["index"]: t["probability"] for t in img["top"]} for img in data["images"]}


CLASS_NAMES = {}


def compare_classifier(fp32_json, q_json):
    ref = distributions(fp32_json)
    got = distributions(q_json)
    agree = agree5 = 0
    kls = []
    flipped = []
    for name, p in ref.items():
        qd = got.get(name, {})
        top_ref = max(p, key=p.get)
        top_q = max(qd, key=qd.get) if qd else None
        agree += top_q == top_ref
        if top_q != top_ref:
            second = sorted(p.values(), reverse=True)[1]
            flipped.append({"file": name, "fp32_top1": CLASS_NAMES.get(top_ref, top_ref), "fp32_p1": p[top_ref],
                            "fp32_p2": second, "quantized_top1": CLASS_NAMES.get(top_q, top_q),
                            "quantized_p1": qd.get(top_q) if qd else None})
        top5 = sorted(qd, key=qd.get, reverse=True)[:5]
        agree5 += top_ref in top5
        kl = 0.0
        for k, pk in p.items():
            if pk > 0:
                kl += pk * math.log(pk / max(qd.get(k, 0.0), 1e-12))
        kls.append(kl)
    n = len(ref)
    return {"images": n, "top1_agree": agree, "top1_agreement": agree / n if n else None,
            "fp32_top1_in_top5": agree5, "mean_kl": statistics.mean(kls) if kls else None, "flipped": flipped}


def layer_summary(rep):
    """What the explanations need from a per-layer report, small enough to keep in the JSON."""
    layers = []
    for l in rep.get("layers", []):
        layers.append({k: l.get(k) for k in ("path", "part", "kind", "execution_index", "weight_bits", "activation_bits",
                                             "compensated", "relative_squared_error", "error_final",
                                             "error_uncompensated", "error_compensated", "error_w8a8",
                                             "weight_range", "activation_ranges", "input_range_spread",
                                             "multiply_accumulates")})
    opts = rep.get("recipe", {}).get("options", {})
    return {"layers": layers, "clip_search": opts.get("clip_search"), "mse": {
        "grid_size": opts.get("mse_grid_size"), "step": opts.get("mse_step"), "norm": opts.get("mse_norm")},
        "compensation": opts.get("compensation"), "remainder_mode": opts.get("remainder_mode")}


def command_timeout(args):
    """--row-timeout, and with --stop-at no command runs past 5 minutes after it."""
    if not args.stop_at:
        return args.row_timeout
    return int(max(60, min(args.row_timeout, args.stop_at + 300 - time.time())))


def run_model(runner, model, kind, args, log):
    folder = "%s/%s" % (OUT, model)
    os.makedirs(os.path.join(ROOT, folder), exist_ok=True)
    if kind == "detector":
        weights = "detectors/%s/weights.safetensors" % model
        calib = SHAPES_CALIB
        evaluate = evaluate_detector
    else:
        weights = CLASSIFIER_WEIGHTS
        calib = PHOTOS
        evaluate = evaluate_classifier
    entry = {"model": model, "kind": kind, "weights": weights, "calibration": {"images": calib, "count": CALIB_COUNT},
             "evaluation": ({"images": SHAPES_VAL_IMAGES, "annotations": SHAPES_VAL_ANN} if kind == "detector"
                            else {"images": PHOTOS + "/*", "count": len(photos())}),
             "weights_sha256": file_sha256(weights),
             "started": utc_now(), "loadavg_start": os.getloadavg(), "detq_binary": runner.binary_id(),
             "git_head": git_head()}
    if kind == "detector":
        training = "detectors/%s/training.json" % model
        if exists(training):
            t = load_json(training)
            entry["training_val_AP"] = t.get("val_stats", {}).get("AP")
    rows = []
    log("%s: FP32" % model)
    fp32 = {"method": "fp32", "wbits": 32, "abits": 32, "granularity": "-", "scope": "-", "tag": "fp32", "status": "ok"}
    fp32.update(evaluate(runner, model, weights, None, folder, "fp32", args.row_timeout, args.reuse))
    if "error" in fp32:
        fp32["status"] = "error"
    rows.append(fp32)
    layer_reports = {}
    # run order: the rows the checks need first, AdaRound (slowest) last; the table keeps settings() order
    priority = {"rtn": 0, "arcq": 1, "mse": 2, "bias-correction": 3, "adaround": 4}
    order = sorted(settings(kind), key=lambda st: (st[1] != 8, priority[st[0]]))
    for setting in order:
        name = tag(*setting)
        if args.stop_at and time.time() >= args.stop_at:
            method, wbits, abits, granularity, scope = setting
            rows.append({"method": method, "wbits": wbits, "abits": abits, "granularity": granularity, "scope": scope,
                         "tag": name, "status": "error", "error": "not run: --stop-at %s reached" % args.stop_at_text})
            log("%s: %s not run (--stop-at)" % (model, name))
            continue
        log("%s: %s" % (model, name))
        row, rep = quantize_row(runner, model, weights, calib, setting, folder, command_timeout(args), args.reuse)
        if rep is not None:
            layer_reports[name] = layer_summary(rep)
            ev = evaluate(runner, model, weights, row["quantized"], folder, name, command_timeout(args), args.reuse)
            row.update(ev)
            if "error" in ev:
                row["status"] = "error"
        rows.append(row)
        log("%s: %s %s %s" % (model, name, row["status"], row.get("error", "")))
    by_tag = {r["tag"]: r for r in rows[1:]}
    rows = [rows[0]] + [by_tag[tag(*st)] for st in settings(kind)]
    if kind == "classifier" and fp32["status"] == "ok":
        for row in rows:
            if row["status"] == "ok":
                row["agreement"] = compare_classifier(fp32["classify_json"], row["classify_json"])
    entry["rows"] = rows
    if args.reuse:
        entry["reused_results"] = True
    runs = [r.get(k) for r in rows for k in ("quantize_run", "eval_run") if r.get(k)]
    starts = sorted(x["started"] for x in runs if x.get("started"))
    loads = [x["loadavg_1min"] for x in runs if x.get("loadavg_1min") is not None]
    entry["runs"] = {"first_started": starts[0] if starts else None, "last_started": starts[-1] if starts else None,
                     "binaries": sorted({x["binary"] for x in runs if x.get("binary")}),
                     "unknown_binary": sum(1 for x in runs if not x.get("binary")),
                     "loadavg_1min_min": min(loads) if loads else None, "loadavg_1min_max": max(loads) if loads else None}
    entry["finished"] = utc_now()
    entry["loadavg_end"] = os.getloadavg()
    entry["detq_binary_end"] = runner.binary_id()
    # the last report's entry: its bootstraps are kept where the results files are the same
    previous = (load_json(REPORT_JSON).get("models", {}).get(model) if exists(REPORT_JSON) else None) or {}
    bootstrap_w8(entry, args.bootstrap, log, previous)
    if args.heldout:
        heldout_w8(runner, entry, args, log, previous.get("heldout") or {})
    elif args.reuse and previous.get("heldout") and previous.get("weights_sha256") == entry["weights_sha256"]:
        # a --reuse run without --heldout keeps the held-out figures (the rows they measured are the files it
        # reuses), unless they were measured on other weights
        entry["heldout"] = previous["heldout"]
    derive(entry)
    entry["analysis"] = analyse(entry, layer_reports)
    return entry


# ----------------------------------------------------------------------------------------------
# derived figures, checks and explanations

def loss_bootstrap(gt_file, base, other, draws):
    """The AP loss from `base` to `other` results (AP points) with its paired bootstrap over the
    images: `detq cocoeval --compare --bootstrap`."""
    detq = os.path.join(ROOT, ".build", "release", "detq")
    run = subprocess.run([detq, "cocoeval", "--quiet", "--gt", gt_file, "--dt", base, "--compare", other,
                          "--bootstrap", str(draws), "--seed", str(BOOTSTRAP_SEED), "--json"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError("detq cocoeval --bootstrap failed: %s" % run.stderr.strip())
    compare = json.loads(run.stdout)["compare"]
    spread = compare["drop_bootstrap"][0]
    return {"drop": 100 * compare["drop"][0], "standard_error": 100 * spread["standard_error"],
            "interval_95": [100 * v for v in spread["interval_95"]], "resamples": draws,
            "method": "detq cocoeval --compare --bootstrap"}


def w8_rtn_rows(entry):
    """The W8A8 RTN rows (scope all) that ran."""
    return [row for row in entry["rows"] if row["method"] == "rtn" and row["wbits"] == 8
            and row["scope"] == SCOPE_ALL and row["status"] == "ok"]


def heldout_row(entry, granularity):
    """The held-out figures of the W8A8 RTN row of `granularity` ({} when not measured)."""
    return ((entry.get("heldout") or {}).get("rows") or {}).get(tag("rtn", 8, 8, granularity, SCOPE_ALL)) or {}


def cached_loss_bootstrap(old, gt_file, base, other, draws, log, what):
    """`loss_bootstrap`, or `old` when it was made from the same two results files, draws and seed."""
    key = {"base_sha256": file_sha256(base), "other_sha256": file_sha256(other), "resamples": draws,
           "seed": BOOTSTRAP_SEED}
    if old and all(old.get(k) == v for k, v in key.items()):
        return old
    log("%s (%d draws)" % (what, draws))
    return dict(loss_bootstrap(gt_file, base, other, draws), **key)


def bootstrap_w8(entry, resamples, log, previous=None):
    """Paired bootstrap (`detq cocoeval --bootstrap`) of each W8A8 RTN row's AP loss over the evaluation
    images; kept in the row (or taken from the row of the same tag in `previous`, the last report's
    entry) and made again only when a results file or the draw count changed."""
    if entry["kind"] != "detector" or resamples < 2:
        return
    folder = os.path.join(ROOT, OUT, entry["model"])
    base = os.path.join(folder, "fp32.results.json")
    gt_file = os.path.join(ROOT, SHAPES_VAL_ANN)
    if not exists(base):
        return
    earlier = {r["tag"]: r.get("bootstrap") for r in (previous or {}).get("rows", [])}
    for row in w8_rtn_rows(entry):
        other = os.path.join(folder, row["tag"] + ".results.json")
        if exists(other):
            row["bootstrap"] = cached_loss_bootstrap(
                row.get("bootstrap") or earlier.get(row["tag"]), gt_file, base, other, resamples, log,
                "%s: %s: bootstrap of the AP loss" % (entry["model"], row["tag"]))


def heldout_w8(runner, entry, args, log, previous):
    """--heldout: FP32 and every W8A8 RTN row (the quantized files already made) evaluated on the 2000
    held-out images, each loss with a paired bootstrap (kept from `previous`, the last held-out figures,
    where the results files are the same); the split is generated first when missing."""
    if entry["kind"] != "detector":
        return
    if not exists(HELDOUT_ANN):
        log("generating the held-out split (datasets/shapes/generate.py --split heldout)")
        subprocess.run([REF_PYTHON, "datasets/shapes/generate.py", "--split", "heldout"], cwd=ROOT, check=True)
    model, weights = entry["model"], entry["weights"]
    folder = "%s/%s/heldout" % (OUT, model)
    os.makedirs(os.path.join(ROOT, folder), exist_ok=True)
    gt_file = os.path.join(ROOT, HELDOUT_ANN)
    gt = load_json(gt_file)
    held = {"images": len(gt["images"]), "annotations": HELDOUT_ANN, "annotations_sha256": file_sha256(gt_file),
            "rows": {}}
    log("%s: FP32 on the held-out images" % model)
    fp = evaluate_detector(runner, model, weights, None, folder, "fp32", args.row_timeout, args.reuse,
                           HELDOUT_IMAGES, HELDOUT_ANN)
    if "error" in fp:
        held["error"] = fp["error"]
        entry["heldout"] = held
        return
    held["fp32_stats"] = fp["stats"]
    base = os.path.join(ROOT, folder, "fp32.results.json")
    for row in w8_rtn_rows(entry):
        log("%s: %s on the held-out images" % (model, row["tag"]))
        ev = evaluate_detector(runner, model, weights, row["quantized"], folder, row["tag"], command_timeout(args),
                               args.reuse, HELDOUT_IMAGES, HELDOUT_ANN)
        out = {"granularity": row["granularity"]}
        if "error" in ev:
            out["error"] = ev["error"]
        else:
            out["stats"] = ev["stats"]
            out["loss"] = 100 * (fp["stats"][0] - ev["stats"][0])
            other = os.path.join(ROOT, folder, row["tag"] + ".results.json")
            out["bootstrap"] = cached_loss_bootstrap(
                previous.get("rows", {}).get(row["tag"], {}).get("bootstrap"), gt_file, base, other, HELDOUT_BOOTSTRAP,
                log, "%s: %s: bootstrap on the held-out images" % (model, row["tag"]))
        held["rows"][row["tag"]] = out
    entry["heldout"] = held


def derive(entry):
    rows = entry["rows"]
    fp32 = rows[0]
    # the model's MACs: every conv/linear layer, from a scope-all report (they all quantize every layer)
    model_macs = None
    for r in rows:
        if r.get("totals") and r["scope"] == SCOPE_ALL:
            model_macs = r["totals"]["multiply_accumulates"]
            break
    entry["model_macs_per_image"] = model_macs
    for r in rows:
        t = r.get("totals")
        if t:
            r["extra_macs_pct"] = 100.0 * t["extra_multiply_accumulates"] / (model_macs or t["multiply_accumulates"])
            r["extra_bits_pct"] = 100.0 * t["extra_bits"] / t["weight_bits"] if t["weight_bits"] else None
        if entry["kind"] == "detector" and r.get("stats") and r["status"] == "ok":
            r.update({n: 100.0 * v for n, v in zip(STAT_NAMES[:6], r["stats"][:6])})
            if fp32.get("stats"):
                r["drop"] = r["AP"] - 100.0 * fp32["stats"][0]
    entry["checks"] = checks(entry)


def find(rows, method, wbits, granularity, scope):
    for r in rows:
        if r["method"] == method and r["wbits"] == wbits and r["granularity"] == granularity and r["scope"] == scope:
            return r
    return None


def quality(entry, row):
    """The number a check compares: AP (points) for detectors, top-1 agreement (%) for the classifier."""
    if row is None or row["status"] != "ok":
        return None
    if entry["kind"] == "detector":
        return row.get("AP")
    a = row.get("agreement")
    return 100.0 * a["top1_agreement"] if a else None


def fmt_q(entry, v):
    if v is None:
        return "n/a"
    return ("%.1f AP" % v) if entry["kind"] == "detector" else ("%.1f %% top-1 agreement" % v)


def checks(entry):
    rows = entry["rows"]
    out = []
    scopes = [(g, SCOPE_ALL) for g in GRANULARITIES]
    if entry["kind"] == "detector":
        # the part scopes this model's rows have (older runs made per-channel rtn and arcq only)
        scopes += [(g, s) for s in ("backbone", "head") for g in GRANULARITIES
                   if find(rows, "arcq", 4, g, s) or find(rows, "rtn", 4, g, s)]
    for g, s in scopes:
        a = quality(entry, find(rows, "arcq", 4, g, s))
        r = quality(entry, find(rows, "rtn", 4, g, s))
        if a is None or r is None:
            result = "n/a (a run failed)"
        elif a > r:
            result = "yes"
        elif a == r:
            result = "no (tie)"
        else:
            result = "no"
        extra = ""
        if entry["kind"] == "classifier" and a is not None and r is not None:
            ka = find(rows, "arcq", 4, g, s)["agreement"]["mean_kl"]
            kr = find(rows, "rtn", 4, g, s)["agreement"]["mean_kl"]
            extra = "; mean KL(FP32‖Q) arcq %.3f vs rtn %.3f" % (ka, kr)
        out.append({"check": "ARCQ W4A4 beats RTN W4A4 (%s, scope %s)" % (g, scope_label(s)), "result": result,
                    "detail": "arcq %s vs rtn %s%s" % (fmt_q(entry, a), fmt_q(entry, r), extra)})
    fp = quality(entry, rows[0]) if entry["kind"] == "detector" else None
    for g in W8_GRANULARITIES:
        w8 = find(rows, "rtn", 8, g, SCOPE_ALL)
        if w8 is None:
            continue  # a model measured before the row existed
        if entry["kind"] == "detector":
            q = quality(entry, w8)
            if q is None or fp is None:
                result, detail = "n/a (a run failed)", ""
            else:
                result = "yes" if fp - q <= 0.5 else "no"
                detail = "FP32 %.1f AP, W8A8 %.1f AP, loss %.2f AP points" % (fp, q, fp - q)
                b = w8.get("bootstrap")
                if b:
                    detail += "; over the images, standard error %.2f, 95 %% interval [%s, %.2f]" % (
                        b["standard_error"], fsigned_plain(b["interval_95"][0]), b["interval_95"][1])
            out.append({"check": "W8A8 RTN loses ≤ 0.5 AP (%s)" % granularity_label(g), "result": result, "detail": detail})
            h = heldout_row(entry, g)
            if "loss" in h:
                out.append(heldout_check(entry["heldout"]["images"], granularity_label(g), entry["heldout"]["fp32_stats"],
                                         h["stats"], h["loss"], h.get("bootstrap")))
        else:
            a = w8.get("agreement") if w8 else None
            out.append({"check": "W8A8 RTN loses ≤ 0.5 AP (%s)" % granularity_label(g), "result": "n/a (classifier, no AP)",
                        "detail": ("top-1 agreement with FP32 %d/%d, mean KL %.4f" % (a["top1_agree"], a["images"], a["mean_kl"]))
                        if a else "run failed"})
    return out


def heldout_check(images, label, fp32_stats, stats, loss, bootstrap):
    """The check of a W8A8 RTN loss measured on `images` held-out images (`label`: the granularity, and where
    the figures come from when not the report's own held-out split)."""
    b = bootstrap or {}
    return {"check": "W8A8 RTN loses ≤ 0.5 AP on the %d held-out images (%s)" % (images, label),
            "result": "yes" if loss <= 0.5 else "no",
            "detail": "FP32 %.1f AP, W8A8 %.1f AP, loss %.2f AP points%s" % (
                100 * fp32_stats[0], 100 * stats[0], loss,
                "; standard error %.2f, 95 %% interval [%s, %.2f]" % (
                    b["standard_error"], fsigned_plain(b["interval_95"][0]), b["interval_95"][1]) if b else "")}


def analyse(entry, layer_reports):
    """Where ARCQ W4A4 does not beat MSE or bias-correction (scope all, same granularity): which
    layers its per-layer error exceeds the baseline's, and whether that is clipping or rounding."""
    # does the bias-correction report show the corrected errors? (its shift goes into the bias, and
    # the per-layer errors are measured without bias)
    bc_same = {}
    for g in GRANULARITIES:
        lb = layer_reports.get(tag("bias-correction", 4, 4, g, SCOPE_ALL))
        lr = layer_reports.get(tag("rtn", 4, 4, g, SCOPE_ALL))
        if lb and lr:
            bc_same[g] = [l["relative_squared_error"] for l in lb["layers"]] == [l["relative_squared_error"] for l in lr["layers"]]
    rows = entry["rows"]
    notes = []
    for g in GRANULARITIES:
        arcq = find(rows, "arcq", 4, g, SCOPE_ALL)
        qa = quality(entry, arcq)
        for base in ("mse", "bias-correction", "adaround"):
            b = find(rows, base, 4, g, SCOPE_ALL)
            qb = quality(entry, b)
            if qa is None or qb is None or qa > qb:
                continue
            la = layer_reports.get(tag("arcq", 4, 4, g, SCOPE_ALL))
            lb = layer_reports.get(tag(base, 4, 4, g, SCOPE_ALL))
            note = {"granularity": g, "baseline": base, "arcq": qa, "baseline_value": qb}
            if la and lb:
                note.update(compare_layers(la, lb))
                note["baseline_report_excludes_correction"] = base == "bias-correction" and bc_same.get(g, False)
            notes.append(note)
    # depthwise collapse under per-tensor 4-bit (arcq.md §8): RTN's per-layer error by layer kind
    kinds = {}
    for g in GRANULARITIES:
        lr = layer_reports.get(tag("rtn", 4, 4, g, SCOPE_ALL))
        if not lr:
            continue
        by = {}
        for l in lr["layers"]:
            if l["weight_bits"] == 4:
                by.setdefault(l["kind"], []).append(l["relative_squared_error"])
        kinds[g] = {k: {"layers": len(v), "median_rse": statistics.median(v)} for k, v in by.items()}
    # per part: median per-layer error of every W4A4 scope-all method
    parts = {}
    for g in GRANULARITIES:
        for m in METHODS_W4:
            lr = layer_reports.get(tag(m, 4, 4, g, SCOPE_ALL))
            if not lr:
                continue
            by = {}
            for l in lr["layers"]:
                by.setdefault(l["part"], []).append(l["relative_squared_error"])
            parts["%s %s" % (m, g)] = {p: statistics.median(v) for p, v in by.items()}
    arcq_cost = {}
    for g in GRANULARITIES:
        lr = layer_reports.get(tag("arcq", 4, 4, g, SCOPE_ALL))
        if lr:
            comp = [l for l in lr["layers"] if l["compensated"]]
            arcq_cost[g] = {"compensated": len(comp), "layers": len(lr["layers"]),
                            "not_compensated": [l["path"] for l in lr["layers"] if not l["compensated"] and l["weight_bits"] < 8]}
    # W8A8 RTN per-tensor against per-channel: the layers whose error grows most on one weight grid per layer
    w8 = {}
    lt = layer_reports.get(tag("rtn", 8, 8, "per-tensor", SCOPE_ALL))
    lc = layer_reports.get(tag("rtn", 8, 8, "per-channel", SCOPE_ALL))
    if lt and lc:
        C = {l["path"]: l for l in lc["layers"]}
        growth = [(l["relative_squared_error"] - C[l["path"]]["relative_squared_error"], l) for l in lt["layers"]
                  if l["path"] in C]
        growth.sort(key=lambda x: -x[0])
        w8 = {"sum_rse_per_tensor": sum(l["relative_squared_error"] for l in lt["layers"]),
              "sum_rse_per_channel": sum(l["relative_squared_error"] for l in lc["layers"]),
              "top": [{"path": l["path"], "kind": l["kind"], "rse_per_tensor": l["relative_squared_error"],
                       "rse_per_channel": C[l["path"]]["relative_squared_error"], "weight_range": l["weight_range"]}
                      for d, l in growth[:5] if d > 0]}
        w8["narrow_channels"] = narrow_channels(entry["weights"], w8["top"])
        T = {l["path"]: l for l in lt["layers"]}
        ld = layer_reports.get(tag("rtn", 8, 8, DYNAMIC, SCOPE_ALL))
        D = {l["path"]: l for l in ld["layers"]} if ld else {}
        w8["per_channel_top"] = [{"path": l["path"], "kind": l["kind"], "rse": l["relative_squared_error"],
                                  "rse_per_tensor": T[l["path"]]["relative_squared_error"] if l["path"] in T else None,
                                  "rse_dynamic": D[l["path"]]["relative_squared_error"] if l["path"] in D else None,
                                  "activation_ranges": l.get("activation_ranges"),
                                  "input_range_spread": l.get("input_range_spread")}
                                 for l in sorted(lc["layers"], key=lambda l: -l["relative_squared_error"])[:3]]
    return {"arcq_not_better": notes, "rtn_rse_by_kind": kinds, "median_rse_by_part": parts, "arcq_layers": arcq_cost,
            "bias_correction_report_equals_rtn": bc_same, "w8a8_granularity": w8}


def read_safetensors(path, keys):
    """The named tensors of a .safetensors file as flat lists of floats (F16/F32), with their shapes."""
    import struct
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for k in keys:
            if k not in header:
                return None
            t = header[k]
            code = {"F16": "e", "F32": "f"}.get(t["dtype"])
            if code is None:
                return None
            start, end = t["data_offsets"]
            f.seek(base + start)
            data = f.read(end - start)
            out[k] = (list(struct.unpack("<%d%s" % (len(data) // struct.calcsize(code), code), data)), t["shape"])
    return out


def channel_magnitudes(weights, conv_path, eps=1e-5):
    """Per output channel, max |w| of a conv before and after folding the BatchNorm that follows it
    (`<block>.0` conv, `<block>.1` BatchNorm, torchvision's Conv2dNormActivation layout), as two lists;
    None when the weights do not have that layout."""
    if not conv_path.endswith(".0") or not weights.endswith(".safetensors"):
        return None
    bn = conv_path[:-1] + "1"
    t = read_safetensors(os.path.join(ROOT, weights), [conv_path + ".weight", bn + ".weight", bn + ".running_var"])
    if t is None:
        return None
    w, shape = t[conv_path + ".weight"]
    gamma, var = t[bn + ".weight"][0], t[bn + ".running_var"][0]
    per = len(w) // shape[0]
    unfolded = [max(abs(x) for x in w[c * per:(c + 1) * per]) for c in range(shape[0])]
    return unfolded, [m * (abs(gamma[c]) / math.sqrt(var[c] + eps)) for c, m in enumerate(unfolded)]


def narrow_channels(weights, top):
    """Of the depthwise layers in `top` whose weights can be read, the one with the largest share of folded
    output channels spanning less than 1/16 of the layer's range (fewer than 16 of the 256 levels of a
    per-tensor 8-bit grid), with that count, and the same figures for the weights before folding."""
    found = []
    for t in top:
        magnitudes = channel_magnitudes(weights, t["path"]) if t["kind"] == "depthwise" else None
        if magnitudes:
            unfolded, ranges = magnitudes
            top_range, top_unfolded = max(ranges), max(unfolded)
            found.append({"path": t["path"], "channels": len(ranges),
                          "below_one_sixteenth": sum(r < top_range / 16 for r in ranges),
                          "max_over_median": top_range / statistics.median(ranges),
                          "unfolded_below_one_sixteenth": sum(r < top_unfolded / 16 for r in unfolded),
                          "unfolded_max_over_median": top_unfolded / statistics.median(unfolded)})
    return max(found, key=lambda n: n["below_one_sixteenth"] / n["channels"], default=None)


def compare_layers(la, lb):
    A = {l["path"]: l for l in la["layers"]}
    B = {l["path"]: l for l in lb["layers"]}
    paths = [p for p in A if p in B and A[p]["weight_bits"] < 8]
    worse = [p for p in paths if A[p]["relative_squared_error"] > B[p]["relative_squared_error"]]
    by_part = {}
    for p in paths:
        part = A[p]["part"]
        d = by_part.setdefault(part, {"layers": 0, "arcq_worse": 0, "arcq_sum_rse": 0.0, "base_sum_rse": 0.0})
        d["layers"] += 1
        d["arcq_worse"] += p in worse
        d["arcq_sum_rse"] += A[p]["relative_squared_error"]
        d["base_sum_rse"] += B[p]["relative_squared_error"]
    top = sorted(worse, key=lambda p: A[p]["relative_squared_error"] - B[p]["relative_squared_error"], reverse=True)[:6]
    top_layers = []
    for p in top:
        a, b = A[p], B[p]
        info = {"path": p, "part": a["part"], "kind": a["kind"], "compensated": a["compensated"],
                "rse_arcq": a["relative_squared_error"], "rse_base": b["relative_squared_error"],
                "err_arcq_uncompensated": a["error_uncompensated"], "err_arcq_final": a["error_final"],
                "err_base": b["error_final"], "err_w8a8": a.get("error_w8a8")}
        wa, wb = a.get("weight_range") or [0, 0], b.get("weight_range") or [0, 0]
        info["weight_range_arcq"], info["weight_range_base"] = wa, wb
        aa = a.get("activation_ranges") or []
        ab = b.get("activation_ranges") or []
        if aa and ab:
            info["act_range_arcq"], info["act_range_base"] = aa[0], ab[0]
        # what kind of error: with compensation the first-order rounding error is removed, so the
        # rest is clipping (values beyond the range keep their clipped part) plus second order
        if a["compensated"] and a.get("error_compensated") is not None:
            info["rounding_removed_pct"] = 100.0 * (1 - a["error_compensated"] / a["error_uncompensated"]) \
                if a["error_uncompensated"] else None
        top_layers.append(info)
    return {"layers_compared": len(paths), "arcq_worse_layers": len(worse), "by_part": by_part, "top_layers": top_layers,
            "clip_search": la.get("clip_search"), "mse_search": lb.get("mse")}


# ----------------------------------------------------------------------------------------------
# R50 timing

R50_MAKE = """
import torch, torchvision
torch.set_num_threads(2)
torch.manual_seed(0)
model = torchvision.models.detection.retinanet_resnet50_fpn(weights=None, weights_backbone=None)
torch.save(model.state_dict(), {path!r})
print('torch', torch.__version__, 'torchvision', torchvision.__version__)
"""


def parse_time_v(text):
    def grab(label):
        m = re.search(r"^\s*" + re.escape(label) + r":\s*(.+)$", text, re.M)
        return m.group(1).strip() if m else None
    elapsed = grab("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    wall = None
    if elapsed:
        parts = [float(x) for x in elapsed.split(":")]
        wall = sum(v * 60 ** i for i, v in enumerate(reversed(parts)))
    num = lambda s: float(s) if s is not None else None
    pct = grab("Percent of CPU this job got")
    return {"wall_s": wall, "user_s": num(grab("User time (seconds)")), "sys_s": num(grab("System time (seconds)")),
            "cpu_percent": num(pct.rstrip("%")) if pct and pct.rstrip("%").replace(".", "").isdigit() else None,
            "max_rss_kb": num(grab("Maximum resident set size (kbytes)")), "exit_status": num(grab("Exit status"))}


def r50_timing(runner, args, log):
    folder = OUT + "/r50"
    os.makedirs(os.path.join(ROOT, folder), exist_ok=True)
    result = {"model": R50_MODEL, "config": "detectors/%s/config.json" % R50_MODEL, "weights": R50_WEIGHTS,
              "limit_s": R50_LIMIT_S, "started": utc_now(), "git_head": git_head()}
    if not exists(R50_WEIGHTS) or args.r50_remake_weights:
        log("making %s with the reference Python" % R50_WEIGHTS)
        code = R50_MAKE.format(path=R50_WEIGHTS)
        proc = subprocess.run([REF_PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True)
        result["weights_made_with"] = "%s -c <torch.manual_seed(0); retinanet_resnet50_fpn(weights=None, " \
                                      "weights_backbone=None); torch.save(state_dict)>: %s" % (REF_PYTHON, proc.stdout.strip())
        if proc.returncode != 0:
            result["error"] = "making weights failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
            return result
    result["weights_bytes"] = os.path.getsize(os.path.join(ROOT, R50_WEIGHTS))
    runner.wait_for_binary()
    result["detq_binary"] = runner.binary_id()
    q = folder + "/arcq_w4a4_per-channel.safetensors"
    report = folder + "/arcq_w4a4_per-channel.report.json"
    rm(q, report)
    cmd = [runner.detq, "quantize", "--model", R50_MODEL, "--weights", R50_WEIGHTS, "--calib-images", SHAPES_CALIB,
           "--calib-count", str(CALIB_COUNT), "--method", "arcq", "--wbits", "4", "--abits", "4",
           "--granularity", "per-channel", "--out", q, "--report", report]
    result["command"] = "/usr/bin/time -v " + " ".join(shlex.quote(c) for c in cmd)
    log("timing: %s" % result["command"])
    loads = []
    result["loadavg_start"] = os.getloadavg()
    start = time.time()
    with open(os.path.join(ROOT, folder + "/quantize.log"), "w") as logf:
        proc = subprocess.Popen(["/usr/bin/time", "-v"] + cmd, cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                loads.append(os.getloadavg()[0])
                if time.time() - start > args.r50_timeout:
                    proc.kill()
                    proc.wait()
                    result["error"] = "killed after %d s (--r50-timeout)" % args.r50_timeout
                    break
    result["wall_s_script"] = time.time() - start
    result["loadavg_end"] = os.getloadavg()
    result["loadavg_1min_during"] = {"mean": statistics.mean(loads), "max": max(loads), "samples": len(loads)} if loads else None
    with open(os.path.join(ROOT, folder + "/quantize.log"), errors="replace") as f:
        text = f.read()
    result["time_v"] = parse_time_v(text)
    if proc.returncode != 0 and "error" not in result:
        result["error"] = last_error(folder + "/quantize.log") or "exit status %d" % proc.returncode
    if exists(report):
        rep = load_json(report)
        result["detq_report"] = {k: rep.get(k) for k in ("calibration_seconds", "search_seconds", "wall_seconds", "totals")}
    tv = result["time_v"]
    if tv.get("wall_s") is not None and "error" not in result:
        result["within_limit"] = tv["wall_s"] <= R50_LIMIT_S
        result["cpu_s"] = (tv["user_s"] or 0) + (tv["sys_s"] or 0)
    result["finished"] = utc_now()
    return result


# ----------------------------------------------------------------------------------------------
# markdown

def fsigned_plain(v):
    """%.2f with a true minus sign."""
    return ("%.2f" % v).replace("-", "−")


def f1(v):
    return "" if v is None else "%.1f" % v


def fsigned(v):
    return "" if v is None else ("%+.1f" % v).replace("-", "−")


def fpct(v):
    if v is None:
        return ""
    return "0" if v == 0 else "%.1f" % v


def render(data):
    L = []
    w = L.append
    w("# Quantization report: FP32, W8A8 and W4A4 (ARCQ and baselines)")
    w("")
    w("Made by `eval/quantization_report.py` (it drives the release `detq` binary); every figure is in "
      "`eval/reports/quantization.json`. Last update %s." % data.get("updated", "?"))
    w("")
    w("**Machine.** %s. The 2 cores are shared with model training and other builds while these "
      "numbers are taken (the script runs detq under `nice -n 5`, one process at a time, detq's default "
      "`--threads` = all cores), so wall times are inflated and vary from run to run; the load average of "
      "each run is recorded below." % data.get("machine", {}).get("description", "?"))
    w("")
    w("**Setup.** Detectors: calibration on %d images of `%s` (`--calib-count %d`, seed 0), evaluation on the "
      "200 images of `%s` with `%s` (COCO AP, pycocotools-exact). Every quantized row keeps the first conv at "
      "W8A8 (detq's default) and linear layers at W8A8; activation ranges static; ARCQ compensates the "
      "layers chosen by its default policy `top:0.9`; AdaRound runs detq's default of %s iterations per layer "
      "(fewer than the paper's 10–20k, arcq.md §7); bias-correction adds to each layer's bias the mean per-channel "
      "output shift measured on that layer's calibration patches (float-model inputs, the layer's weights and "
      "activations quantized), layer by layer in execution order but not through the already quantized "
      "layers before it, and its per-layer report gives the error before and after the shift. *Drop* is AP − FP32 AP in points. *Quantize s* is the wall time of the whole "
      "`detq quantize` process (loading, calibration, search, writing). *Extra MACs* is the compensation's "
      "multiply-accumulates in %% of all conv/linear MACs of the model; *extra bits* is the remainder codes in "
      "%% of the integer weight bits of the quantized layers of that row (report `totals`)." % (
          CALIB_COUNT, SHAPES_CALIB, CALIB_COUNT, SHAPES_VAL_IMAGES, SHAPES_VAL_ANN,
          "/".join(sorted({str(r["adaround_iterations"]) for e in data.get("models", {}).values() for r in e["rows"]
                           if r.get("adaround_iterations")})) or "?"))
    w("")
    w("Commands (the script runs, per row):")
    w("")
    w("```sh")
    w("detq quantize --model M --weights W --calib-images CALIB --calib-count 32 --method METHOD \\")
    w("    --wbits B --abits B --granularity G --scope S --out Q.safetensors --report Q.report.json")
    w("detq eval --model M --weights W [--quantized Q.safetensors] --images datasets/shapes/val/images \\")
    w("    --annotations datasets/shapes/val/instances.json --results R.json --report E.json      # detectors")
    w("detq classify --model mobilenet_v2 --weights W [--quantized Q.safetensors] --top 1000 --json C.json \\")
    w("    ../shared/data/photos/*                                                                # classifier")
    w("```")
    w("")
    w("and the script itself was run as (latest first):")
    w("")
    w("```sh")
    for c in reversed(data.get("invocations", [])):
        w("%s   # %s" % (c["command"], c["when"]))
    w("```")
    w("")
    models = data.get("models", {})
    detectors = [m for m in sorted(models) if models[m]["kind"] == "detector"]
    missing = [m for m in shipped_detectors() if m not in models]
    if missing:
        w("Shipped detectors not in this report yet: %s (run the script with `--models NAME --merge`)." % ", ".join(
            "`%s`" % m for m in missing))
        w("")
    classifiers = [m for m in sorted(models) if models[m]["kind"] == "classifier"]
    if detectors:
        w("## Summary")
        w("")
        w("| model | FP32 AP | W8A8 rtn pc | W4A4 rtn pt | W4A4 arcq pt | W4A4 rtn pc | W4A4 mse pc | W4A4 bc pc | "
          "W4A4 adaround pc | W4A4 arcq pc |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for m in detectors:
            e = models[m]
            rows = e["rows"]
            cells = [f1(quality(e, rows[0]))]
            for meth, wb, g in (("rtn", 8, "per-channel"), ("rtn", 4, "per-tensor"), ("arcq", 4, "per-tensor"),
                                ("rtn", 4, "per-channel"), ("mse", 4, "per-channel"), ("bias-correction", 4, "per-channel"),
                                ("adaround", 4, "per-channel"), ("arcq", 4, "per-channel")):
                r = find(rows, meth, wb, g, SCOPE_ALL)
                if r and r["status"] == "ok":
                    cells.append(f1(quality(e, r)))
                else:
                    cells.append("not run" if r and r.get("error", "").startswith("not run") else "error")
            w("| %s | %s |" % (model_label(e), " | ".join(cells)))
        w("")
        w("AP ×100, scope all; pt = per-tensor, pc = per-channel, bc = bias-correction.")
        w("")
        render_w8_summary(w, [models[m] for m in detectors])
    for m in detectors:
        render_detector(w, models[m])
    for m in classifiers:
        render_classifier(w, models[m])
    render_r50(w, data.get("r50_timing"))
    return "\n".join(L) + "\n"


def render_w8_summary(w, entries):
    """The W8A8 RTN losses of every detector, on the 200 validation images and (where measured) the
    held-out ones, each ± its bootstrap standard error."""
    if not any(r.get("bootstrap") for e in entries for r in e["rows"]):
        return
    w("W8A8 RTN losses (AP points, ± standard error over the images by a paired bootstrap; the bound is 0.5):")
    w("")
    w("| model | images | %s |" % " | ".join(granularity_label(g) for g in W8_GRANULARITIES))
    w("| --- | --- | %s |" % " | ".join("---:" for _ in W8_GRANULARITIES))

    def cell(loss, b):
        if loss is None:
            return ""
        return "%s ± %.2f" % (fsigned_plain(loss), b["standard_error"]) if b else fsigned_plain(loss)

    for e in entries:
        fp = quality(e, e["rows"][0])
        val = []
        for g in W8_GRANULARITIES:
            r = find(e["rows"], "rtn", 8, g, SCOPE_ALL)
            q = quality(e, r)
            val.append(cell(fp - q if fp is not None and q is not None else None, (r or {}).get("bootstrap")))
        w("| %s | val, 200 | %s |" % (model_label(e), " | ".join(val)))
        held = e.get("heldout") or {}
        if held.get("rows"):
            cells = []
            for g in W8_GRANULARITIES:
                h = heldout_row(e, g)
                cells.append(cell(h.get("loss"), h.get("bootstrap")))
            w("| %s | held-out, %d | %s |" % (model_label(e), held["images"], " | ".join(cells)))
        for larger in larger_heldout(e):
            cells = [cell(larger["loss"], larger["bootstrap"]) if larger["granularity"] == g else "" for g in W8_GRANULARITIES]
            w("| %s | held-out, %d | %s |" % (model_label(e), larger["images"], " | ".join(cells)))
    w("")
    if any(larger_heldout(e) for e in entries):
        w("(Rows of more held-out images: `eval/heldout_loss.py`, the same quantized file on the first N images of "
          "the held-out generator, seed 3; figures in `%s`.)" % HELDOUT_LOSS_JSON)
        w("")


def first_2000_agreement(entry, measured):
    """How the larger measurement's first 2000 images compare with the report's own held-out row."""
    own = heldout_row(entry, measured["granularity"]).get("loss")
    if own is None:
        return ""
    same = abs(own - measured["first_2000"]["loss"]) < 0.01
    return ", %s the held-out row above (%.2f)" % ("as" if same else "against", own)


def larger_heldout(entry):
    """`eval/heldout_loss.py`'s measurements of this model's rows, where made from the same weights and
    quantized files as the rows of `entry`."""
    if not exists(HELDOUT_LOSS_JSON):
        return []
    weights = file_sha256(entry["weights"]) if exists(entry["weights"]) else None
    tags = {r["tag"] for r in entry["rows"]}
    return [m for row_tag, m in sorted(load_json(HELDOUT_LOSS_JSON).get(entry["model"], {}).items())
            if row_tag in tags and m.get("weights_sha256") == weights]


def render_run_line(w, e):
    for note in e.get("notes", []):
        w("**Note.** %s" % note)
        w("")
    runs = e.get("runs")
    if runs:
        parts = ["detq commands started between %s and %s" % (runs["first_started"], runs["last_started"])]
        if runs["loadavg_1min_min"] is not None:
            parts.append("1-min load average at their starts %.1f–%.1f" % (runs["loadavg_1min_min"], runs["loadavg_1min_max"]))
        if runs["binaries"]:
            parts.append("detq binary sha256 %s" % ", ".join(runs["binaries"]))
        if runs["unknown_binary"]:
            parts.append("load and binary not recorded for %d commands (run by the first version of this script)"
                         % runs["unknown_binary"])
        parts.append("table assembled %s at repository HEAD %s" % (e["finished"], e.get("git_head", "?")))
        w("; ".join(parts) + ".")
        if len(runs["binaries"]) > 1:
            w("The rows were made by more than one build of detq (rebuilt in between by other work on the repository).")
        w("")
        return
    w("Run %s → %s, load average (1/5/15 min) %s at the start, %s at the end; detq binary sha256 %s (built %s)%s; "
      "repository HEAD %s." % (
          e["started"], e["finished"], "/".join("%.2f" % x for x in e["loadavg_start"]),
          "/".join("%.2f" % x for x in e["loadavg_end"]), e["detq_binary"]["sha256"], e["detq_binary"]["mtime"],
          "" if e["detq_binary_end"]["sha256"] == e["detq_binary"]["sha256"]
          else " — **the binary changed during the run** (now %s)" % e["detq_binary_end"]["sha256"],
          e.get("git_head", "?")))
    if e.get("reused_results"):
        w("(Figures reused from files already in out/quantization; the times and loads above are of the re-use, "
          "not of the runs.)")
    w("")


def render_checks(w, e):
    w("Checks:")
    w("")
    larger = [heldout_check(m["images"], "%s, `eval/heldout_loss.py`" % m["granularity"], m["fp32_stats"], m["stats"],
                            m["loss"], m["bootstrap"]) for m in larger_heldout(e)]
    for c in e["checks"] + larger:
        w("- %s: **%s** (%s)" % (c["check"], c["result"], c["detail"]))
    w("")
    held = e.get("heldout")
    if held and held.get("fp32_stats"):
        w("Held-out images: the %d images of `datasets/shapes` split `heldout` (the same generator as `val`, seed 3; "
          "not committed, `--heldout` generates them), FP32 %.1f AP there; the quantized files are the rows above; "
          "paired bootstrap over those images with %d draws. Ten times the images of `val` shrink the standard error "
          "of a loss about three times." % (held["images"], 100 * held["fp32_stats"][0], HELDOUT_BOOTSTRAP))
        w("")


def stale_weights(entry):
    """The current sha256 of the entry's weights file when it is not the one the entry was measured on
    (the model was retrained or replaced since); None when they agree or nothing was recorded."""
    recorded = entry.get("weights_sha256")
    if not recorded or not exists(entry["weights"]):
        return None
    current = file_sha256(entry["weights"])
    return current if current != recorded else None


def model_label(e):
    """The model's name in the summary tables, flagged when its figures are of earlier weights."""
    return e["model"] + (" (earlier weights)" if stale_weights(e) else "")


def render_stale_warning(w, e):
    current = stale_weights(e)
    if current:
        w("> **Measured on earlier weights.** These figures are of `%s` with sha256 %s…; the file now has sha256 %s…. "
          "Rerun: `python3 eval/quantization_report.py --models %s --merge --heldout`." % (
              e["weights"], e["weights_sha256"][:12], current[:12], e["model"]))
        w("")


def render_detector(w, e):
    w("## %s" % e["model"])
    w("")
    render_stale_warning(w, e)
    extra = ""
    if e.get("training_val_AP") is not None:
        extra = " (training.json records FP32 AP %.1f on the same images)" % (100 * e["training_val_AP"])
    w("Weights `%s`%s. Model: %.2f GMAC per image in its conv layers (calibration image size)." % (
        e["weights"], extra, (e.get("model_macs_per_image") or 0) / 1e9))
    w("")
    render_run_line(w, e)
    w("| bits | method | granularity | scope | AP | AP50 | AP75 | APs | APm | APl | drop | quantize s | "
      "extra MACs % | extra bits % | compensated |")
    w("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in e["rows"]:
        bits = "FP32" if r["method"] == "fp32" else "W%dA%d" % (r["wbits"], r["abits"])
        meth = "—" if r["method"] == "fp32" else r["method"]
        gran = "—" if r["method"] == "fp32" else granularity_label(r["granularity"])
        scope = "—" if r["method"] == "fp32" else scope_label(r["scope"])
        if r["status"] != "ok":
            w("| %s | %s | %s | %s | error: %s | | | | | | | %s | | | |" % (
                bits, meth, gran, scope, r.get("error", "?").replace("|", "\\|"), f1(r.get("quantize_wall_s"))))
            continue
        t = r.get("totals") or {}
        comp = "" if r["method"] == "fp32" else "%d/%d" % (t.get("compensated_layers", 0), t.get("layers", 0))
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            bits, meth, gran, scope, f1(r["AP"]), f1(r["AP50"]), f1(r["AP75"]), f1(r["APs"]), f1(r["APm"]), f1(r["APl"]),
            "" if r["method"] == "fp32" else fsigned(r.get("drop")), f1(r.get("quantize_wall_s")),
            fpct(r.get("extra_macs_pct")), fpct(r.get("extra_bits_pct")), comp))
    w("")
    render_checks(w, e)
    render_analysis(w, e)


def render_classifier(w, e):
    w("## %s (classifier)" % e["model"])
    w("")
    render_stale_warning(w, e)
    w("Weights `%s` (ImageNet). Calibration: the %d photos of `%s` (`--calib-count %d` takes all there are); "
      "evaluation on the same %d photos, so this measures agreement with FP32, not accuracy. *Top-1 agree* is "
      "the number of photos whose quantized top-1 class equals FP32's; *in top-5* counts FP32's top-1 among the "
      "quantized top-5; *KL* is the mean KL(FP32 ‖ quantized) of the 1000-class softmax (from `--top 1000`). "
      "The classifier's last layer is linear, so W8A8 in every row. %.2f GMAC per image." % (
          e["weights"], e["evaluation"]["count"], PHOTOS, CALIB_COUNT, e["evaluation"]["count"],
          (e.get("model_macs_per_image") or 0) / 1e9))
    w("")
    render_run_line(w, e)
    w("| bits | method | granularity | top-1 agree | % | in top-5 | KL | quantize s | extra MACs % | extra bits % | compensated |")
    w("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in e["rows"]:
        bits = "FP32" if r["method"] == "fp32" else "W%dA%d" % (r["wbits"], r["abits"])
        meth = "—" if r["method"] == "fp32" else r["method"]
        gran = "—" if r["method"] == "fp32" else granularity_label(r["granularity"])
        if r["status"] != "ok":
            w("| %s | %s | %s | error: %s | | | | %s | | | |" % (bits, meth, gran, r.get("error", "?").replace("|", "\\|"),
                                                              f1(r.get("quantize_wall_s"))))
            continue
        if r["method"] == "fp32":
            w("| FP32 | — | — | (reference) | 100.0 | | 0 | | | | |")
            continue
        a = r["agreement"]
        t = r.get("totals") or {}
        w("| %s | %s | %s | %d/%d | %.1f | %d/%d | %.3f | %s | %s | %s | %d/%d |" % (
            bits, meth, gran, a["top1_agree"], a["images"], 100 * a["top1_agreement"], a["fp32_top1_in_top5"], a["images"],
            a["mean_kl"], f1(r.get("quantize_wall_s")), fpct(r.get("extra_macs_pct")), fpct(r.get("extra_bits_pct")),
            t.get("compensated_layers", 0), t.get("layers", 0)))
    w("")
    for r in e["rows"]:
        if r["method"] == "rtn" and r["wbits"] == 8 and r.get("agreement", {}).get("flipped"):
            w("W8A8 rtn %s changes the top-1 class of: %s." % (granularity_label(r["granularity"]), "; ".join(
                "%s (FP32 %s at p = %.2f, runner-up at %.2f → %s at %.2f)" % (
                    f["file"], f["fp32_top1"], f["fp32_p1"], f["fp32_p2"], f["quantized_top1"], f["quantized_p1"] or 0)
                for f in r["agreement"]["flipped"])))
            w("")
    render_checks(w, e)
    render_analysis(w, e)


def narrow_text(n):
    if not n:
        return ""
    return (" (in `%s`, %d of %d channels span less than 1/16 of the layer's range, so a per-tensor 8-bit grid "
            "leaves them fewer than 16 levels; the widest channel's range is %.0f× the median)" % (
                n["path"], n["below_one_sixteenth"], n["channels"], n["max_over_median"]))


def render_torch_crosscheck(w, e):
    """The W8A8 RTN rows of an independent torch fake quantization (eval/fakequant_torch.py) of the same weights."""
    if not os.path.exists(os.path.join(ROOT, FAKEQUANT_JSON)) or not exists(e["weights"]):
        return
    torch_entry = load_json(FAKEQUANT_JSON).get(e["model"])
    if not torch_entry or torch_entry.get("weights_sha256") != file_sha256(e["weights"]):
        return
    rows = torch_entry["rows"]
    if "fp32" not in rows:
        return

    def loss(key):
        """AP points lost by the torch row `key` against torch's FP32."""
        return 100 * (rows["fp32"]["AP"] - rows[key]["AP"])

    parts, differences = [], []
    detq_fp = quality(e, e["rows"][0])
    for key, granularity in (("w8a8 rtn per-channel/static", "per-channel"), ("w8a8 rtn per-tensor/static", "per-tensor")):
        detq_row = find(e["rows"], "rtn", 8, granularity, SCOPE_ALL)
        detq_q = quality(e, detq_row) if detq_row is not None else None
        if key in rows and detq_fp is not None and detq_q is not None:
            differences.append(abs(loss(key) - (detq_fp - detq_q)))
            parts.append("%s %.1f AP, a loss of %.2f (detq %.2f)" % (granularity, 100 * rows[key]["AP"], loss(key), detq_fp - detq_q))
    dynamic = "w8a8 rtn per-channel/dynamic"
    if dynamic in rows:
        parts.append("per-channel with dynamic activation ranges (each input's own min/max, the reference code's "
                     "mode) %.1f AP, a loss of %.2f" % (100 * rows[dynamic]["AP"], loss(dynamic)))
    if parts:
        w("Cross-check: an independent fake quantization in torch of the same weights and recipe "
          "(`.venv-ref/bin/python eval/fakequant_torch.py --models %s`: BN folded, min/max ranges, static "
          "activation ranges the mean of per-image min/max over the same 32 calibration images) gives W8A8 RTN %s.%s" % (
              e["model"], "; ".join(parts),
              "" if not differences else " The two implementations' losses differ by at most %.2f AP points%s." % (
                  max(differences), ", so the W8A8 loss belongs to the model and the recipe, not to detq's implementation"
                  if max(differences) <= 0.25 else "")))
        w("")
    held_key = "w8a8 rtn per-channel/static (heldout)"
    held = heldout_row(e, "per-channel")
    if held_key in rows and "fp32 (heldout)" in rows and held.get("loss") is not None:
        torch_loss = 100 * (rows["fp32 (heldout)"]["AP"] - rows[held_key]["AP"])
        w("On the %d held-out images (`--split heldout`) the torch fake quantization loses %.2f AP with W8A8 RTN "
          "per-channel (FP32 %.1f), detq %.2f." % (e["heldout"]["images"], torch_loss,
                                                  100 * rows["fp32 (heldout)"]["AP"], held["loss"]))
        parts_held = [(what, rows[key + " (heldout)"]["AP"]) for what, key in (
            ("8-bit per-channel weights alone (activations float)", "w8a8 rtn per-channel/weights-only"),
            ("8-bit static activations alone (weights float)", "w8a8 rtn per-channel/acts-only"))
            if key + " (heldout)" in rows]
        if parts_held:
            fp_held = rows["fp32 (heldout)"]["AP"]
            noise_held = [100 * (fp_held - rows[k]["AP"]) for k in sorted(rows)
                          if k.startswith("w8a8 rtn per-channel/noise:") and k.endswith(" (heldout)")]
            w("")
            w("Split there the same way (torch): %s; the two together %.2f.%s" % (
                "; ".join("%s lose %.2f AP" % (what, 100 * (fp_held - ap)) for what, ap in parts_held), torch_loss,
                "" if not noise_held else " Uniform noise of one 8-bit step on the float weights instead of rounding "
                "them (activations float, %d seeds) loses %s." % (
                    len(noise_held), " and ".join(("%.2f" % v).replace("-", "−") for v in noise_held))))
        w("")
    weights_only, acts_only = "w8a8 rtn per-channel/weights-only", "w8a8 rtn per-channel/acts-only"
    noise = [loss(k) for k in sorted(rows) if k.startswith("w8a8 rtn per-channel/noise:")]
    if weights_only in rows and acts_only in rows and noise:
        rounding = loss(weights_only)
        w("Where that loss comes from (the same torch script): 8-bit per-channel weights alone (activations float) "
          "lose %.2f AP, 8-bit static activations alone (weights float) %.2f. Uniform noise of one 8-bit step on the "
          "float weights instead of rounding them (%d seeds, activations float) loses %.2f on average (%s to %.2f): "
          "%s" % (rounding, loss(acts_only), len(noise), statistics.mean(noise), ("%.2f" % min(noise)).replace("-", "−"),
                  max(noise),
                  "rounding lies within that spread, so the weight part of the loss is this model's sensitivity to any "
                  "perturbation of that size, not a flaw of the rounding." if min(noise) <= rounding <= max(noise)
                  else "rounding costs %s than any of these random perturbations of the same size." % (
                      "more" if rounding > max(noise) else "less")))
        w("")


def render_analysis(w, e):
    an = e.get("analysis") or {}
    w8 = an.get("w8a8_granularity") or {}
    failed = [c for c in e.get("checks", []) if c["check"].startswith("W8A8 RTN loses") and c["result"] == "no"
              and "held-out" not in c["check"]]
    pc_failed = any("(per-channel)" in c["check"] for c in failed)
    pt_failed = any("(per-tensor)" in c["check"] for c in failed)
    pc_held = heldout_row(e, "per-channel")
    pc_held_passes = pc_held.get("loss") is not None and pc_held["loss"] <= 0.5
    pc_misses = pc_failed and not pc_held_passes
    # a measurement on more held-out images (eval/heldout_loss.py) decides where it exists
    pc_larger = [m for m in larger_heldout(e) if m["granularity"] == "per-channel"]
    pc_larger_over = any(m["loss"] > 0.5 for m in pc_larger)
    pt_held = heldout_row(e, "per-tensor")
    pt_held_passes = pt_held.get("loss") is not None and pt_held["loss"] <= 0.5
    if w8.get("top") and pt_failed:
        w("W8A8 RTN per-tensor misses the 0.5 AP bound%s%s; the two differ only in the weight "
          "grid (activations are per-tensor in both). Summed over layers, the relative output error Σ(Y−Ŷ)²/ΣY² is "
          "%.3g per-tensor against %.3g per-channel: most of it is the 8-bit quantization of the activations (rounding and clipping at the static ranges), common to both, and the "
          "per-tensor weight grid adds its part in a few layers, above all early depthwise convs, whose error then "
          "passes through the whole network: %s. After BatchNorm folding, the channels of MobileNetV2's depthwise "
          "convs have weight ranges an order of magnitude apart%s. This is the known per-tensor weakness of MobileNetV2 (Nagel et al. 2019, data-free "
          "quantization); per-channel weights (`--granularity per-channel`) are the remedy%s." % (
              " on the validation images (on the held-out ones it loses %.2f, within)" % pt_held["loss"]
              if pt_held_passes else "",
              " and so, narrowly, does per-channel" if pc_misses else
              " where per-channel meets it (on the held-out images, below)" if pc_failed else
              " where per-channel meets it on the validation images (on the held-out ones per-channel loses %.2f ± %.2f, "
              "%s%s)" % (pc_held["loss"], pc_held["bootstrap"]["standard_error"],
                         "at the bound" if pc_held["loss"] > 0.5 else "within it", "".join(
                  "; on %d of them %.2f ± %.2f, %s it" % (m["images"], m["loss"], m["bootstrap"]["standard_error"],
                                                           "over" if m["loss"] > 0.5 else "within")
                  for m in pc_larger))
              if pc_held.get("loss") is not None and (pc_held["loss"] > 0.5 or pc_larger_over) and pc_held.get("bootstrap") else
              " where per-channel meets it",
              w8["sum_rse_per_tensor"], w8["sum_rse_per_channel"],
              "; ".join("`%s` (%s, %.2g → %.2g per-channel)" % (t["path"], t["kind"], t["rse_per_tensor"], t["rse_per_channel"])
                        for t in w8["top"]), narrow_text(w8.get("narrow_channels")),
              "" if pc_misses or pc_larger_over else ", and W8A8 RTN per-channel stays within the bound"))
        w("")
        kept = find(e["rows"], "rtn", 8, BN_KEPT, SCOPE_ALL)
        fp, q = quality(e, e["rows"][0]), quality(e, kept)
        if fp is not None and q is not None:
            n = w8.get("narrow_channels")
            w("With the batch norms kept (`--batchnorm keep`: per-tensor ranges of the convs before folding, the "
              "reference code's grid, stored as one step per channel), W8A8 RTN per-tensor gets %.1f AP, a loss of "
              "%.2f AP: %s the bound%s." % (
                  q, fp - q, "within" if fp - q <= 0.5 else "still outside",
                  "" if not n or "unfolded_below_one_sixteenth" not in n else
                  " (before folding, %d of the %d channels of `%s` span less than 1/16 of its range, the widest %.1f× "
                  "the median)" % (n["unfolded_below_one_sixteenth"], n["channels"], n["path"],
                                    n["unfolded_max_over_median"])))
            w("")
    if w8.get("per_channel_top") and pc_failed:
        render_per_channel_w8(w, e, w8["per_channel_top"], pc_held if pc_held_passes else None)
    render_w8_intervals(w, e)
    render_torch_crosscheck(w, e)
    kinds = an.get("rtn_rse_by_kind", {})
    if kinds.get("per-tensor", {}).get("depthwise"):
        pt, pc = kinds["per-tensor"], kinds.get("per-channel", {})
        w("Depthwise convs under per-tensor 4-bit (arcq.md §8): RTN W4A4's median per-layer relative output error "
          "Σ(Y−Ŷ)²/ΣY² is %.3g on the %d depthwise layers against %.3g on the other 4-bit convs; per-channel "
          "brings the depthwise median to %s." % (
              pt["depthwise"]["median_rse"], pt["depthwise"]["layers"], pt.get("conv", {}).get("median_rse", float("nan")),
              ("%.3g" % pc["depthwise"]["median_rse"]) if pc.get("depthwise") else "?"))
        w("")
    cost = an.get("arcq_layers", {})
    for g, c in cost.items():
        if c["not_compensated"]:
            w("ARCQ %s compensates %d of %d layers; the 4-bit layers it leaves uncompensated (top:0.9): %s." % (
                g, c["compensated"], c["layers"], ", ".join("`%s`" % p for p in c["not_compensated"])))
    if cost:
        w("")
    parts = an.get("median_rse_by_part", {})
    if parts:
        present = {p for v in parts.values() for p in v}
        names = [p for p in ("backbone", "neck", "head") if p in present] + sorted(present - {"backbone", "neck", "head"})
        w("Median per-layer relative output error (layer by layer on float inputs from the calibration images, "
          "from the `--report` files; lower is better):")
        w("")
        w("| method | granularity | %s |" % " | ".join(names))
        w("| --- | --- | %s |" % " | ".join("---:" for _ in names))
        for k, v in parts.items():
            m, g = k.rsplit(" ", 1)
            w("| %s | %s | %s |" % (m, g, " | ".join("%.3g" % v[p] if p in v else "" for p in names)))
        w("")
        same = [g for g, v in an.get("bias_correction_report_equals_rtn", {}).items() if v]
        if same:
            w("Note: the bias-correction `--report` gives exactly RTN's per-layer errors (%s): detq adds the measured "
              "output shift to the layer's bias, and the per-layer errors are computed on bias-free outputs, so the "
              "correction's effect is not in the per-layer report (it is in the AP)." % ", ".join(same))
            w("")
    notes = an.get("arcq_not_better", [])
    if not notes:
        w("ARCQ W4A4 beats MSE, bias-correction and AdaRound at both granularities (scope all).")
        w("")
        return
    w("### Where ARCQ W4A4 does not beat a baseline")
    w("")
    for n in notes:
        unit = "AP" if e["kind"] == "detector" else "% top-1 agreement"
        w("**%s, vs %s:** ARCQ %.1f, %s %.1f %s." % (n["granularity"], n["baseline"], n["arcq"], n["baseline"],
                                                     n["baseline_value"], unit))
        if "layers_compared" not in n:
            w("")
            continue
        parts_txt = []
        for part, d in n["by_part"].items():
            parts_txt.append("%s: worse on %d of %d layers, summed error %.3g vs %.3g" % (
                part, d["arcq_worse"], d["layers"], d["arcq_sum_rse"], d["base_sum_rse"]))
        w("Per-layer relative output error: ARCQ is worse than %s on %d of %d 4-bit layers (%s)." % (
            n["baseline"], n["arcq_worse_layers"], n["layers_compared"], "; ".join(parts_txt)))
        if n["top_layers"]:
            w("")
            w("| layer | kind | compensated | rel. error arcq | rel. error %s | L2.4 err arcq uncomp. → final | L2.4 err %s | "
              "weight range arcq / %s | act. range arcq / %s |" % (n["baseline"], n["baseline"], n["baseline"], n["baseline"]))
            w("| --- | --- | --- | ---: | ---: | --- | ---: | --- | --- |")
            for t in n["top_layers"]:
                wa, wb = t["weight_range_arcq"], t["weight_range_base"]
                act = ""
                if t.get("act_range_arcq"):
                    act = "[%.3g, %.3g] / [%.3g, %.3g]" % (tuple(t["act_range_arcq"]) + tuple(t["act_range_base"]))
                w("| `%s` | %s | %s | %.3g | %.3g | %.3g → %.3g | %.3g | [%.3g, %.3g] / [%.3g, %.3g] | %s |" % (
                    t["path"], t["kind"], "yes" if t["compensated"] else "no", t["rse_arcq"], t["rse_base"],
                    t["err_arcq_uncompensated"], t["err_arcq_final"], t["err_base"], wa[0], wa[1], wb[0], wb[1], act))
            w("")
        w(explain(n))
        w("")


def render_per_channel_w8(w, e, top, held_pass=None):
    """Why W8A8 RTN per-channel misses on the validation images: its worst layers, their static
    ranges against the images' own ranges, and what dynamic ranges make of them. `held_pass`: the
    held-out row, when the loss there is within the bound."""
    def layer_text(t):
        text = "`%s` (%s, %.2g [%s]" % (t["path"], t["kind"], t["rse"],
                                         "?" if t.get("rse_per_tensor") is None else "%.2g" % t["rse_per_tensor"])
        if t.get("activation_ranges"):
            text += "; static input range [%.3g, %.3g]" % tuple(t["activation_ranges"][0])
            s = t.get("input_range_spread")
            if s:
                text += ", the images' own maxima %.3g to %.3g (median %.3g)" % (s["high"][0], s["high"][2], s["high"][1])
        if t.get("rse_dynamic") is not None:
            text += "; %.2g with dynamic ranges" % t["rse_dynamic"]
        return text + ")"
    if held_pass:
        fp = quality(e, e["rows"][0])
        q = quality(e, find(e["rows"], "rtn", 8, "per-channel", SCOPE_ALL))
        b, hb = find(e["rows"], "rtn", 8, "per-channel", SCOPE_ALL).get("bootstrap"), held_pass.get("bootstrap")
        w("On the 200 validation images W8A8 RTN per-channel loses %.2f AP%s, over the bound; on the %d held-out "
          "images it loses %.2f%s, within it: the validation figure is the larger one by the chance of which images "
          "the 200 are (the two intervals overlap)." % (
              fp - q, " (± %.2f)" % b["standard_error"] if b else "", e["heldout"]["images"], held_pass["loss"],
              " (± %.2f, 95 %% interval [%.2f, %.2f])" % (hb["standard_error"], hb["interval_95"][0], hb["interval_95"][1])
              if hb else ""))
        w("")
    w("%s largest per-layer relative output errors (per-tensor weights "
      "in brackets) are at inputs with wide calibrated static ranges (the mean over the calibration images of each "
      "image's min and max, arcq.md §6), not from the weight grid: %s." % (
          "W8A8 RTN per-channel's" if held_pass else "W8A8 RTN per-channel misses the bound too. Its",
          "; ".join(layer_text(t) for t in top)))
    dynamic_rse = [t.get("rse_dynamic") for t in top]
    spreads = [t.get("input_range_spread") for t in top]
    if all(d is not None for d in dynamic_rse) and all(d < t["rse"] / 10 for d, t in zip(dynamic_rse, top)):
        text = ("With each input's own range (`--act-ranges dynamic`) these errors fall by more than ten times: "
                "8 bits are enough for any one image, and the error is the static range's")
        if all(spreads) and all(s["high"][2] > 2 * s["high"][1] for s in spreads):
            text += (": the images' maxima spread widely, so the averaged range is wider than most images need and "
                     "narrower than the widest, which it clips")
        w("")
        w(text + ".")
    fp = quality(e, e["rows"][0])
    dyn = quality(e, find(e["rows"], "rtn", 8, DYNAMIC, SCOPE_ALL))
    if fp is not None and dyn is not None:
        w("With dynamic ranges W8A8 RTN per-channel loses %.2f AP%s." % (
            fp - dyn, ": the per-layer errors of the static ranges are not the whole of the loss"
            if fp - dyn > 0.5 else ""))
    w("")


def render_w8_intervals(w, e):
    """The W8A8 RTN checks whose bound lies inside the bootstrap interval of the loss."""
    inside = []
    for g in W8_GRANULARITIES:
        row = find(e["rows"], "rtn", 8, g, SCOPE_ALL)
        b = (row or {}).get("bootstrap")
        if b and b["interval_95"][0] <= 0.5 <= b["interval_95"][1]:
            inside.append("%s %.2f [%s, %.2f]" % (granularity_label(g), b["drop"], fsigned_plain(b["interval_95"][0]),
                                                 b["interval_95"][1]))
    if not inside:
        return
    def error_range(boots):
        low, high = min(b["standard_error"] for b in boots), max(b["standard_error"] for b in boots)
        return "%.2f" % low if round(low, 2) == round(high, 2) else "%.2f–%.2f" % (low, high)

    boots = [r["bootstrap"] for r in e["rows"] if r.get("bootstrap")]
    w("How well 200 images measure a W8A8 loss (paired bootstrap over the evaluation images, %d draws, "
      "`detq cocoeval --compare --bootstrap`): the 0.5 AP bound lies inside the 95 %% interval of %s (loss [interval]). "
      "On these images such a loss can be told neither within nor outside the bound; the standard errors of the "
      "W8A8 losses are %s AP points." % (boots[0]["resamples"], "; ".join(inside), error_range(boots)))
    held = [h["bootstrap"] for h in ((e.get("heldout") or {}).get("rows") or {}).values() if h.get("bootstrap")]
    if held:
        w("")
        w("On the %d held-out images the same losses have standard errors of %s AP points (the checks above)." % (
            e["heldout"]["images"], error_range(held)))
    for m in larger_heldout(e):
        b = m["bootstrap"]
        w("")
        w("On %d held-out images (`eval/heldout_loss.py`; one measurement, its size and decision rule fixed before it "
          "ran) W8A8 RTN %s loses %.2f ± %.2f AP (95 %% interval [%.2f, %.2f]): %s the bound. Its first 2000 images "
          "(the held-out split) give %.2f ± %.2f%s." % (
              m["images"], granularity_label(m["granularity"]), m["loss"], b["standard_error"], b["interval_95"][0],
              b["interval_95"][1], "over" if m["loss"] > 0.5 else "within", m["first_2000"]["loss"],
              m["first_2000"]["standard_error"], first_2000_agreement(e, m)))
    w("")


def explain(n):
    """A short reading of the per-layer figures: clipping or rounding, which layers."""
    top = n["top_layers"]
    cs, ms = n.get("clip_search") or {}, n.get("mse_search") or {}
    sentences = []
    if n["arcq_worse_layers"] * 2 < n["layers_compared"]:
        sentences.append("Layer by layer ARCQ's output error is lower than %s's on most layers, so its lower "
                         "score is not visible in the local errors: it comes from how the remaining errors add up "
                         "through the network (errors that are small per layer but systematic, e.g. an output mean "
                         "shift that bias-correction removes and ARCQ does not) rather than from one bad layer." % n["baseline"])
    if top:
        uncomp = [t for t in top if not t["compensated"]]
        comp = [t for t in top if t["compensated"]]
        if comp:
            clipped = [t for t in comp if t.get("err_w8a8") is not None and t["err_arcq_final"] > 3 * t["err_w8a8"]]
            rr = [t["rounding_removed_pct"] for t in comp if t.get("rounding_removed_pct") is not None]
            sentences.append("On the compensated layers where ARCQ is worst (%s), compensation removes %s of ARCQ's own "
                             "W4A4 error; what is left is %s." % (
                                 ", ".join("`%s`" % t["path"] for t in comp),
                                 ("%.0f–%.0f %%" % (min(rr), max(rr))) if rr else "part",
                                 "mostly clipping (the remainder code only fixes the fractional part; a value beyond the "
                                 "range keeps its clipped part — the final error stays above the W8A8 error of the same "
                                 "layer on %d of them)" % len(clipped) if clipped else
                                 "second-order rounding (the dropped cross term and the rounded correction)"))
        if uncomp:
            sentences.append("%s not compensated by the top:0.9 policy, so ARCQ runs %s as plain 4-bit rounding with ranges "
                             "searched on a grid of %s steps of %s of min/max (at most %.0f %% shrink), while %s %s." % (
                                 ", ".join("`%s`" % t["path"] for t in uncomp), "it" if len(uncomp) == 1 else "them",
                                 cs.get("grid_size"), cs.get("step"),
                                 100 * (cs.get("grid_size") or 0) * (cs.get("step") or 0), n["baseline"],
                                 ("searches a grid of %s shrink steps of %s on the weights and the activations" % (
                                     ms.get("grid_size"), ms.get("step")))
                                 if n["baseline"] == "mse" else "keeps min/max ranges but corrects the output mean"))
        narrower = [t for t in top if (t["weight_range_base"][1] - t["weight_range_base"][0])
                    < 0.95 * (t["weight_range_arcq"][1] - t["weight_range_arcq"][0])]
        if narrower and n["baseline"] == "mse":
            sentences.append("On %d of these layers MSE's weight range is over 5 %% narrower than ARCQ's: MSE clips "
                             "more and rounds finer, which pays where the weight distribution has outliers "
                             "(depthwise convs above all)." % len(narrower))
    if n.get("baseline_report_excludes_correction"):
        sentences.append("Caveat: bias-correction's per-layer errors in its report leave out its bias shift (see the note "
                         "above), so the layer figures compare ARCQ with bias-correction's rounding only.")
    return " ".join(sentences)


def render_r50(w, r):
    w("## Calibration time of a full-size R50 detector")
    w("")
    if not r:
        w("Not measured yet (`--r50-timing`).")
        w("")
        return
    w("`%s` (config `%s`) with seeded random weights `%s` (%.0f MB), made with the reference Python: "
      "`torch.set_num_threads(2); torch.manual_seed(0); torchvision.models.detection.retinanet_resnet50_fpn(weights=None, "
      "weights_backbone=None)`, `torch.save(model.state_dict(), …)`. The shapes images (256 px) are resized by the "
      "model's transform to its `min_size` 800. Measured %s:" % (
          r["model"], r["config"], r["weights"], r.get("weights_bytes", 0) / 1e6, r.get("started", "?")))
    w("")
    w("```sh")
    w(r.get("command", "?"))
    w("```")
    w("")
    if r.get("error"):
        w("**Failed:** %s" % r["error"])
        w("")
    tv = r.get("time_v") or {}
    if tv.get("wall_s") is not None:
        dr = r.get("detq_report") or {}
        during = r.get("loadavg_1min_during") or {}
        w("| wall s | user s | sys s | CPU s | CPU % | CPU s / 2 cores | max RSS MB | detq: calibration s | search s | "
          "load avg 1 min at start | during (mean / max) | ≤ 600 s wall |")
        w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        cpu = (tv.get("user_s") or 0) + (tv.get("sys_s") or 0)
        w("| %.0f | %.0f | %.0f | %.0f | %s | %.0f | %.0f | %s | %s | %.2f | %s | %s |" % (
            tv["wall_s"], tv.get("user_s") or 0, tv.get("sys_s") or 0, cpu,
            "%.0f" % tv["cpu_percent"] if tv.get("cpu_percent") is not None else "?", cpu / 2,
            (tv.get("max_rss_kb") or 0) / 1024, f1(dr.get("calibration_seconds")), f1(dr.get("search_seconds")),
            r["loadavg_start"][0], ("%.2f / %.2f" % (during["mean"], during["max"])) if during else "",
            "**yes**" if r.get("within_limit") else "**no**"))
        w("")
        t = dr.get("totals") or {}
        if t:
            w("%d layers quantized, %d compensated; %.1f GMAC per calibration image." % (
                t.get("layers", 0), t.get("compensated_layers", 0), t.get("multiply_accumulates", 0) / 1e9))
            w("")
        w("The machine is shared: the CPU time is what the run itself used, the wall time includes the time the "
          "other jobs took from it (load average above).")
        w("")


# ----------------------------------------------------------------------------------------------

def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_head():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return None


def shipped_detectors():
    found = []
    for d in sorted(glob.glob(os.path.join(ROOT, "detectors", "*_shapes"))):
        if os.path.isfile(os.path.join(d, "weights.safetensors")) and os.path.isfile(os.path.join(d, "config.json")):
            found.append(os.path.basename(d))
    return found


def machine():
    cpus = os.cpu_count()
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpus": cpus, "cpu_model": model, "platform": platform.platform(),
            "description": "%d cores%s, %s" % (cpus, (" (%s)" % model) if model else "", platform.system())}


def write_atomic(path, text):
    full = os.path.join(ROOT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    tmp = full + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, full)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detq", default=".build/release/detq", help="the detq binary (relative to the repository root)")
    parser.add_argument("--models", help="comma-separated subset: shipped detector names and/or mobilenet_v2 "
                                         "(default: every shipped detector and mobilenet_v2; 'none' for no model)")
    parser.add_argument("--merge", action="store_true", help="keep the other models of the existing quantization.json")
    parser.add_argument("--r50-timing", action="store_true", help="time ARCQ calibration of a random-weight RetinaNet-R50")
    parser.add_argument("--r50-timeout", type=int, default=3600, help="kill the R50 timing run after this many seconds")
    parser.add_argument("--r50-remake-weights", action="store_true", help="make the random R50 weights again")
    parser.add_argument("--row-timeout", type=int, default=3600, help="seconds per detq command before it counts as failed")
    parser.add_argument("--reuse", action="store_true", help="reuse rows already in out/quantization that were made from the same weights "
                        "(finishing an interrupted run; retrained weights are run again)")
    parser.add_argument("--render-only", action="store_true", help="write the markdown again from the JSON (and make "
                        "the W8A8 bootstraps that are missing)")
    parser.add_argument("--heldout", action="store_true", help="also evaluate FP32 and the W8A8 RTN rows on the 2000 "
                        "held-out images (datasets/shapes split heldout, generated when missing), with a bootstrap")
    parser.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap draws for each W8A8 RTN loss "
                        "(detq cocoeval --compare --bootstrap; 0: none)")
    parser.add_argument("--nice", type=int, default=5, help="lower this process's priority to at least this niceness")
    parser.add_argument("--stop-at", help="UTC time HH:MM: rows not started by then are recorded as not run")
    args = parser.parse_args()
    args.stop_at_text = args.stop_at
    if args.stop_at:
        hours, minutes = (int(x) for x in args.stop_at.split(":"))
        now = datetime.datetime.now(datetime.timezone.utc)
        target = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
        if target < now - datetime.timedelta(hours=12):
            target += datetime.timedelta(days=1)
        args.stop_at = target.timestamp()
        args.stop_at_text = target.strftime("%H:%M UTC")

    current = os.nice(0)
    if current < args.nice:
        os.nice(args.nice - current)

    def log(message):
        print("[%s] %s" % (time.strftime("%H:%M:%S"), message), file=sys.stderr, flush=True)

    if args.render_only:
        data = load_json(REPORT_JSON)
        # the analysis again, from the per-layer reports of the rows on disk (when every one is there)
        for model, entry in data.get("models", {}).items():
            bootstrap_w8(entry, args.bootstrap, log)
            derive(entry)
            paths = {r["tag"]: os.path.join(ROOT, OUT, model, r["tag"] + ".report.json")
                     for r in entry.get("rows", [])[1:] if r.get("status") == "ok"}
            if paths and all(exists(p) for p in paths.values()):
                entry["analysis"] = analyse(entry, {t: layer_summary(load_json(p)) for t, p in paths.items()})
        write_atomic(REPORT_JSON, json.dumps(data, indent=1, sort_keys=False) + "\n")
        write_atomic(REPORT_MD, render(data))
        log("wrote %s" % REPORT_MD)
        return

    previous = load_json(REPORT_JSON) if exists(REPORT_JSON) else {}
    data = {"format": "detq-quantization-report/1", "models": {}, "invocations": []}
    if args.merge:
        data["models"] = dict(previous.get("models", {}))
        data["invocations"] = list(previous.get("invocations", []))
    if previous.get("r50_timing"):
        data["r50_timing"] = previous["r50_timing"]  # the last measured figure stays
    data["machine"] = machine()

    if args.models is None:
        names = shipped_detectors() + [CLASSIFIER]
    elif args.models.strip() == "none":
        names = []
    else:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
    shipped = set(shipped_detectors())
    for n in names:
        if n != CLASSIFIER and n not in shipped:
            parser.error("%s is not a shipped detector with weights.safetensors and config.json (shipped: %s)" % (
                n, ", ".join(sorted(shipped)) or "none"))

    invocation = "python3 eval/quantization_report.py %s" % " ".join(shlex.quote(a) for a in sys.argv[1:])
    data["invocations"].append({"command": invocation.strip(), "when": utc_now()})
    os.makedirs(os.path.join(ROOT, OUT), exist_ok=True)
    runner = Runner(args.detq, log)

    finished = {}

    def save(measured_r50=False):
        # With --merge, another invocation may have written models meanwhile: read the file again and
        # replace only the models this one has finished.
        if args.merge and exists(REPORT_JSON):
            current = load_json(REPORT_JSON)
            data["models"] = {**current.get("models", {}), **finished}
            ours = data["invocations"][-1]
            data["invocations"] = [i for i in current.get("invocations", []) if i != ours] + [ours]
            if current.get("r50_timing") and not measured_r50:
                data["r50_timing"] = current["r50_timing"]
        data["updated"] = utc_now()
        write_atomic(REPORT_JSON, json.dumps(data, indent=1, sort_keys=False) + "\n")
        write_atomic(REPORT_MD, render(data))

    for n in names:
        kind = "classifier" if n == CLASSIFIER else "detector"
        log("model %s (%s)" % (n, kind))
        data["models"][n] = finished[n] = run_model(runner, n, kind, args, log)
        save()
    if args.r50_timing:
        data["r50_timing"] = r50_timing(runner, args, log)
    save(measured_r50=args.r50_timing)
    log("wrote %s and %s" % (REPORT_JSON, REPORT_MD))


if __name__ == "__main__":
    main()
