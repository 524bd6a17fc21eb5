#!/usr/bin/env bash
# Which source files one UDP query runs through, for docs/architecture.md:
# dnsward is built with coverage counters and run with the embedded
# default lists against the bench upstream: a warm-up query only;
# then one cache miss; then that miss and a cache hit of the same name.
# A file is on a query's path when the extra query raised a counter in it.
#
#   bash bench/path.sh           # needs go and dig; prints both lists
#   OUT=/tmp/path bash bench/path.sh
#
# Every address is on 127.0.0.1 (ports PORT, PORT+1 and PORT+2); every wait
# is bounded. Each run is made twice, and only files both rounds show are
# listed, so a background tick (a probe, a timer) in one run is left out.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/bench/out/path}
PORT=${PORT:-5402}
MODULE=github.com/dnsward/dnsward/

command -v dig >/dev/null || { echo "path.sh: needs dig (Debian: apt-get install bind9-dnsutils)" >&2; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT/bin"
(cd "$ROOT" && go build -cover -covermode=atomic -coverpkg=./... -o "$OUT/bin/dnsward" ./cmd/dnsward &&
	go build -o "$OUT/bin/upstream" ./bench/upstream)
sed -e "s#127.0.0.1:5353#127.0.0.1:$PORT#" -e "s#\[\"system\"\]#[\"udp://127.0.0.1:$((PORT + 1))\"]#" \
	-e "s#127.0.0.1:9153#127.0.0.1:$((PORT + 2))#" "$ROOT/configs/default.yaml" >"$OUT/dnsward.yaml"

query() { dig +time=2 +tries=1 -p "$PORT" @127.0.0.1 "$1" A >/dev/null; }

# run NAME QUERIES...: one dnsward process; its counters land in $OUT/NAME.
run() {
	local name=$1 up dw i
	shift
	mkdir -p "$OUT/$name"
	"$OUT/bin/upstream" -listen "127.0.0.1:$((PORT + 1))" >/dev/null 2>&1 &
	up=$!
	GOCOVERDIR=$OUT/$name "$OUT/bin/dnsward" serve -config "$OUT/dnsward.yaml" >"$OUT/$name.log" 2>&1 &
	dw=$!
	for ((i = 0; i < 50; i++)); do query warm-up.example.com && break; sleep 0.1; done
	sleep 0.5 # start-up's own probes and ticks settle
	for q in "$@"; do query "$q"; done
	sleep 0.5
	kill -TERM "$dw" && wait "$dw" || true
	kill "$up" && wait "$up" 2>/dev/null || true
	go tool covdata textfmt -i "$OUT/$name" -o "$OUT/$name.txt"
}

# touched BEFORE AFTER: the files whose counters AFTER raised over BEFORE.
touched() {
	awk -v mod="$MODULE" 'FNR == 1 {next}
		NR == FNR {before[$1] += $3; next}
		{after[$1] += $3}
		END {for (b in after) if (after[b] > before[b]) {split(b, part, ":"); sub(mod, "", part[1]); files[part[1]] = 1}
		     for (file in files) print file}' "$1" "$2" | sort
}

# Twice over: a file counts only when both rounds show it, so a tick that
# lands in one run alone is left out.
for round in 1 2; do
	run "warm$round"
	run "miss$round" one-miss.example.com
	run "hit$round" one-miss.example.com one-miss.example.com
done
for path in "miss warm miss" "hit miss hit"; do
	set -- $path
	for round in 1 2; do touched "$OUT/$2$round.txt" "$OUT/$3$round.txt" >"$OUT/$1-files$round.txt"; done
	comm -12 "$OUT/$1-files1.txt" "$OUT/$1-files2.txt" >"$OUT/$1-files.txt"
	echo "== one UDP cache $1: $(wc -l <"$OUT/$1-files.txt") files"
	cat "$OUT/$1-files.txt"
done
