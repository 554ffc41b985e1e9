#!/usr/bin/env python3
"""Rewrites an attnrec checkpoint so that its tensors claim another device ("cuda:0"), as if
a GPU had written it: the tests' stand-in for a CUDA checkpoint on a machine without one.

    relocate_checkpoint.py CHECKPOINT DEVICE      (rewritten in place; prints the count)

The checkpoint is attnrec's container (a magic line; "<meta bytes> <payload bytes> <SHA-256 of
meta and payload>"; the meta JSON; the payload, a LibTorch archive, i.e. a zip file). LibTorch's
pickler writes each storage's location as a string ("cpu") once and refers back to it, so one
replacement in archive/data.pkl relocates every tensor. Standard library only."""
import hashlib
import io
import struct
import sys
import zipfile


def pickled_string(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def main(path, device):
    blob = open(path, "rb").read()
    first = blob.index(b"\n")
    second = blob.index(b"\n", first + 1)
    meta_bytes, payload_bytes, _ = blob[first + 1:second].split()
    body = blob[second + 1:]
    meta, payload = body[:int(meta_bytes)], body[int(meta_bytes):]
    assert len(payload) == int(payload_bytes), "payload size differs from the header"
    source = zipfile.ZipFile(io.BytesIO(payload))
    out = io.BytesIO()
    count = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                count += data.count(pickled_string("cpu"))
                data = data.replace(pickled_string("cpu"), pickled_string(device))
            target.writestr(info.filename, data)
    payload = out.getvalue()
    checksum = hashlib.sha256(meta + payload).hexdigest()
    header = blob[:first + 1] + b"%s %020d %s\n" % (meta_bytes, len(payload), checksum.encode())
    open(path, "wb").write(header + meta + payload)
    print(count)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
