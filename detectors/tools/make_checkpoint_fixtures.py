#!/usr/bin/env python3
"""Writes the Checkpoints test fixtures and their expected values (torch 1.13 is the reference).

Run from anywhere with the reference environment:
    /work/main/.venv-ref/bin/python detectors/tools/make_checkpoint_fixtures.py
Outputs go to Tests/CheckpointsTests/Fixtures/. Hand-built files (zip64 archive, legacy
storage view, safetensors) are checked by loading them back with torch / safetensors when
those are installed. The mobilenet_v2 golden is written only when ../shared/data exists.
"""
import collections
import io
import json
import os
import pickle
import struct
import zipfile
import zlib

import torch

torch.set_num_threads(2)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "Tests", "CheckpointsTests", "Fixtures")
MOBILENET = os.path.join(os.path.dirname(REPO), "shared", "data", "weights", "mobilenet_v2-b0353104.pth")

DTYPE_NAMES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


def path(name):
    return os.path.join(OUT, name)


def tiny_state_dict():
    """Every dtype, a BN block, views with offsets, transposed and expanded strides."""
    g = torch.Generator().manual_seed(0)
    sd = collections.OrderedDict()
    sd["conv.weight"] = torch.randn(4, 3, 3, 3, generator=g)
    sd["bn.weight"] = torch.rand(4, generator=g) + 0.5
    sd["bn.bias"] = torch.randn(4, generator=g)
    sd["bn.running_mean"] = torch.randn(4, generator=g) * 0.1
    sd["bn.running_var"] = torch.rand(4, generator=g) + 0.1
    sd["bn.num_batches_tracked"] = torch.tensor(7)
    sd["half"] = torch.tensor([1.0, -2.5, 0.1, 65504.0, 6e-8, -0.0], dtype=torch.float16)
    sd["bfloat"] = torch.tensor([[1.0, -3.140625, 0.1], [1e30, -1e-30, 256.0]], dtype=torch.bfloat16)
    sd["double"] = torch.tensor([0.1, -1.0 / 3.0, 123456789.123, 1e-50], dtype=torch.float64)
    sd["transposed"] = torch.arange(12.0).reshape(4, 3).t()              # [3, 4], stride (1, 3)
    sd["sliced"] = (torch.arange(20.0) * 0.5).reshape(4, 5)[1:, ::2]     # offset 5, stride (5, 2)
    sd["half_transposed"] = torch.arange(6.0).reshape(2, 3).half().t()   # f16 view, stride (1, 3)
    shared = torch.arange(10.0) - 4.5
    sd["shared.full"] = shared
    sd["shared.tail"] = shared[4:8]                                       # same storage, offset 4
    sd["expanded"] = torch.tensor([1.0, 2.0, 3.0]).expand(2, 3)          # stride (0, 1)
    sd["int32"] = torch.tensor([-5, 0, 2**31 - 1], dtype=torch.int32)
    sd["int8"] = torch.tensor([-128, -1, 0, 127], dtype=torch.int8)
    sd["uint8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
    sd["mask"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    # Real state dicts carry a _metadata attribute, pickled with BUILD.
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("bn", {"version": 2})])
    assert not sd["transposed"].is_contiguous() and sd["shared.tail"].storage_offset() == 4
    assert sd["expanded"].stride() == (0, 1) and sd["sliced"].storage_offset() == 5
    return sd


def raw_bytes(tensor):
    return tensor.detach().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()


def describe(tensor):
    t = tensor.detach()
    if t.dtype.is_floating_point:
        values = t.float().reshape(-1).tolist()
    else:
        values = [int(v) for v in t.reshape(-1).tolist()]
    return {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "values": values, "hex": raw_bytes(t).hex()}


# ---------------------------------------------------------------- hand-built containers

def write_zip(file, entries, zip64):
    """A STORED zip; with zip64, every central entry saturates its sizes and offset and
    carries a zip64 extra field, and the end record defers to the zip64 end record."""
    out = io.BytesIO()
    central = []
    for name, data in entries:
        name_bytes = name.encode()
        crc = zlib.crc32(data)
        offset = out.tell()
        local_extra = struct.pack("<HHQQ", 1, 16, len(data), len(data)) if zip64 else b""
        size32 = 0xFFFFFFFF if zip64 else len(data)
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, size32, size32,
                              len(name_bytes), len(local_extra)))
        out.write(name_bytes + local_extra + data)
        central.append((name_bytes, crc, len(data), offset))
    directory_offset = out.tell()
    for name_bytes, crc, size, offset in central:
        if zip64:
            extra = struct.pack("<HHQQQ", 1, 24, size, size, offset)
            fields = (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        else:
            extra, fields = b"", (size, size, offset)
        out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, fields[0], fields[1],
                              len(name_bytes), len(extra), 0, 0, 0, 0, fields[2]))
        out.write(name_bytes + extra)
    directory_size = out.tell() - directory_offset
    count = len(central)
    if zip64:
        zip64_end = out.tell()
        out.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, directory_size, directory_offset))
        out.write(struct.pack("<IIQI", 0x07064B50, 0, zip64_end, 1))
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
    else:
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, directory_size, directory_offset, 0))
    with open(file, "wb") as f:
        f.write(out.getvalue())


def zip_entries(file):
    with zipfile.ZipFile(file) as archive:
        return [(info.filename, archive.read(info.filename)) for info in archive.infolist()]


class FakeStorage:
    def __init__(self, persistent_id):
        self.persistent_id = persistent_id


class FakeTensor:
    """Pickles as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class StoragePickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.persistent_id if isinstance(obj, FakeStorage) else None


def pickled(obj):
    buffer = io.BytesIO()
    StoragePickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def write_torch_zip(file, archive, root, storages):
    """A torch-layout zip of a pickled `root` whose storages are {key: bytes}."""
    entries = [(f"{archive}/data.pkl", pickled(root))]
    entries += [(f"{archive}/data/{key}", data) for key, data in storages.items()]
    entries.append((f"{archive}/version", b"3\n"))
    write_zip(file, entries, zip64=False)


def legacy_prefix():
    info = dict(protocol_version=1001, little_endian=True, type_sizes=dict(short=2, int=4, long=4))
    return b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, info))


# ---------------------------------------------------------------- safetensors by hand

def safetensors_bytes(tensors, metadata):
    """The Python library's layout: dtype (widest first, Rust enum order) then name."""
    rank = {"BOOL": 0, "U8": 4, "I8": 5, "F16": 13, "BF16": 14, "I32": 15, "F32": 17, "F64": 19, "I64": 20}
    items = sorted(tensors.items(), key=lambda kv: (-rank[DTYPE_NAMES[kv[1].dtype]], kv[0].encode()))
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset, data = 0, []
    for name, tensor in items:
        raw = raw_bytes(tensor)
        header[name] = {"dtype": DTYPE_NAMES[tensor.dtype], "shape": list(tensor.shape), "data_offsets": [offset, offset + len(raw)]}
        data.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(data)


def check_against_library(file, tensors, metadata):
    try:
        import safetensors.torch
    except ImportError:
        print("  (safetensors not installed: hand-written layout not cross-checked)")
        return
    reference = safetensors.torch.save(tensors, metadata=metadata)
    with open(file, "rb") as f:
        assert f.read() == reference, f"{file} differs from safetensors.torch.save"


# ---------------------------------------------------------------- main

def main():
    os.makedirs(OUT, exist_ok=True)
    sd = tiny_state_dict()
    expected = {"key_order": list(sd.keys()), "tensors": {k: describe(v) for k, v in sd.items()}}

    # What `convert --dtype F16` must produce for each float tensor.
    expected["as_float16_hex"] = {k: raw_bytes(v.half()).hex() for k, v in sd.items() if v.dtype.is_floating_point}

    torch.save(sd, path("tiny_zip.pth"))
    torch.save(sd, path("tiny_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"state_dict": sd, "epoch": 3, "arch": "tiny"}, path("wrapped_state_dict.pth"))
    torch.save({"model": sd, "epoch": 3}, path("wrapped_model_legacy.pth"), _use_new_zipfile_serialization=False)
    # Protocol 4 exercises FRAME, SHORT_BINUNICODE, MEMOIZE and STACK_GLOBAL.
    torch.save(sd, path("tiny_zip_protocol4.pth"), pickle_protocol=4)
    for name in ["tiny_zip.pth", "tiny_legacy.pth", "tiny_zip_protocol4.pth"]:
        loaded = torch.load(path(name))
        assert all(torch.equal(loaded[k], sd[k]) for k in sd)

    # zip64 records everywhere (central extra fields, zip64 end record).
    write_zip(path("tiny_zip64.pth"), zip_entries(path("tiny_zip.pth")), zip64=True)
    assert all(torch.equal(torch.load(path("tiny_zip64.pth"))[k], sd[k]) for k in sd)

    # Deflated entries: readable by Python's zipfile, rejected by detq.
    with zipfile.ZipFile(path("compressed.pth"), "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in zip_entries(path("tiny_zip.pth")):
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)

    with open(path("tiny_zip.pth"), "rb") as f:
        data = f.read()
    with open(path("truncated_zip.pth"), "wb") as f:
        f.write(data[: len(data) * 3 // 5])
    with open(path("tiny_legacy.pth"), "rb") as f:
        data = f.read()
    with open(path("truncated_legacy.pth"), "wb") as f:
        f.write(data[:-40])

    # A legacy storage view: ('storage', FloatStorage, root, 'cpu', 10, (view_key, 2, 5)).
    root_values = torch.arange(10.0) * 1.5
    view = FakeStorage(("storage", torch.FloatStorage, "root", "cpu", 10, ("view", 2, 5)))
    body = pickled(collections.OrderedDict([("viewed", FakeTensor(view, 1, [3], [1]))]))
    body += pickle.dumps(["root"], protocol=2)
    body += struct.pack("<q", 10) + raw_bytes(root_values)
    with open(path("legacy_storage_view.pth"), "wb") as f:
        f.write(legacy_prefix() + body)
    viewed = torch.load(path("legacy_storage_view.pth"))["viewed"]
    expected["legacy_storage_view"] = describe(viewed)
    assert viewed.tolist() == [4.5, 6.0, 7.5]

    # Views outside their storage: torch refuses them, so must detq.
    four = raw_bytes(torch.arange(4.0))
    storage = FakeStorage(("storage", torch.FloatStorage, "0", "cpu", 4))
    write_torch_zip(path("out_of_bounds.pth"), "out_of_bounds",
                    collections.OrderedDict([("w", FakeTensor(storage, 2, [3], [1]))]), {"0": four})
    write_torch_zip(path("negative_stride.pth"), "negative_stride",
                    collections.OrderedDict([("w", FakeTensor(storage, 3, [2], [-1]))]), {"0": four})
    # A stride-0 view claiming 2**40 elements of a 4-element storage (valid for torch,
    # but materialising it would need terabytes).
    write_torch_zip(path("huge_expanded.pth"), "huge_expanded",
                    collections.OrderedDict([("w", FakeTensor(storage, 0, [2**40], [0]))]), {"0": four})
    try:
        torch.load(path("out_of_bounds.pth"))
        raise AssertionError("torch loaded out_of_bounds.pth")
    except RuntimeError:
        pass

    # A dtype detq does not hold.
    torch.save({"short": torch.tensor([1, 2], dtype=torch.int16)}, path("int16.pth"))

    # Forbidden globals, crafted byte by byte (nothing here is ever unpickled).
    evil_zip = b"\x80\x02cos\nsystem\nq\x00X\x0b\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03."
    write_zip(path("forbidden_global.pth"), [("forbidden_global/data.pkl", evil_zip),
                                              ("forbidden_global/version", b"3\n")], zip64=False)
    evil_legacy = b"\x80\x02csubprocess\ncheck_output\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03."
    with open(path("forbidden_global_legacy.pth"), "wb") as f:
        f.write(legacy_prefix() + evil_legacy + pickle.dumps([], protocol=2))

    # safetensors: contiguous copies (the format has no views or sharing).
    plain = {k: v.detach().contiguous().clone() for k, v in sd.items()}
    st_metadata = {"format": "pt"}
    with open(path("tiny.safetensors"), "wb") as f:
        f.write(safetensors_bytes(plain, st_metadata))
    check_against_library(path("tiny.safetensors"), plain, st_metadata)
    special = {"note": 'a"b\\c\nd/\u00e9\u0001\t'}
    small = {"z.weight": torch.tensor([1.0, 2.0]), "a.bias": torch.tensor([3], dtype=torch.int64)}
    with open(path("metadata_escapes.safetensors"), "wb") as f:
        f.write(safetensors_bytes(small, special))
    check_against_library(path("metadata_escapes.safetensors"), small, special)
    expected["metadata_escapes"] = special

    # Header pointing past the end of the file.
    header = b'{"w":{"dtype":"F32","shape":[16],"data_offsets":[0,64]}}'
    header += b" " * (-len(header) % 8)
    with open(path("past_end.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + raw_bytes(torch.arange(4.0)))
    # Overlapping tensors.
    header = (b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
              b'"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}')
    header += b" " * (-len(header) % 8)
    with open(path("overlapping.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + raw_bytes(torch.arange(3.0)))

    # float32 -> float16 / bfloat16 rounding, as torch does it.
    specials = [0.0, -0.0, 1.0, 1.0 + 2**-11, 1.0 + 3 * 2**-11, 65504.0, 65519.0, 65520.0, 1e-8, 5.96e-8,
                2.98e-8, 6.1e-5, 3.14159265, -123.456, 1.0 + 2**-8, 1.0 + 3 * 2**-8, 3.4e38, 1e-40,
                float("inf"), float("-inf"), float("nan")]
    g = torch.Generator().manual_seed(1)
    values = torch.cat([torch.tensor(specials, dtype=torch.float32), torch.randn(40, generator=g) * 100])
    expected["encode"] = {
        "float32_bits": [int(v) & 0xFFFFFFFF for v in values.view(torch.int32).tolist()],
        "float16_bits": [int(v) & 0xFFFF for v in values.half().view(torch.int16).tolist()],
        "bfloat16_bits": [int(v) & 0xFFFF for v in values.bfloat16().view(torch.int16).tolist()],
    }

    with open(path("expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")

    if os.path.exists(MOBILENET):
        weights = torch.load(MOBILENET)
        golden = {"file": os.path.basename(MOBILENET), "count": len(weights), "tensors": [
            {"key": k, "dtype": DTYPE_NAMES[v.dtype], "shape": list(v.shape),
             "sum": float(v.double().sum()), "abs_sum": float(v.double().abs().sum()),
             "first": v.reshape(-1)[:4].double().tolist()}
            for k, v in weights.items()]}
        with open(path("mobilenet_v2_golden.json"), "w") as f:
            json.dump(golden, f, indent=0)
            f.write("\n")
    else:
        print(f"  {MOBILENET} absent: mobilenet_v2 golden not written")
    for name in sorted(os.listdir(OUT)):
        print(f"  {name}: {os.path.getsize(path(name))} bytes")


if __name__ == "__main__":
    main()
