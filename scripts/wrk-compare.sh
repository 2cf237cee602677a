#!/usr/bin/env bash
# Compares Keeper's GET paths with a bare net/http handler under wrk, alternating the two
# in one run so that both see the same machine state. Loopback only; every run is
# bounded by -d.
#
#   scripts/wrk-compare.sh [rounds] [seconds] [connections]
#
# Needs wrk (Debian: apt-get install wrk). Keeper runs with its default logging (info,
# one access-log line per request) written to a file, as a service's stderr would be.
set -euo pipefail

rounds=${1:-3}
secs=${2:-5}
conns=${3:-100}
command -v wrk >/dev/null || { echo "wrk-compare: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

dir=$(mktemp -d)
cleanup() {
	kill "${keeper_pid:-}" "${bare_pid:-}" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

go build -o "$dir/keeper" ./cmd/keeper
go build -o "$dir/bare" ./experiment/bare

keeper_addr=127.0.0.1:18080
bare_addr=127.0.0.1:18081
(cd "$dir" && exec env STAGE=development KEEPER_ADDR=$keeper_addr KEEPER_LOG_FORMAT=json \
	./keeper 2>"$dir/keeper.log") &
keeper_pid=$!
"$dir/bare" -addr $bare_addr 2>"$dir/bare.log" &
bare_pid=$!

for _ in $(seq 1 50); do
	curl -fsS "http://$keeper_addr/readyz" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS -X POST "http://$keeper_addr/api/result" -H 'Content-Type: application/json' \
	-d '{"bench":"a small value"}' >/dev/null

# One active user for /api/user/1: register, take the token from the development
# mailer's file, activate.
curl -fsS -X POST "http://$keeper_addr/api/users" -H 'Content-Type: application/json' \
	-d '{"email":"bench@example.com","name":"Bench","password":"benchmark password"}' >/dev/null
token=""
for _ in $(seq 1 100); do
	token=$(grep -ho 'activate?token=[A-Za-z0-9_-]*' "$dir"/data/mail/*.eml 2>/dev/null \
		| head -n 1 | cut -d= -f2) || true
	[ -n "$token" ] && break
	sleep 0.1
done
[ -n "$token" ] || { echo "wrk-compare: no activation mail arrived" >&2; exit 1; }
curl -fsS -X POST "http://$keeper_addr/api/users/activate" -H 'Content-Type: application/json' \
	-d "{\"token\":\"$token\"}" >/dev/null

targets=("bare http://$bare_addr/" "result http://$keeper_addr/api/result?key=bench"
	"user http://$keeper_addr/api/user/1")

rate() { wrk -t2 -c"$conns" -d"${secs}s" "$1" | awk '/^Requests\/sec/ {print $2}'; }

declare -A sum
for r in $(seq 1 "$rounds"); do
	for t in "${targets[@]}"; do
		name=${t%% *}
		url=${t#* }
		rps=$(rate "$url")
		sum[$name]=$(awk -v a="${sum[$name]:-0}" -v b="$rps" 'BEGIN {print a + b}')
		printf 'round %d  %-7s %10.0f req/s\n' "$r" "$name" "$rps"
	done
done

bare=$(awk -v s="${sum[bare]}" -v n="$rounds" 'BEGIN {print s / n}')
for t in "${targets[@]}"; do
	name=${t%% *}
	[ "$name" = bare ] && continue
	mean=$(awk -v s="${sum[$name]}" -v n="$rounds" 'BEGIN {print s / n}')
	awk -v n="$name" -v m="$mean" -v b="$bare" \
		'BEGIN {printf "mean    %-7s %10.0f req/s  = %.2fx bare (%.0f req/s)\n", n, m, m / b, b}'
done
echo "keeper log lines written: $(wc -l <"$dir/keeper.log")"
