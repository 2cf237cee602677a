#!/usr/bin/env bash
# The load experiment (see experiment/README.md): builds Keeper and the bare baseline,
# starts Keeper in production stage on a fresh SQLite database on 127.0.0.1, seeds 1000
# active users and runs the bursts, the generator check, a concurrency run, a sweep
# that finds where p99 passes 100 ms, a rate run below that point and a login burst.
# Plots and summaries go to experiment/results/ (or the folder named as $1).
#
# Loopback only; every run is bounded in count and time (the whole script takes about
# 80 seconds on a 2-core machine). wrk (Debian: apt-get install wrk) is used for the
# generator check when present.
set -euo pipefail

cd "$(dirname "$0")/.."
results=${1:-experiment/results}
rounds=${ROUNDS:-5}          # alternating burst rounds
secs=${SECS:-5}              # seconds of each concurrency, wrk and sweep step
keeper_addr=127.0.0.1:18090
bare_addr=127.0.0.1:18091
keeper_url=http://$keeper_addr
bare_url=http://$bare_addr/

say() { printf '\n== %s\n' "$*" >&2; }
die() { echo "experiment: $*" >&2; exit 1; }

work=$(mktemp -d)
cleanup() {
	kill "${keeper_pid:-}" "${bare_pid:-}" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

say "build"
go build -o "$work/keeper" ./cmd/keeper
go build -o "$work/bare" ./experiment/bare
keeper=$work/keeper

rm -rf "$results"
mkdir -p "$results"

# Production stage as an operator would run it, on loopback. The SMTP server is never
# contacted (seeded users need no mail); the rate limits are raised only so that the
# login burst measures hashing, not the limiter.
export STAGE=production
export KEEPER_ADDR=$keeper_addr
export KEEPER_PUBLIC_URL=$keeper_url
export KEEPER_DATA_DIR=$work/data
export KEEPER_DATABASE_URL=sqlite:$work/data/keeper.db
export KEEPER_SMTP_URL='smtp://127.0.0.1:18025?tls=none'
export KEEPER_MAIL_FROM='Keeper <keeper@localhost>'
export KEEPER_JWT_KEY_FILE=$work/jwt-ed25519.pem
export KEEPER_RATE_LIMIT_IP=100000
export KEEPER_RATE_LIMIT_EMAIL=100000

say "machine"
{
	echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "cpu:     $(nproc) x $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "memory:  $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
	echo "kernel:  $(uname -sr)"
	echo "go:      $(go version | cut -d' ' -f3-)"
	echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "wrk:     $({ wrk -v 2>&1 || true; } | head -n 1 | cut -d' ' -f1-2)"
} | tee "$results/machine.txt" >&2

say "seed 1000 active users"
"$keeper" keygen -out "$KEEPER_JWT_KEY_FILE"
"$keeper" seed-users -n 1000 -password 'experiment password' >&2

say "start Keeper (production stage) and the bare handler"
start_keeper() {
	"$keeper" 2>>"$work/keeper.log" &
	keeper_pid=$!
	for _ in $(seq 1 100); do
		curl -fsS "$keeper_url/readyz" >/dev/null 2>&1 && return
		sleep 0.1
	done
	die "Keeper did not start; its log ends: $(tail -n 3 "$work/keeper.log")"
}
start_keeper
"$work/bare" -addr "$bare_addr" 2>"$work/bare.log" &
bare_pid=$!
for _ in $(seq 1 100); do
	curl -fsS "$bare_url" >/dev/null 2>&1 && break
	sleep 0.1
done

# Production requires a token for key-value writes: log in as user1 and store one key.
login='{"email":"user1@example.com","password":"experiment password"}'
token=$(curl -fsS -X POST "$keeper_url/api/auth/login" -H 'Content-Type: application/json' \
	-d "$login" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || die "login as user1 failed"
curl -fsS -X POST "$keeper_url/api/result" -H "Authorization: Bearer $token" \
	-H 'Content-Type: application/json' -d '{"experiment":"a small value"}' >/dev/null
user_url=$keeper_url/api/user/1
result_url=$keeper_url/api/result?key=experiment

# lt NAME ARGS... runs one load test quietly, keeps its files under results/NAME and
# prints its JSON summary.
lt() {
	local name=$1
	shift
	"$keeper" loadtest -quiet -json -out "$results/$name" "$@"
}

# field FILE KEY prints the first number after "KEY": in a JSON file.
field() { sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" "$1" | head -n 1; }

# brief NAME prints the headline figures of results/NAME/summary.json as a JSON object.
brief() {
	local f=$results/$1/summary.json
	printf '{"requests": %s, "failed": %s, "throughput_rps": %.0f, "p50_ms": %.2f, ' \
		"$(field "$f" requests)" "$(field "$f" failed)" "$(field "$f" throughput_rps)" \
		"$(field "$f" p50)"
	printf '"p99_ms": %.2f, "max_ms": %.2f, "wall_ms": %.1f}' "$(field "$f" p99)" \
		"$(field "$f" max)" "$(field "$f" wall_ms)"
}

# median prints the median of its arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

say "generator check: wrk and keeper loadtest, 100 connections, ${secs}s each, on the bare handler"
wrk_rps=null
lt_rps=$(lt generator-loadtest -c 100 -duration "${secs}s" "$bare_url" | tee "$work/g.json" |
	sed -n 's/.*"throughput_rps": *\([0-9.]*\).*/\1/p')
if command -v wrk >/dev/null; then
	wrk -t2 -c100 -d"${secs}s" "$bare_url" >"$results/generator-wrk.txt"
	wrk_rps=$(awk '/^Requests\/sec/ {print $2}' "$results/generator-wrk.txt")
	echo "wrk $wrk_rps req/s, keeper loadtest $lt_rps req/s" >&2
else
	echo "wrk is not installed (apt-get install wrk): the generator check has no reference" >&2
fi

say "bursts of 1000 at once, $rounds alternating rounds: bare, /api/user/1, /api/result"
declare -a wall_bare wall_user wall_result
for r in $(seq 1 "$rounds"); do
	for target in bare user result; do
		case $target in
		bare) url=$bare_url ;;
		user) url=$user_url ;;
		result) url=$result_url ;;
		esac
		lt "burst-$target-$r" -n 1000 "$url" >/dev/null
		f="$results/burst-$target-$r/summary.json"
		[ "$(field "$f" failed)" = 0 ] || echo "round $r $target: $(field "$f" failed) failed" >&2
		wall=$(field "$f" wall_ms)
		eval "wall_$target+=(\"$wall\")"
		printf 'round %d  %-6s %8.1f ms\n' "$r" "$target" "$wall" >&2
	done
done
m_bare=$(median "${wall_bare[@]}")
m_user=$(median "${wall_user[@]}")
m_result=$(median "${wall_result[@]}")
echo "median wall time: bare $m_bare ms, user $m_user ms, result $m_result ms" >&2

say "the original client's shape: 1000 requests through at most 100 connections"
lt capped-user -c 100 -n 1000 "$user_url" >/dev/null

say "concurrency: 100 closed-loop workers for ${secs}s on /api/user/1"
lt concurrency-user -c 100 -duration "${secs}s" "$user_url" >/dev/null

say "sweep: open-loop rates on /api/user/1 until p99 passes 100 ms"
lt sweep-user -sweep 4000:4000:80000 -duration "${secs}s" -p99-limit 100ms "$user_url" \
	>/dev/null
sustained=$(field "$results/sweep-user/sweep.json" sustained_rate)
broke=$(field "$results/sweep-user/sweep.json" broke_rate)
echo "sustained $sustained req/s; broke at $broke req/s" >&2

rate=$((sustained * 3 / 4))
[ "$rate" -gt 0 ] || rate=1000
say "rate: $rate req/s (3/4 of the sustained rate) for 10s on /api/user/1"
lt rate-user -rate "$rate" -duration 10s "$user_url" >/dev/null

# A fresh process, so that its peak memory is the login burst's and not the sweep's.
say "login burst: 1000 concurrent logins on a restarted Keeper, its peak memory"
kill -TERM "$keeper_pid"
wait "$keeper_pid" || true
start_keeper
before=$(awk '/VmHWM/ {print $2}' "/proc/$keeper_pid/status")
lt login-burst -n 1000 -timeout 60s -method POST -H 'Content-Type: application/json' \
	-body "$login" "$keeper_url/api/auth/login" >/dev/null
after=$(awk '/VmHWM/ {print $2}' "/proc/$keeper_pid/status")
echo "peak RSS before the login burst $((before / 1024)) MiB, after $((after / 1024)) MiB" >&2

say "summary"
# The CSVs of the long runs are large and are not kept in git (see .gitignore).
{
	printf '{\n'
	printf '  "machine": "%s",\n' "$(sed -n 's/^cpu: *//p' "$results/machine.txt")"
	printf '  "generator": {"wrk_rps": %s, "loadtest_rps": %s},\n' "$wrk_rps" "$lt_rps"
	printf '  "burst_rounds": %d,\n' "$rounds"
	printf '  "burst_wall_ms": {"bare": [%s], "user": [%s], "result": [%s]},\n' \
		"$(IFS=,; echo "${wall_bare[*]}")" "$(IFS=,; echo "${wall_user[*]}")" \
		"$(IFS=,; echo "${wall_result[*]}")"
	printf '  "burst_median_wall_ms": {"bare": %s, "user": %s, "result": %s},\n' \
		"$m_bare" "$m_user" "$m_result"
	printf '  "sweep_p99_limit_ms": 100,\n'
	printf '  "sweep_sustained_rps": %s,\n  "sweep_broke_rps": %s,\n' "$sustained" "$broke"
	printf '  "rate_run_rps": %d,\n' "$rate"
	for name in generator-loadtest capped-user concurrency-user rate-user login-burst; do
		printf '  "%s": %s,\n' "$name" "$(brief "$name")"
	done
	printf '  "login_burst_peak_rss_mib": {"before": %d, "after": %d}\n' \
		$((before / 1024)) $((after / 1024))
	printf '}\n'
} >"$results/summary.json"
cat "$results/summary.json"
grep -c '"level":"ERROR"' "$work/keeper.log" >"$work/errors" || true
echo "Keeper logged $(cat "$work/errors") errors; results in $results" >&2
