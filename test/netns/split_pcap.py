#!/usr/bin/python3
"""Split a capture at marker frames (ethertype 0x88b5, text payload "begin
NAME"): the packets after each such marker go to OUTDIR/NAME.pcap, until the
next marker. Packets before the first marker go nowhere.

Usage: split_pcap.py CAPTURE OUTDIR
Prints the names of the parts written, one per line.
"""
import os
import struct
import sys

MARKER = 0x88B5


def main(path, outdir):
    data = open(path, "rb").read()
    magic = data[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    header = data[:24]
    linktype, = struct.unpack(order + "I", data[20:24])
    if linktype != 1:
        sys.exit(f"{path}: expected an Ethernet capture, linktype {linktype}")
    parts, current, off = {}, None, 24
    while off + 16 <= len(data):
        caplen, = struct.unpack(order + "I", data[off + 8:off + 12])
        record = data[off:off + 16 + caplen]
        frame = record[16:]
        off += 16 + caplen
        if len(frame) >= 14 and struct.unpack("!H", frame[12:14])[0] == MARKER:
            text = frame[14:].rstrip(b"\0").decode(errors="replace")
            current = text[6:] if text.startswith("begin ") else None
            if current is not None:
                parts.setdefault(current, [])
            continue
        if current is not None:
            parts[current].append(record)
    for name, records in parts.items():
        with open(os.path.join(outdir, name + ".pcap"), "wb") as f:
            f.write(header + b"".join(records))
        print(name)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
