#!/usr/bin/python3
"""Seeds the fuzz corpora from the fixtures in test/pcaps/.

  fuzz/corpus/pcap/    every fixture and corrupt file, whole
  fuzz/corpus/decode/  every packet of every pcap fixture, framed as
                       fuzz_decode reads it: link byte, snap byte, frame

Re-run after adding fixtures; crash inputs found by fuzzing are added to the
corpus by hand (named crash-*) and stay there as regression inputs.
"""
import glob
import hashlib
import os
import shutil
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PCAPS = os.path.join(ROOT, "test", "pcaps")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")

# DLT/LINKTYPE value -> enum ts_link (include/torsieve/decode.h).
LINK_IDS = {1: 1, 113: 2, 276: 3, 101: 4, 12: 4, 14: 4, 228: 5, 229: 6, 0: 7, 108: 8}


def pcap_records(data):
    if len(data) < 24:
        return None, []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        return None, []
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0fffffff
    records, off = [], 24
    while off + 16 <= len(data):
        _, _, caplen, wirelen = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + caplen]
        if len(frame) < caplen:
            break
        records.append((frame, wirelen))
        off += 16 + caplen
    return linktype, records


def main():
    for sub in ("pcap", "decode"):
        os.makedirs(os.path.join(CORPUS, sub), exist_ok=True)
    written = 0
    sources = sorted(glob.glob(os.path.join(PCAPS, "*.pcap*")) +
                     glob.glob(os.path.join(PCAPS, "bad", "*")))
    for path in sources:
        name = os.path.basename(path)
        shutil.copyfile(path, os.path.join(CORPUS, "pcap", "seed-" + name))
        with open(path, "rb") as f:
            linktype, records = pcap_records(f.read())
        if linktype not in LINK_IDS:
            continue
        seen = set()
        for frame, wirelen in records:
            snap = min(max(wirelen - len(frame), 0), 255)
            data = bytes([LINK_IDS[linktype], snap]) + frame
            digest = hashlib.sha1(data).hexdigest()[:12]
            if digest in seen:
                continue
            seen.add(digest)
            out = os.path.join(CORPUS, "decode", f"seed-{name}-{digest}")
            with open(out, "wb") as f:
                f.write(data)
            written += 1
    print(f"{len(sources)} capture seeds, {written} packet seeds")


if __name__ == "__main__":
    sys.exit(main())
