#!/usr/bin/env bash
# dnsward against Unbound on loopback: see docs/benchmarks.md.
#
#   bash bench/run.sh                    # full run (root or sudo installs dnsperf, unbound, h2load)
#   DURATION=5 bash bench/run.sh         # shorter runs
#
# Environment (defaults in brackets):
#   DURATION [10]      seconds per dnsperf run (dnsperf -l)
#   RATE [20000]       queries per second of the fixed-rate (@rate) runs (dnsperf -Q)
#   CLIENTS [8] THREADS [2] OUTSTANDING [500]   dnsperf -c, -T, -q
#   RATE_OUTSTANDING [100]   dnsperf -q of the @rate runs (see docs/benchmarks.md: -q 500
#                      opens with a burst that overflows either server's default socket buffer)
#   ROUNDS [1]         repeat every scenario; the table shows medians
#   SCENARIOS ["cached blocked mixed miss cached@rate blocked@rate mixed@rate dot doh"]
#                      dot and doh: the cached names over DNS over TLS (dnsperf -m dot) and
#                      over HTTPS (h2load, HTTP/2 GETs)
#   RULES [1000000]    rules in the generated list
#   LISTS [../shared/data/lists]  real blocklistproject lists; missing means all synthetic
#   OUT [bench/out]    everything generated, logs and results.md
#   PROFILE [0]        1: an extra cached run of dnsward under `perf record` (if perf works)
#   NO_INSTALL [0]     1: never call apt-get
#   STARTS [3]         start-ups timed per server; the table shows the median
# Every address is on 127.0.0.1. Every wait and every load run is bounded.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
RATE=${RATE:-20000}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
OUTSTANDING=${OUTSTANDING:-500}
RATE_OUTSTANDING=${RATE_OUTSTANDING:-100}
ROUNDS=${ROUNDS:-1}
SCENARIOS=${SCENARIOS:-"cached blocked mixed miss cached@rate blocked@rate mixed@rate dot doh"}
RULES=${RULES:-1000000}
LISTS=${LISTS:-$ROOT/../shared/data/lists}
OUT=${OUT:-$ROOT/bench/out}
PROFILE=${PROFILE:-0}
NO_INSTALL=${NO_INSTALL:-0}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-120s}
STARTS=${STARTS:-3}

HOST=127.0.0.1
UPSTREAM_PORT=5300 UNBOUND_PORT=5301 DNSWARD_PORT=5302 ADMIN_PORT=5303
UNBOUND_TLS_PORT=5304 UNBOUND_HTTPS_PORT=5305 DNSWARD_TLS_PORT=5306 DNSWARD_HTTPS_PORT=5307
declare -A PORT=([dnsward]=$DNSWARD_PORT [unbound]=$UNBOUND_PORT)
declare -A TLS_PORT=([dnsward]=$DNSWARD_TLS_PORT [unbound]=$UNBOUND_TLS_PORT)
declare -A HTTPS_PORT=([dnsward]=$DNSWARD_HTTPS_PORT [unbound]=$UNBOUND_HTTPS_PORT)
declare -A PID=()
BIN=$OUT/bin LOGS=$OUT/logs TSV=$OUT/results.tsv

die() { echo "run.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

cleanup() {
	local name
	for name in "${!PID[@]}"; do
		kill "${PID[$name]}" 2>/dev/null || true
	done
	for name in "${!PID[@]}"; do
		wait "${PID[$name]}" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || die "DURATION=$DURATION: want a whole number of seconds"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -gt 0 ]] || die "ROUNDS=$ROUNDS: want a positive whole number"
[[ $STARTS =~ ^[0-9]+$ && $STARTS -gt 0 ]] || die "STARTS=$STARTS: want a positive whole number"

install_tools() {
	local missing=()
	command -v dnsperf >/dev/null || missing+=(dnsperf)
	command -v unbound >/dev/null || missing+=(unbound)
	command -v h2load >/dev/null || missing+=(nghttp2-client)
	[[ ${#missing[@]} -eq 0 ]] && return
	[[ $NO_INSTALL == 1 ]] && die "missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) or unset NO_INSTALL"
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get; install them by hand"
	local sudo=()
	[[ $(id -u) -eq 0 ]] || { command -v sudo >/dev/null || die "missing ${missing[*]}: run as root or install sudo"; sudo=(sudo); }
	say "installing ${missing[*]}"
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
	# Debian enables the packaged unbound service; the benchmark runs its own.
	if command -v systemctl >/dev/null && systemctl is-active --quiet unbound 2>/dev/null; then
		"${sudo[@]}" systemctl stop unbound || true
	fi
}

check_tools() {
	local t
	command -v go >/dev/null || die "go not found in PATH: dnsward needs Go 1.26 or newer (Debian 12's golang package is too old)"
	for t in dnsperf unbound h2load getconf timeout awk openssl; do
		command -v "$t" >/dev/null || die "$t not found in PATH"
	done
	[[ -r /proc/self/stat ]] || die "/proc is needed for CPU and memory figures"
}

build() {
	say "building dnsward and the bench tools into $BIN"
	# The source state at build time: others may change the tree during the run.
	REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- . ':!bench' 2>/dev/null || echo ' (with uncommitted changes)')"
	mkdir -p "$BIN" "$LOGS"
	(cd "$ROOT" &&
		go build -o "$BIN/dnsward" ./cmd/dnsward &&
		for t in upstream genlists probe report; do go build -o "$BIN/$t" "./bench/$t"; done) ||
		die "go build failed"
}

generate() {
	local miss=$((DURATION * 150000 > 300000 ? DURATION * 150000 : 300000))
	say "generating a $RULES-rule list, query files and configs into $OUT"
	make_cert
	"$BIN/genlists" -out "$OUT" -real "$LISTS" -rules "$RULES" -miss "$miss" -threads "$(nproc)" \
		-upstream "$HOST:$UPSTREAM_PORT" -unbound "$HOST:$UNBOUND_PORT" \
		-dnsward "$HOST:$DNSWARD_PORT" -admin "$HOST:$ADMIN_PORT" \
		-cert "$CERT" -key "$KEY" -unbound-tls "$HOST:$UNBOUND_TLS_PORT" -unbound-https "$HOST:$UNBOUND_HTTPS_PORT" \
		-dnsward-tls "$HOST:$DNSWARD_TLS_PORT" -dnsward-https "$HOST:$DNSWARD_HTTPS_PORT" 2>&1 | sed 's/^/   /' >&2
	cat "$OUT/summary.txt" >&2
}

# make_cert: one self-signed ECDSA P-256 certificate for 127.0.0.1 that both
# servers' DoT and DoH listeners use, and the probe trusts.
make_cert() {
	CERT=$OUT/bench-cert.pem KEY=$OUT/bench-key.pem
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
		-subj /CN=bench.dnsward.test -addext "subjectAltName=DNS:bench.dnsward.test,IP:127.0.0.1" \
		-keyout "$KEY" -out "$CERT" >"$LOGS/openssl.log" 2>&1 || { cat "$LOGS/openssl.log" >&2; die "openssl could not make the bench certificate"; }
}

port_free() {
	command -v ss >/dev/null || return 0
	! ss -Hlnu "sport = :$1" | grep -q . || die "UDP port $1 is in use (a previous run still up?): stop that process first"
}

# start NAME LOGFILE CMD...: runs CMD in the background and records its PID.
start() {
	local name=$1 log=$2
	shift 2
	"$@" >"$log" 2>&1 &
	PID[$name]=$!
}

# stop NAME: ends a process started with start and waits for it.
stop() {
	kill "${PID[$1]}" 2>/dev/null || true
	wait "${PID[$1]}" 2>/dev/null || true
	unset "PID[$1]"
}

alive() { kill -0 "${PID[$1]}" 2>/dev/null || { tail -20 "$LOGS/$1.log" >&2; die "$1 exited; log above"; }; }

start_upstream() {
	port_free $UPSTREAM_PORT
	start upstream "$LOGS/upstream.log" "$BIN/upstream" -listen "$HOST:$UPSTREAM_PORT"
	"$BIN/probe" -mode wait -server "$HOST:$UPSTREAM_PORT" -name ready.bench.test -expect allowed -timeout 10s >/dev/null ||
		{ alive upstream; die "bench upstream did not answer within 10s"; }
}

# start_server NAME: starts it STARTS times, timing the first blocked answer
# each time (the median is reported: one start on a shared VM is noisy), then
# warms the cache and checks answers are what the scenarios assume.
start_server() {
	local name=$1 addr=$HOST:${PORT[$1]} t0 ms i times=()
	for ((i = 1; i <= STARTS; i++)); do
		port_free "${PORT[$name]}"
		t0=$(date +%s%N)
		case $name in
		dnsward) start dnsward "$LOGS/dnsward.log" "$BIN/dnsward" serve -config "$OUT/dnsward.yaml" ;;
		unbound) start unbound "$LOGS/unbound.log" unbound -d -c "$OUT/unbound.conf" ;;
		esac
		ms=$("$BIN/probe" -mode wait -server "$addr" -name "$STARTUP_NAME" -expect blocked -since "$t0" -timeout "$STARTUP_TIMEOUT") ||
			{ alive "$name"; die "$name gave no blocked answer for $STARTUP_NAME within $STARTUP_TIMEOUT"; }
		times+=("$ms")
		((i < STARTS)) && stop "$name"
	done
	STARTUP_MS[$name]=$(printf '%s\n' "${times[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
	say "$name: first blocked answer after ${times[*]} ms (median ${STARTUP_MS[$name]})"
	"$BIN/probe" -mode verify -server "$addr" -file "$OUT/cached.txt" -n 100000 -expect allowed >&2 ||
		die "$name: allowed names do not resolve through the bench upstream"
	"$BIN/probe" -mode verify -server "$addr" -file "$OUT/blocked.txt" -n 500 -expect blocked >&2 ||
		die "$name: listed names are not blocked"
	# Memory before the encrypted checks: 200 DoT handshakes leave garbage
	# that says nothing about the list.
	RSS_KB[$name]=$(status_kb "$name" VmRSS)
	HWM_LOADED_KB[$name]=$(status_kb "$name" VmHWM)
	"$BIN/probe" -mode verify -net dot -ca "$CERT" -server "$HOST:${TLS_PORT[$name]}" -file "$OUT/cached.txt" -n 200 -expect allowed >&2 ||
		die "$name: DNS over TLS does not answer on port ${TLS_PORT[$name]}"
	"$BIN/probe" -mode verify -net doh -ca "$CERT" -server "$HOST:${HTTPS_PORT[$name]}" -file "$OUT/cached.txt" -n 200 -expect allowed >&2 ||
		die "$name: DNS over HTTPS does not answer on port ${HTTPS_PORT[$name]}"
}

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/${PID[$1]}/status"; }

# cpu_ticks NAME: utime+stime of the process (all threads), in clock ticks.
cpu_ticks() {
	local stat
	stat=$(<"/proc/${PID[$1]}/stat")
	stat=${stat##*) } # fields after the command name, which may hold spaces
	awk '{print $12 + $13}' <<<"$stat"
}

# rcvbuf_errors: UDP datagrams the kernel dropped for a full socket buffer.
rcvbuf_errors() { awk '/^Udp:/ {if (h) {print $(col); exit} for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") col = i; h = 1}' /proc/net/snmp; }

# query_file SCENARIO ROUND: the dnsperf input for a scenario.
query_file() {
	local base=${1%@rate}
	[[ $base == dot || $base == doh ]] && base=cached
	if [[ $base == miss && $2 -gt 1 ]]; then
		# A fresh prefix per round keeps cache-miss names unseen by both servers.
		[[ -f $OUT/miss-r$2.txt ]] || awk -v p="r$2-" '{print p $0}' "$OUT/miss.txt" >"$OUT/miss-r$2.txt"
		echo "$OUT/miss-r$2.txt"
		return
	fi
	[[ -f $OUT/$base.txt ]] || die "scenario $1: no $OUT/$base.txt (scenarios: cached blocked mixed miss, each optionally @rate)"
	echo "$OUT/$base.txt"
}

# measure ROUND SCENARIO NAME: one bounded dnsperf run, one results.tsv row.
measure() {
	local round=$1 scen=$2 name=$3 log before after drops
	log=$LOGS/r$round-$scen-$name.txt
	alive "$name"
	before=$(cpu_ticks "$name") drops=$(rcvbuf_errors)
	case $scen in
	doh) load_h2 "$name" "$log" ;;
	*) load_dnsperf "$round" "$scen" "$name" "$log" ;;
	esac
	after=$(cpu_ticks "$name")
	# Lost queries are usually UDP receive-buffer overflows; say so in the log.
	echo "  UDP RcvbufErrors during the run (whole machine): $(($(rcvbuf_errors) - drops))" >>"$log"
	awk -v r="$round" -v s="$scen" -v n="$name" -v ticks=$((after - before)) -v hz="$CLK_TCK" '
		# dnsperf
		/Queries completed:/   {done = $3}
		/Queries lost:/        {lost = $3}
		/Queries per second:/  {qps = $4}
		/Average Latency \(s\):/ {lat = $4 * 1000}
		# h2load: "succeeded" (2xx/3xx) are answered; "failed" includes errored and timed out
		/^finished in .* req\/s/ {qps = $4}
		/^requests: .* succeeded/ {done = $8; lost = $10}
		/^time for request:/   {lat = ms($6)}
		function ms(v) { return v ~ /us$/ ? v / 1000 : v ~ /ms$/ ? v + 0 : v * 1000 }
		END {
			if (done == "" || qps == "") { print "no load statistics" > "/dev/stderr"; exit 1 }
			cpu = done > 0 ? ticks / hz * 1e6 / done : 0
			printf "run\t%s\t%s\t%s\t%.0f\t%d\t%d\t%.3f\t%.2f\n", r, s, n, qps, done, lost, lat, cpu
		}' "$log" >>"$TSV" || die "could not read the load statistics in $log"
	tail -1 "$TSV" | awk -F'\t' '{printf "   %-13s %-8s %8s QPS  %6s lost  %7s ms  %6s µs CPU/query\n", $3, $4, $5, $7, $8, $9}' >&2
}

# load_dnsperf ROUND SCENARIO NAME LOG: one bounded dnsperf run over UDP or DoT.
load_dnsperf() {
	local round=$1 scen=$2 name=$3 log=$4 args
	case ${scen%@rate} in
	dot) args=(-m dot -s "$HOST" -p "${TLS_PORT[$name]}") ;;
	*) args=(-s "$HOST" -p "${PORT[$name]}") ;;
	esac
	args+=(-d "$(query_file "$scen" "$round")" -l "$DURATION" -c "$CLIENTS" -T "$THREADS")
	if [[ $scen == *@rate ]]; then args+=(-q "$RATE_OUTSTANDING" -Q "$RATE"); else args+=(-q "$OUTSTANDING"); fi
	timeout $((DURATION + 30)) dnsperf "${args[@]}" >"$log" 2>&1 || { tail -5 "$log" >&2; die "dnsperf failed on $name ($scen); log $log"; }
}

# load_h2 NAME LOG: one bounded h2load run of DoH GETs for the cached names,
# CLIENTS HTTP/2 connections with OUTSTANDING streams open in all. Not
# dnsperf -m doh: 2.10 (and 2.14) drop the second answer when two arrive in
# one read (docs/benchmarks.md).
load_h2() {
	local name=$1 log=$2 uris=$OUT/doh-$1.txt
	sed "s|^|https://$HOST:${HTTPS_PORT[$name]}|" "$OUT/doh-paths.txt" >"$uris"
	timeout $((DURATION + 30)) h2load -i "$uris" -c "$CLIENTS" -t "$THREADS" -m $(((OUTSTANDING + CLIENTS - 1) / CLIENTS)) -D "$DURATION" >"$log" 2>&1 ||
		{ tail -5 "$log" >&2; die "h2load failed on $name (doh); log $log"; }
}

# profile: an extra cached run of dnsward under perf, outside the measured runs.
profile() {
	command -v perf >/dev/null || { say "PROFILE=1: perf not installed (apt-get install linux-perf); skipped"; return; }
	local secs=$((DURATION < 10 ? DURATION : 10)) data=$OUT/perf-dnsward.data
	say "PROFILE=1: perf record of dnsward for ${secs}s under the cached load"
	timeout $((secs + 30)) dnsperf -s "$HOST" -p "$DNSWARD_PORT" -d "$OUT/cached.txt" -l "$secs" -c "$CLIENTS" -T "$THREADS" -q "$OUTSTANDING" >"$LOGS/profile-dnsperf.txt" 2>&1 &
	local load=$!
	if timeout $((secs + 30)) perf record -F 499 -g -p "${PID[dnsward]}" -o "$data" -- sleep "$secs" >"$LOGS/perf-record.txt" 2>&1; then
		{
			echo "# CPU by object (kernel = syscalls and the network stack)"
			perf report -i "$data" --stdio --no-children -g none --sort dso 2>/dev/null | grep '%' || true
			echo "# hottest symbols"
			perf report -i "$data" --stdio --no-children -g none --percent-limit 0.3 2>/dev/null | grep '%' || true
		} | sed 's/ *$//' >"$OUT/perf-dnsward.txt"
		say "profile: $data (perf report -i $data), top of it in $OUT/perf-dnsward.txt"
	else
		say "perf record failed (see $LOGS/perf-record.txt; perf_event_paranoid?); no profile"
	fi
	wait "$load" || true
}

# damon_note flags kernel memory monitoring (DAMON) running on the machine:
# on a 2-core VM its kdamond thread ran for ~10 ms every sampling interval,
# stalling the servers, more the more memory they use (docs/benchmarks.md).
damon_note() {
	local d state ops interval
	for d in /sys/kernel/mm/damon/admin/kdamonds/*/; do
		state=$(cat "$d/state" 2>/dev/null) || continue
		[[ $state == on ]] || continue
		ops=$(cat "$d/contexts/0/operations" 2>/dev/null || echo "?")
		interval=$(cat "$d/contexts/0/monitoring_attrs/intervals/sample_us" 2>/dev/null || echo 0)
		echo "- kernel: DAMON ($ops) running, sampling every $((interval / 1000)) ms: expect periodic stalls in the @rate latencies"
		return
	done
}

machine() {
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
	damon_note
	echo "- dnsward: $REV at build time, $(go version | awk '{print $3}')"
	echo "- Unbound: $(unbound -V 2>/dev/null | awk '/^Version/ {print $2; exit}'); dnsperf: $(dnsperf -h 2>&1 | awk '/Version/ {print $NF; exit}')"
	echo "- list: $(awk '/^rules/ {r=$2} /^real / {re=$2} /^real_dir/ {d=$2} END {
		if (re > 0) printf "%d rules (%d from the real phishing+tracking lists, the rest synthetic)", r, re
		else printf "%d rules, ALL SYNTHETIC (no real lists in %s)", r, d }' "$OUT/summary.txt")"
	echo "- command: \`$(for v in DURATION RATE CLIENTS THREADS OUTSTANDING RATE_OUTSTANDING ROUNDS STARTS; do printf '%s=%s ' "$v" "${!v}"; done)bash bench/run.sh\`"
	echo "- dnsperf: \`-c $CLIENTS -T $THREADS -l $DURATION -q $OUTSTANDING\`; @rate runs \`-q $RATE_OUTSTANDING -Q $RATE\`"
}

main() {
	install_tools
	check_tools
	CLK_TCK=$(getconf CLK_TCK)
	build
	generate
	STARTUP_NAME=startup-probe.$(tail -1 "$OUT/blocklist.txt")
	declare -gA STARTUP_MS=() RSS_KB=() HWM_LOADED_KB=()
	: >"$TSV"
	start_upstream
	start_server dnsward
	start_server unbound
	local round scen order
	for ((round = 1; round <= ROUNDS; round++)); do
		# Alternate who goes first, so neither always runs on a warmer machine.
		order="dnsward unbound"
		((round % 2 == 0)) && order="unbound dnsward"
		for scen in $SCENARIOS; do
			for name in $order; do measure "$round" "$scen" "$name"; done
		done
	done
	for name in dnsward unbound; do
		printf 'proc\t%s\t%s\t%s\t%s\t%s\n' "$name" "${STARTUP_MS[$name]}" "${RSS_KB[$name]}" "$(status_kb "$name" VmHWM)" "${HWM_LOADED_KB[$name]}" >>"$TSV"
	done
	[[ $PROFILE == 1 ]] && profile
	{
		echo "# dnsward vs Unbound"
		echo
		machine
		echo
		"$BIN/report" -in "$TSV" -rate "$RATE"
	} >"$OUT/results.md"
	echo
	cat "$OUT/results.md"
	say "written to $OUT/results.md; dnsperf logs in $LOGS"
}

main "$@"
