#!/usr/bin/python3
"""Helpers of the NFQUEUE benchmark (test/bench/bench_nfqueue.sh), standard library only.

  nfq_helper.py sample QUEUE WARM SECONDS PID
      The kernel's counters of QUEUE (/proc/net/netfilter/nfnetlink_queue of the
      namespace it runs in), WARM seconds after it starts and SECONDS later. Prints
      one line: seconds, then the differences of: packets given a verdict, packets
      offered to the queue, queue-full drops, drops on delivery to the socket
      (ENOBUFS), and the CPU seconds process PID (all its threads) ran. Given a
      verdict: ids handed out, less those that never reached the socket, less
      those still waiting; nothing else takes a packet off the queue while the
      consumer is bound.
  nfq_helper.py cpu PID
      Nanoseconds process PID (all its threads) has run on a CPU.
  nfq_helper.py queue QUEUE
      The same counters once, as KEY=VALUE words (no line: "none").
  nfq_helper.py hole ADDR PORT
      A UDP socket bound to ADDR:PORT that is never read (the flood's local
      destination: the kernel drops at the full socket, a cheap end).
  nfq_helper.py sink PORT
      A transparent TCP listener (IP_TRANSPARENT, IPv4 wildcard) on PORT, where
      TPROXY delivers diverted connections: reads and discards everything and
      closes at the peer's end.
  nfq_helper.py send ADDR PORT SECONDS
      Connects, sends for SECONDS, shuts down its side and waits for the sink to
      close, so every byte was read. Prints "bytes B seconds S".
  nfq_helper.py report FLOOD_TSV BULK_TSV KEY=VALUE...
      The benchmark's tables, from the runs bench_nfqueue.sh recorded.
"""
import os
import socket
import sys
import threading
import time

PROC = "/proc/net/netfilter/nfnetlink_queue"
IP_TRANSPARENT = 19
CHUNK = 1 << 20


def read_queue(queue):
    # queue portid waiting copy_mode copy_range queue_dropped user_dropped id_sequence 1
    with open(PROC) as f:
        for line in f:
            w = line.split()
            if len(w) >= 8 and int(w[0]) == queue:
                return {
                    "waiting": int(w[2]),
                    "queue_dropped": int(w[5]),
                    "user_dropped": int(w[6]),
                    "ids": int(w[7]),
                }
    return None


def verdicted(c):
    return c["ids"] - c["user_dropped"] - c["waiting"]


def offered(c):
    return c["ids"] + c["queue_dropped"]


def cpu_ns(pid):
    """Nanoseconds on a CPU of every thread of pid (schedstat's first field)."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def sample(queue, warm, secs, pid):
    time.sleep(warm)
    t0, a, c0 = time.monotonic(), read_queue(queue), cpu_ns(pid)
    time.sleep(secs)
    t1, b, c1 = time.monotonic(), read_queue(queue), cpu_ns(pid)
    if a is None or b is None:
        print("none")
        return 1
    print("%.6f %d %d %d %d %.6f" % (t1 - t0, verdicted(b) - verdicted(a), offered(b) - offered(a),
                                     b["queue_dropped"] - a["queue_dropped"],
                                     b["user_dropped"] - a["user_dropped"], (c1 - c0) / 1e9))
    return 0


def hole(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind((addr, port))
    print("hole", addr, port, flush=True)
    while True:
        time.sleep(3600)


def drain(c):
    buf = bytearray(CHUNK)
    try:
        while c.recv_into(buf):
            pass
    except OSError:
        pass
    c.close()


def sink(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    print("sink", port, flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=drain, args=(c,), daemon=True).start()


def send(addr, port, secs):
    data = b"x" * CHUNK
    t0 = time.monotonic()
    c = socket.create_connection((addr, port), timeout=10)
    sent, end = 0, t0 + secs
    while time.monotonic() < end:
        c.sendall(data)
        sent += len(data)
    c.shutdown(socket.SHUT_WR)
    while c.recv(4096):
        pass
    t1 = time.monotonic()
    c.close()
    print("bytes %d seconds %.6f" % (sent, t1 - t0))
    return 0


LABELS = {
    "torsieve": "torsieve run (batches equal verdicts)",
    "bare-batch": "bare loop, one batch verdict when the socket is empty",
    "bare-single": "bare loop, one verdict message per packet",
    "bare-batch-8M": "bare loop, batch, 8 MiB receive buffer really set",
}
ORDER = ("torsieve", "bare-batch", "bare-single", "bare-batch-8M")
FLOOD_FIELDS = ("phase name round secs verdicts offered qdrop udrop cpu own kernel rule "
                "offered_total msgs rcvbuf sent").split()


def read_tsv(path, fields):
    rows = []
    with open(path) as f:
        for line in f:
            w = line.rstrip("\n").split("\t")
            if len(w) != len(fields):
                continue
            row = dict(zip(fields, w))
            for k, v in row.items():
                try:
                    row[k] = float(v) if "." in v else int(v)
                except ValueError:
                    pass
            rows.append(row)
    return rows


def best_runs(runs, key):
    best = {}
    for r in runs:
        if r["name"] not in best or key(r) > key(best[r["name"]]):
            best[r["name"]] = r
    return best


def ratio_line(what, a, b, goal=None):
    if not a or not b:
        return
    r = a / b
    tail = ""
    if goal is not None:
        tail = " (goal >= %.2f: %s)" % (goal, "met" if r >= goal else "NOT met")
    print("- %s: %.2f%s" % (what, r, tail))


def report(flood_path, bulk_path, opts):
    o = dict(kv.split("=", 1) for kv in opts)
    runs = read_tsv(flood_path, FLOOD_FIELDS)
    for r in runs:
        r["per_cpu"] = r["verdicts"] / r["cpu"] if r["cpu"] > 0 else 0.0
        r["per_s"] = r["verdicts"] / r["secs"]
        r["busy"] = 100 * r["cpu"] / r["secs"]
    full = [r for r in runs if r["phase"] == "full"]
    paced = [r for r in runs if r["phase"] == "paced"]

    print("The flood: test/bench/udp_flood.c from a client namespace on CPU %s, 18-byte UDP datagrams"
          % o["cpu_gen"])
    print("(60-byte frames), one flow; every packet judged 'pass' (mark %s) and delivered to an"
          % o["mark"])
    print("unread local socket. The consumer (of the NFQUEUE) on CPU %s of the gateway namespace."
          % o["cpu_cons"])
    print("Runs interleaved, each measured after %s s of warm-up. Load average before: %s."
          % (o["warm"], o["load"]))
    print("verdicts: packets given a verdict in the window, the kernel's count "
          "(/proc/net/netfilter/nfnetlink_queue);")
    print("consumer CPU: the share of the window the consumer (all its threads) ran (schedstat);")
    print("per CPU-second: verdicts / the consumer's CPU time; dropped/s: by the kernel, queue full / "
          "socket full (ENOBUFS).")

    if full:
        best = best_runs(full, lambda r: r["per_s"])
        print()
        print("At full rate (the generator as fast as one core sends; normal priority; %s s, best of %s "
              "by verdicts/s):" % (o["secs"], o["rounds"]))
        print()
        print("| consumer | verdicts/s | all runs | offered/s | dropped/s | consumer CPU "
              "| per CPU-second | packets per verdict message | receive buffer bytes |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name in ORDER:
            if name not in best:
                continue
            b = best[name]
            every = " ".join("%.0f" % r["per_s"] for r in full if r["name"] == name)
            print("| %s | %.0f | %s | %.0f | %.0f / %.0f | %.0f%% | %.0f | %.1f | %s |" % (
                LABELS[name], b["per_s"], every, b["offered"] / b["secs"], b["qdrop"] / b["secs"],
                b["udrop"] / b["secs"], b["busy"], b["per_cpu"], b["own"] / max(b["msgs"], 1),
                b["rcvbuf"]))
        print()
        ts, bb, bs = best.get("torsieve"), best.get("bare-batch"), best.get("bare-single")
        ratio_line("verdicts/s, torsieve / bare loop (batch)", ts and ts["per_s"], bb and bb["per_s"])
        ratio_line("verdicts/s, torsieve / bare loop (one message per packet)",
                   ts and ts["per_s"], bs and bs["per_s"])
        sent = max(r["sent"] / (float(o["secs"]) + float(o["warm"])) for r in full)
        print("- the generator sent up to %.0f datagrams/s. What limited each consumer's best run:" % sent)
        for name in ORDER:
            if name not in best:
                continue
            b = best[name]
            took = b["verdicts"] / max(b["offered"], 1)
            if took >= 0.98:
                why = "the generator: it took %.1f%% of what it was offered" % (100 * took)
            elif b["busy"] >= 90:
                why = "itself: busy %.0f%% of the window, it took %.1f%% of the offered" % (
                    b["busy"], 100 * took)
            else:
                why = ("neither: %.0f%% busy, and the kernel dropped %.1f%% of the offered while it "
                       "was off the CPU" % (b["busy"], 100 * (1 - took)))
            print("  - %s: %s" % (LABELS[name], why))
        print("  (a 208 KiB receive buffer holds about 1.5 ms of the flood; verdicts/s here is not a "
              "consumer's capacity unless it is the limit: see the paced runs)")

    if paced:
        best = best_runs(paced, lambda r: r["per_cpu"])
        print()
        print("Paced at %s datagrams/s (below every consumer's capacity), consumer and generator %s;"
              % (o["rate"], o["rt"]))
        print("%s s, best of %s by verdicts per CPU-second (the rate one core would give if it did "
              "nothing else):" % (o["paced_secs"], o["paced_rounds"]))
        print()
        print("| consumer | verdicts per CPU-second | all runs | consumer CPU | verdicts/s | dropped/s "
              "| packets per verdict message |")
        print("|---|---|---|---|---|---|---|")
        for name in ORDER:
            if name not in best:
                continue
            b = best[name]
            every = " ".join("%.0f" % r["per_cpu"] for r in paced if r["name"] == name)
            print("| %s | %.0f | %s | %.0f%% | %.0f | %.0f / %.0f | %.1f |" % (
                LABELS[name], b["per_cpu"], every, b["busy"], b["per_s"], b["qdrop"] / b["secs"],
                b["udrop"] / b["secs"], b["own"] / max(b["msgs"], 1)))
        print()
        ts, bb, bs = best.get("torsieve"), best.get("bare-batch"), best.get("bare-single")
        ratio_line("torsieve / bare loop (batch, the same settings), per CPU-second",
                   ts and ts["per_cpu"], bb and bb["per_cpu"], 0.9)
        ratio_line("torsieve / bare loop (one message per packet), per CPU-second",
                   ts and ts["per_cpu"], bs and bs["per_cpu"])
        if ts and bb:
            med = {}
            for name in ("torsieve", "bare-batch"):
                v = sorted(r["per_cpu"] for r in paced if r["name"] == name)
                med[name] = v[len(v) // 2]
            print("- the same with each one's median run: %.2f"
                  % (med["torsieve"] / med["bare-batch"]))

    bad = [r for r in runs if r["own"] != r["kernel"] or r["rule"] != r["offered_total"]]
    if not bad:
        print("- counts agree in all %d runs: each consumer's own count of verdicts = the kernel's "
              "packets given a verdict, and the NFQUEUE rules' packet counters = packets the queue "
              "was offered" % len(runs))
    else:
        print("- counts DISAGREE in %d of %d runs:" % (len(bad), len(runs)))
        for r in bad:
            print("  - %s %s round %d: own %d, kernel %d; rule %d, offered %d" % (
                r["phase"], r["name"], r["round"], r["own"], r["kernel"], r["rule"],
                r["offered_total"]))

    bulk = read_tsv(bulk_path, "mode round bytes secs rcv qbytes drp cpu_ns".split())
    if not bulk:
        return 0
    print()
    print("Fast path: a %s s TCP upload from a client to %s, diverted to a transparent listener on"
          % (o["bulk_secs"], o["bulk_dst"]))
    print("the gateway that reads and discards (test/bench/nfq_helper.py sink, on CPU %s with"
          % o["cpu_cons"])
    print("torsieve; the sender on CPU %s); best of %s, interleaved. Packets to userspace: torsieve's"
          % (o["cpu_gen"], o["rounds"]))
    print("\"received\" (the veth hands GSO packets of up to 64 KiB to the queue whole).")
    print()
    print("| set fast-path | MB/s | all runs | packets to userspace | per MB | bytes per queued packet "
          "| torsieve CPU ms per MB |")
    print("|---|---|---|---|---|---|---|")
    bb = {}
    for r in bulk:
        r["mbs"] = r["bytes"] / 1e6 / r["secs"]
        if r["mode"] not in bb or r["mbs"] > bb[r["mode"]]["mbs"]:
            bb[r["mode"]] = r
    for mode in ("on", "off"):
        if mode not in bb:
            continue
        b = bb[mode]
        every = " ".join("%.0f" % r["mbs"] for r in bulk if r["mode"] == mode)
        print("| %s | %.0f | %s | %d | %.2f | %.0f | %.3f |" % (
            mode, b["mbs"], every, b["rcv"], b["rcv"] / (b["bytes"] / 1e6),
            b["qbytes"] / max(b["rcv"], 1), b["cpu_ns"] / 1e6 / (b["bytes"] / 1e6)))
    if "on" in bb and "off" in bb:
        print()
        print("- throughput on / off: %.2f" % (bb["on"]["mbs"] / bb["off"]["mbs"]))
    dropped = sum(r["drp"] for r in bulk)
    if dropped:
        print("- torsieve dropped %d packets of the transfers" % dropped)
    print("- run time: verdicts %s s, fast path %s s" % (o["time_flood"], o["time_bulk"]))
    return 0


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "sample" and len(argv) == 6:
        return sample(int(argv[2]), float(argv[3]), float(argv[4]), int(argv[5]))
    if cmd == "cpu" and len(argv) == 3:
        print(cpu_ns(int(argv[2])))
        return 0
    if cmd == "queue" and len(argv) == 3:
        c = read_queue(int(argv[2]))
        print(" ".join("%s=%d" % kv for kv in c.items()) if c else "none")
        return 0
    if cmd == "hole" and len(argv) == 4:
        return hole(argv[2], int(argv[3]))
    if cmd == "sink" and len(argv) == 3:
        return sink(int(argv[2]))
    if cmd == "report" and len(argv) >= 4:
        return report(argv[2], argv[3], argv[4:])
    if cmd == "send" and len(argv) == 5:
        return send(argv[2], int(argv[3]), float(argv[4]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:
        sys.exit(130)
