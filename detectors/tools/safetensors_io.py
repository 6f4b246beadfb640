"""Reads and writes .safetensors files (8-byte little-endian header length, JSON header, raw data) without the package."""

import json
import os
import struct
from collections import OrderedDict

import numpy as np
import torch

_DTYPES = {"F16": np.float16, "F32": np.float32, "BF16": None, "F64": np.float64, "I64": np.int64, "I32": np.int32,
           "I8": np.int8}


def save(tensors, path, dtype="F16", metadata=None):
    """Writes a {key: tensor} dict; floating tensors are stored as `dtype` (F16 or F32), keys sorted."""
    np_dtype = {"F16": np.float16, "F32": np.float32}[dtype]
    header, blobs, offset = {}, [], 0
    for key in sorted(tensors):
        array = tensors[key].detach().cpu().numpy()
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"{key}: only floating tensors are written (got {array.dtype})")
        data = np.ascontiguousarray(array.astype(np.dtype(np_dtype).newbyteorder("<"))).tobytes()
        header[key] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # pad so the data starts 8-byte aligned
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(path + ".tmp", path)


def load(path):
    """Returns (OrderedDict key -> float32 torch tensor, metadata dict); I8 / I32 codes convert exactly."""
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    base = 8 + length
    out = OrderedDict()
    for key in sorted(header):
        entry = header[key]
        np_dtype = _DTYPES.get(entry["dtype"])
        if np_dtype is None:
            raise ValueError(f"{path}: {key}: unsupported dtype {entry['dtype']}")
        start, end = entry["data_offsets"]
        array = np.frombuffer(raw[base + start:base + end], dtype=np.dtype(np_dtype).newbyteorder("<"))
        array = array.reshape(entry["shape"]).astype(np.float32)
        out[key] = torch.from_numpy(array.copy())
    return out, metadata
