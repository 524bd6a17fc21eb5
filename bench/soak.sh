#!/usr/bin/env bash
# Soak: dnsward under steady load for MINUTES while its lists reload every
# RELOAD_EVERY seconds and one of its two upstreams goes silent and comes
# back every FLIP_EVERY seconds. Not part of the test run; see
# docs/reliability.md for how to read the report.
#
#   bash bench/soak.sh                 # 30 minutes (root or sudo installs dnsperf)
#   MINUTES=3 bash bench/soak.sh       # a short check that it works
#
# Environment (defaults in brackets):
#   MINUTES [30]        length of the measured run
#   LOAD_PCT [80]       percent of the measured maximum QPS to send
#   RATE [measured]     queries per second to send; skips the calibration run
#   CALIBRATE [10]      seconds of the unthrottled run that measures the maximum
#   RELOAD_EVERY [10]   seconds between list reloads (the list file changes, then SIGHUP)
#   FLIP_EVERY [30]     seconds between silencing and reviving upstream 1 (SIGUSR1)
#   REPORT_EVERY [30]   seconds per table row
#   CLIENTS [8] THREADS [2] OUTSTANDING [500]   dnsperf -c, -T, -q
#   TIMEOUT [2]         dnsperf -t: seconds before a query counts as lost
#   OUT [bench/out/soak] everything generated, logs and soak.md
#   NO_INSTALL [0]      1: never call apt-get
# Every address is 127.0.0.1; every wait is bounded; all processes started
# here are stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MINUTES=${MINUTES:-30}
LOAD_PCT=${LOAD_PCT:-80}
RATE=${RATE:-}
CALIBRATE=${CALIBRATE:-10}
RELOAD_EVERY=${RELOAD_EVERY:-10}
FLIP_EVERY=${FLIP_EVERY:-30}
REPORT_EVERY=${REPORT_EVERY:-30}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
OUTSTANDING=${OUTSTANDING:-500}
TIMEOUT=${TIMEOUT:-2}
OUT=${OUT:-$ROOT/bench/out/soak}
NO_INSTALL=${NO_INSTALL:-0}

HOST=127.0.0.1
UP1_PORT=5310 UP2_PORT=5311 DNSWARD_PORT=5312 ADMIN_PORT=5313
BIN=$OUT/bin LOGS=$OUT/logs EVENTS=$OUT/events.txt
declare -A PID=()

die() { echo "soak.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

cleanup() {
	local name
	for name in "${!PID[@]}"; do kill "${PID[$name]}" 2>/dev/null || true; done
	for name in "${!PID[@]}"; do wait "${PID[$name]}" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for v in MINUTES LOAD_PCT CALIBRATE RELOAD_EVERY FLIP_EVERY REPORT_EVERY CLIENTS THREADS OUTSTANDING TIMEOUT; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v=${!v}: want a positive whole number"
done
[[ -z $RATE || $RATE =~ ^[0-9]+$ ]] || die "RATE=$RATE: want a whole number of queries per second"

install_tools() {
	command -v dnsperf >/dev/null && return
	[[ $NO_INSTALL == 1 ]] && die "dnsperf missing; install it (Debian: apt-get install dnsperf) or unset NO_INSTALL"
	command -v apt-get >/dev/null || die "dnsperf missing and no apt-get; install it by hand"
	local sudo=()
	[[ $(id -u) -eq 0 ]] || { command -v sudo >/dev/null || die "dnsperf missing: run as root or install sudo"; sudo=(sudo); }
	say "installing dnsperf"
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq dnsperf >/dev/null
}

build() {
	say "building dnsward, bench/upstream, bench/probe and bench/soakstat into $BIN"
	mkdir -p "$BIN" "$LOGS"
	REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- . ':!bench' 2>/dev/null || echo ' (with uncommitted changes)')"
	(cd "$ROOT" && go build -o "$BIN/dnsward" ./cmd/dnsward &&
		for t in upstream probe soakstat; do go build -o "$BIN/$t" "./bench/$t"; done) || die "go build failed"
}

# generate writes the block list, the query mix and the config. Cached
# answers are capped at 10 s (cache.max_ttl) and the cache holds 20000
# entries, so the cache-miss part of the mix keeps reaching the upstreams
# all through the run, and an upstream going silent matters.
generate() {
	say "generating the list, queries and config into $OUT"
	awk 'BEGIN { for (i = 0; i < 20000; i++) printf "blocked-%d.soak.test\n", i }' >"$OUT/block.txt"
	awk 'BEGIN {
		srand(42)
		for (i = 0; i < 80000; i++) printf "%.6f hot-%d.soak.test A\n", rand(), i % 2000
		for (i = 0; i < 100000; i++) printf "%.6f miss-%d.soak.test %s\n", rand(), i, (i % 4 == 0 ? "AAAA" : "A")
		for (i = 0; i < 20000; i++) printf "%.6f blocked-%d.soak.test A\n", rand(), i
	}' | sort -k1,1 | cut -d' ' -f2- >"$OUT/queries.txt"
	cat >"$OUT/dnsward.yaml" <<EOF
listen: ["$HOST:$DNSWARD_PORT"]
upstream:
  servers: ["udp://$HOST:$UP1_PORT", "udp://$HOST:$UP2_PORT"]
  strategy: parallel_best
  timeout: 1s
cache:
  max_entries: 20000
  max_ttl: 10s
  serve_stale: 1h
admin:
  listen: "$HOST:$ADMIN_PORT"
lists:
  soak: { sources: ["$OUT/block.txt"] }
  tiktok: { sources: ["builtin:tiktok"] }
groups:
  - name: everyone
    clients: ["127.0.0.0/8"]
    block: [soak, tiktok]
default_group: everyone
blocking:
  answer: null_ip
state_dir: "$OUT/state"
log:
  level: warn
EOF
}

port_free() {
	command -v ss >/dev/null || return 0
	! ss -Hlnu "sport = :$1" | grep -q . || die "UDP port $1 is in use (a previous run still up?): stop that process first"
}

# start NAME CMD...: runs CMD in the background, output in LOGS/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$LOGS/$name.log" 2>&1 &
	PID[$name]=$!
}

alive() { kill -0 "${PID[$1]}" 2>/dev/null || { tail -20 "$LOGS/$1.log" >&2; die "$1 exited; log above"; }; }

start_servers() {
	local p
	for p in $UP1_PORT $UP2_PORT $DNSWARD_PORT; do port_free "$p"; done
	start up1 "$BIN/upstream" -listen "$HOST:$UP1_PORT" -sockets 1
	start up2 "$BIN/upstream" -listen "$HOST:$UP2_PORT" -sockets 1
	for p in $UP1_PORT $UP2_PORT; do
		"$BIN/probe" -mode wait -server "$HOST:$p" -name ready.soak.test -expect allowed -timeout 10s >/dev/null ||
			die "bench upstream on port $p did not answer within 10s"
	done
	start dnsward "$BIN/dnsward" serve -config "$OUT/dnsward.yaml"
	"$BIN/probe" -mode wait -server "$HOST:$DNSWARD_PORT" -name blocked-7.soak.test -expect blocked -timeout 60s >/dev/null ||
		{ alive dnsward; die "dnsward gave no blocked answer within 60s"; }
}

# calibrate sets RATE to LOAD_PCT of the QPS of an unthrottled run.
calibrate() {
	[[ -n $RATE ]] && { say "RATE=$RATE given: no calibration run"; return; }
	say "measuring the maximum: ${CALIBRATE}s unthrottled"
	timeout $((CALIBRATE + 30)) dnsperf -s "$HOST" -p "$DNSWARD_PORT" -d "$OUT/queries.txt" -l "$CALIBRATE" \
		-c "$CLIENTS" -T "$THREADS" -q "$OUTSTANDING" -t "$TIMEOUT" >"$LOGS/calibrate.txt" 2>&1 ||
		die "calibration dnsperf failed; see $LOGS/calibrate.txt"
	MAX_QPS=$(awk '/Queries per second:/ {printf "%d", $4}' "$LOGS/calibrate.txt")
	[[ -n $MAX_QPS && $MAX_QPS -gt 0 ]] || die "no QPS in $LOGS/calibrate.txt"
	RATE=$((MAX_QPS * LOAD_PCT / 100))
	say "maximum $MAX_QPS QPS; soaking at $RATE QPS ($LOAD_PCT%)"
}

# disturb runs in the background for the soak: list reloads and upstream
# flips on schedule, each logged to EVENTS as "SECONDS EVENT".
disturb() {
	local t=0 end=$((MINUTES * 60)) silent=0
	while ((t < end)); do
		sleep 1
		t=$((t + 1))
		if ((t % RELOAD_EVERY == 0)); then
			# A real change each time: one name in, the previous one out.
			awk -v t="$t" 'BEGIN { printf "reload-%d.soak.test\n", t } !/^reload-/' "$OUT/block.txt" >"$OUT/block.txt.new" &&
				mv "$OUT/block.txt.new" "$OUT/block.txt"
			kill -HUP "${PID[dnsward]}" 2>/dev/null && echo "$t reload" >>"$EVENTS"
		fi
		if ((t % FLIP_EVERY == 0)); then
			kill -USR1 "${PID[up1]}" 2>/dev/null || continue
			silent=$((1 - silent))
			if ((silent)); then echo "$t upstream 1 off" >>"$EVENTS"; else echo "$t upstream 1 on" >>"$EVENTS"; fi
		fi
	done
}

soak() {
	local secs=$((MINUTES * 60))
	: >"$EVENTS"
	say "soaking for $MINUTES min at $RATE QPS: reload every ${RELOAD_EVERY}s, upstream 1 flipped every ${FLIP_EVERY}s, a row every ${REPORT_EVERY}s"
	disturb &
	PID[disturb]=$!
	alive dnsward
	timeout $((secs + 60)) dnsperf -s "$HOST" -p "$DNSWARD_PORT" -d "$OUT/queries.txt" -l "$secs" -Q "$RATE" \
		-c "$CLIENTS" -T "$THREADS" -q "$OUTSTANDING" -t "$TIMEOUT" -S "$REPORT_EVERY" -v 2>&1 |
		"$BIN/soakstat" -pid "${PID[dnsward]}" -metrics "http://$HOST:$ADMIN_PORT/metrics" -events "$EVENTS" \
			-every "${REPORT_EVERY}s" -out "$OUT/table.md" -raw "$LOGS/dnsperf.txt" -summary "$OUT/summary.md" ||
		die "dnsperf or soakstat failed; see $LOGS/dnsperf.txt"
	kill "${PID[disturb]}" 2>/dev/null || true
	wait "${PID[disturb]}" 2>/dev/null || true
	unset "PID[disturb]"
	alive dnsward
}

report() {
	{
		echo "# dnsward soak"
		echo
		echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr)"
		echo "- dnsward: $REV at build time, $(go version | awk '{print $3}'); dnsperf: $(dnsperf -h 2>&1 | awk '/Version/ {print $NF; exit}')"
		echo "- load: $RATE QPS${MAX_QPS:+ ($LOAD_PCT% of the $MAX_QPS QPS measured unthrottled)} for $MINUTES min; dnsperf \`-c $CLIENTS -T $THREADS -q $OUTSTANDING -t $TIMEOUT\`"
		echo "- disturbance: lists reloaded (file changed, SIGHUP) every ${RELOAD_EVERY}s; upstream 1 of 2 silent and back every ${FLIP_EVERY}s (parallel_best, timeout 1s)"
		echo "- mix: 40% of 2000 hot names, 50% cache misses (100k names, answers cached at most 10 s), 10% blocked; load is on the same machine as dnsward"
		echo "- lost: a query with no answer within ${TIMEOUT}s, counted in the row where dnsperf gave up on it; kernel drops: UDP datagrams the kernel dropped for a full socket buffer (whole machine, so dnsperf's own sockets too)"
		echo
		cat "$OUT/summary.md"
		echo
		cat "$OUT/table.md"
		echo
		echo "dnsperf's own totals:"
		echo
		echo '```'
		awk '/^Statistics:/ {on = 1} on' "$LOGS/dnsperf.txt"
		echo '```'
	} >"$OUT/soak.md"
	cat "$OUT/soak.md"
	say "written to $OUT/soak.md; logs in $LOGS"
}

main() {
	install_tools
	command -v go >/dev/null || die "go not found in PATH"
	for t in dnsperf timeout awk sort; do command -v "$t" >/dev/null || die "$t not found in PATH"; done
	mkdir -p "$OUT"
	build
	generate
	start_servers
	MAX_QPS=""
	calibrate
	soak
	report
}

main "$@"
