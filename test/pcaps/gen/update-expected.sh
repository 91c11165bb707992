#!/usr/bin/env bash
# Writes the expected outputs next to every fixture: X.summary.json
# (`torsieve replay --json`) and X.packets.jsonl (`--packets --json`).
#
# These are regression snapshots: run this after a deliberate change to the
# decoder or the output, read `git diff test/pcaps`, and commit the result
# only when every changed line is the change you meant. Independent checks
# (the generator's labels, the tcpdump oracle) live in test/check_fixtures.py.
set -euo pipefail
cd "$(dirname "$0")/../../.."
make -s torsieve
for f in test/pcaps/*.pcap test/pcaps/*.pcapng; do
	base=${f%.pcapng}
	base=${base%.pcap}
	./torsieve replay --json "$f" >"$base.summary.json"
	./torsieve replay --packets --json "$f" >"$base.packets.jsonl"
done
echo "updated expected outputs; review with: git diff --stat test/pcaps"
