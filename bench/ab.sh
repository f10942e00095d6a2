#!/usr/bin/env bash
# bench/ab.sh: compare two ferrogram-server builds (A and B) with
# ferrogram-loadgen, runs interleaved A, B, A, B, ... so both see the same
# neighbours on a shared machine. See BENCHMARKS.md ("Method", "A/B").
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/ab.sh (--a BIN | --rev-a REV) (--b BIN | --rev-b REV) [options]

Compares two ferrogram-server builds. For each side it provisions the test
users once (a server in bench mode on a data folder of its own), then for
each of N pairs and each workload it runs A, then B, each against a freshly
started server on a fresh copy of that side's provisioned data folder
(`ferrogram-loadgen run --server-pid`), stops the server, and goes on.
It prints a Markdown table per pair and the medians over the pairs:
delivered/s, end-to-end p50 and p99, server CPU per message (the report's
server.cpu_us_per_message, from /proc/PID/stat), the generator's CPU per
message, and what was lost (receipts, unacknowledged sends, connections the
server closed).

Builds:
  --a BIN, --b BIN     server binaries to compare (built with --release)
  --rev-a REV, --rev-b REV
                       git revisions of this repository instead: each is
                       checked out in a temporary worktree and built with
                       `cargo build --release --workspace --bin ferrogram-server`
                       (dependencies shared through --target-dir)
  --target-dir DIR     cargo target folder for --rev-* builds
                       (default: WORK_DIR/target; the binaries are copied out)
  --loadgen BIN        the generator that drives both sides (default:
                       target/release/ferrogram-loadgen of this repository,
                       else ferrogram-loadgen on PATH)
  --own-loadgen        each side uses the ferrogram-loadgen beside its server
                       binary (built too with --rev-*): for builds whose
                       protocol differs, e.g. a new envelope version

Workload:
  --pairs N            A/B pairs per workload (default 5)
  --workloads LIST     comma-separated: direct, group (default direct,group)
  --users N            users = connections (default 1000)
  --direct-rate R      1:1 messages per second (default 5000)
  --group-rate R       group messages per second (default 506: with groups
                       of 100, 99 deliveries each, 50,094 deliveries/s)
  --group-size N       members per group (default 100)
  --duration S         measured seconds per run (default 10)
  --warmup S           warm-up seconds per run, not measured (default 2)

Other:
  --port P             loopback port of the server under test (default 18090)
  --work-dir DIR       where data folders, configs, logs and JSON reports go
                       (default: a new temporary folder, removed at the end
                       unless --keep)
  --keep               keep the work folder
  -h, --help           this text

The server inherits the environment, so FERROGRAM__* variables reach both
sides alike (e.g. FERROGRAM__DATABASE__COMMIT_DELAY_US=2000). Needs bash,
curl, jq and, for --rev-*, git and cargo.

Example (two builds, 5 pairs of each workload):
  bench/ab.sh --rev-a main --rev-b HEAD
  bench/ab.sh --a /tmp/old/ferrogram-server --b target/release/ferrogram-server \
      --pairs 2 --duration 3 --direct-rate 1000 --group-rate 50
EOF
}

die() {
    echo "ab.sh: $*" >&2
    exit 2
}

note() {
    echo "ab.sh: $*" >&2
}

# ---- arguments ----------------------------------------------------------

bin_a="" bin_b="" rev_a="" rev_b="" loadgen="" own_loadgen=0
pairs=5 workloads="direct,group" users=1000 direct_rate=5000 group_rate=506
group_size=100 duration=10 warmup=2 port=18090 work="" keep=0 target_dir=""

need_value() {
    [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --a) need_value "$@"; bin_a=$2; shift 2 ;;
        --b) need_value "$@"; bin_b=$2; shift 2 ;;
        --rev-a) need_value "$@"; rev_a=$2; shift 2 ;;
        --rev-b) need_value "$@"; rev_b=$2; shift 2 ;;
        --target-dir) need_value "$@"; target_dir=$2; shift 2 ;;
        --loadgen) need_value "$@"; loadgen=$2; shift 2 ;;
        --own-loadgen) own_loadgen=1; shift ;;
        --pairs) need_value "$@"; pairs=$2; shift 2 ;;
        --workloads) need_value "$@"; workloads=$2; shift 2 ;;
        --users) need_value "$@"; users=$2; shift 2 ;;
        --direct-rate) need_value "$@"; direct_rate=$2; shift 2 ;;
        --group-rate) need_value "$@"; group_rate=$2; shift 2 ;;
        --group-size) need_value "$@"; group_size=$2; shift 2 ;;
        --duration) need_value "$@"; duration=$2; shift 2 ;;
        --warmup) need_value "$@"; warmup=$2; shift 2 ;;
        --port) need_value "$@"; port=$2; shift 2 ;;
        --work-dir) need_value "$@"; work=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

# int_in OPTION VALUE MIN MAX: VALUE is a whole number from MIN to MAX.
int_in() {
    if ! [[ $2 =~ ^[0-9]{1,9}$ ]] || ((10#$2 < $3 || 10#$2 > $4)); then
        die "$1 must be a whole number from $3 to $4, not '$2'"
    fi
}
is_number() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }

[[ -n $bin_a && -n $rev_a ]] && die "give --a or --rev-a, not both"
[[ -n $bin_b && -n $rev_b ]] && die "give --b or --rev-b, not both"
[[ -n $bin_a || -n $rev_a ]] || die "side A missing: give --a BIN or --rev-a REV (see --help)"
[[ -n $bin_b || -n $rev_b ]] || die "side B missing: give --b BIN or --rev-b REV (see --help)"
int_in --pairs "$pairs" 1 1000
int_in --users "$users" 2 1000000
int_in --group-size "$group_size" 2 100000
int_in --port "$port" 1 65535
for value in "$direct_rate" "$group_rate" "$duration" "$warmup"; do
    is_number "$value" || die "not a number: $value"
done
IFS=, read -r -a workload_list <<<"$workloads"
((${#workload_list[@]} > 0)) || die "--workloads is empty"
for w in "${workload_list[@]}"; do
    [[ $w == direct || $w == group ]] || die "unknown workload: $w (direct or group)"
done

for tool in curl jq; do
    command -v "$tool" >/dev/null || die "$tool is needed and not installed"
done
if [[ -n $rev_a || -n $rev_b ]]; then
    for tool in git cargo; do
        command -v "$tool" >/dev/null || die "$tool is needed for --rev-a/--rev-b and not found"
    done
fi

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)

# ---- work folder and clean-up -------------------------------------------

if [[ -z $work ]]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/ferrogram-ab.XXXXXX")
else
    mkdir -p "$work"
    work=$(cd "$work" && pwd)
fi
chmod 700 "$work"
[[ -n $target_dir ]] || target_dir=$work/target

server_pid=""
worktrees=()

cleanup() {
    local status=$?
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    local tree
    for tree in "${worktrees[@]}"; do
        git -C "$repo" worktree remove --force "$tree" >/dev/null 2>&1 || true
    done
    if ((keep)); then
        note "work folder kept: $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- binaries -----------------------------------------------------------

# build_rev SIDE REV: builds REV in a temporary worktree and copies the
# binaries to WORK/bin-SIDE/.
build_rev() {
    local side=$1 rev=$2 tree=$work/src-$1 out=$work/bin-$1
    git -C "$repo" rev-parse --verify --quiet "$rev^{commit}" >/dev/null ||
        die "not a git revision of $repo: $rev"
    git -C "$repo" worktree add --detach "$tree" "$rev" >&2 ||
        die "cannot check out $rev in $tree"
    worktrees+=("$tree")
    local bins=(--bin ferrogram-server)
    ((own_loadgen)) && bins+=(--bin ferrogram-loadgen)
    note "building $side = $rev ($(git -C "$tree" rev-parse --short HEAD)) in $tree"
    (cd "$tree" && cargo build --release --workspace "${bins[@]}" --target-dir "$target_dir") >&2 ||
        die "cargo build of $rev failed"
    mkdir -p "$out"
    cp "$target_dir/release/ferrogram-server" "$out/"
    if ((own_loadgen)); then
        cp "$target_dir/release/ferrogram-loadgen" "$out/"
    fi
}

check_bin() {
    local what=$1 path=$2
    [[ -e $path ]] || die "$what not found: $path"
    [[ -f $path && -x $path ]] || die "$what is not an executable file: $path"
}

# One build at a time (two cargo builds at once would fight over the cores).
if [[ -n $rev_a ]]; then
    build_rev a "$rev_a"
    bin_a=$work/bin-a/ferrogram-server
fi
if [[ -n $rev_b ]]; then
    build_rev b "$rev_b"
    bin_b=$work/bin-b/ferrogram-server
fi
check_bin "server binary A" "$bin_a"
check_bin "server binary B" "$bin_b"
bin_a=$(cd "$(dirname "$bin_a")" && pwd)/$(basename "$bin_a")
bin_b=$(cd "$(dirname "$bin_b")" && pwd)/$(basename "$bin_b")

if ((own_loadgen)); then
    [[ -z $loadgen ]] || die "give --loadgen or --own-loadgen, not both"
    loadgen_a=$(dirname "$bin_a")/ferrogram-loadgen
    loadgen_b=$(dirname "$bin_b")/ferrogram-loadgen
else
    if [[ -z $loadgen ]]; then
        if [[ -x $repo/target/release/ferrogram-loadgen ]]; then
            loadgen=$repo/target/release/ferrogram-loadgen
        else
            loadgen=$(command -v ferrogram-loadgen) ||
                die "no generator: build it (cargo build --release --workspace --bin ferrogram-loadgen) or give --loadgen BIN"
        fi
    fi
    loadgen_a=$loadgen
    loadgen_b=$loadgen
fi
check_bin "generator for A" "$loadgen_a"
check_bin "generator for B" "$loadgen_b"
for lg in "$loadgen_a" "$loadgen_b"; do
    [[ $("$lg" --version 2>/dev/null) == ferrogram-loadgen* ]] ||
        die "$lg does not look like ferrogram-loadgen (its --version does not say so)"
done

# ---- the server ---------------------------------------------------------

# Each server keeps two descriptors per WebSocket; the generator raises its
# own limit. Lift the soft limit (inherited by both) to the hard one.
hard=$(ulimit -Hn)
if [[ $hard == unlimited ]]; then
    ulimit -n 1048576 2>/dev/null || true
else
    ulimit -n "$hard" 2>/dev/null || true
fi
if (($(ulimit -n) < 2 * users + 1280)); then
    note "warning: open-file limit $(ulimit -n) is low for $users connections (about $((2 * users + 1280)) needed)"
fi

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_server BIN DIR: starts BIN in bench mode with its data in DIR/data
# and waits until it answers; sets server_pid.
start_server() {
    local bin=$1 dir=$2
    port_in_use "$port" && die "port $port is already in use (choose another with --port)"
    cat >"$dir/bench.yaml" <<YAML
server: {host: "127.0.0.1", port: $port}
data_dir: "$dir/data"
bench: {enabled: true}
log: {level: "warn"}
# The generator spreads its sockets over 16 loopback addresses: lift the
# per-IP caps (docs/security.md, "Limits and abuse").
limits: {max_connections_per_ip: 100000, max_sockets_per_ip: 1000000}
YAML
    "$bin" --config "$dir/bench.yaml" </dev/null >>"$dir/server.log" 2>&1 &
    server_pid=$!
    local tries=0
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/api/v1/server" 2>/dev/null; do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid" 2>/dev/null || true
            server_pid=""
            echo "ab.sh: $bin exited at start; its log:" >&2
            tail -n 20 "$dir/server.log" >&2
            exit 1
        fi
        tries=$((tries + 1))
        ((tries <= 600)) || die "$bin did not answer within 60 s (log: $dir/server.log)"
        sleep 0.1
    done
}

# stop_server: SIGTERM (a graceful stop), SIGKILL after 30 s.
stop_server() {
    [[ -n $server_pid ]] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    local tries=0
    while kill -0 "$server_pid" 2>/dev/null && ((tries < 300)); do
        sleep 0.1
        tries=$((tries + 1))
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

short_id() {
    sha256sum "$1" | cut -c1-12
}

# ---- provisioning, once per side ----------------------------------------

provision() {
    local side=$1 bin=$2 lg=$3 dir=$work/seed-$1
    mkdir -p "$dir"
    note "side $side: provisioning $users users"
    start_server "$bin" "$dir"
    if ! "$lg" provision --server "127.0.0.1:$port" --users "$users" \
        --out "$dir/users.json" >"$dir/provision.log" 2>&1; then
        stop_server
        echo "ab.sh: provisioning for side $side failed; its log:" >&2
        tail -n 20 "$dir/provision.log" >&2
        exit 1
    fi
    stop_server
    [[ -s $dir/users.json ]] || die "provisioning for side $side wrote no $dir/users.json"
}

provision a "$bin_a" "$loadgen_a"
provision b "$bin_b" "$loadgen_b"

# ---- runs ---------------------------------------------------------------

results=$work/results.tsv
printf 'workload\tpair\tside\tload\tdelivered_per_sec\tp50_ms\tp99_ms\tserver_us\tgen_us\tlost\tunacked\tconn_errors\tstatus\n' >"$results"

# run_one SIDE WORKLOAD PAIR: one measured run against a fresh server.
run_one() {
    local side=$1 workload=$2 pair=$3 bin lg rate
    if [[ $side == a ]]; then bin=$bin_a lg=$loadgen_a; else bin=$bin_b lg=$loadgen_b; fi
    if [[ $workload == direct ]]; then rate=$direct_rate; else rate=$group_rate; fi
    local dir=$work/run-$workload-$pair-$side
    mkdir -p "$dir"
    cp -a "$work/seed-$side/data" "$dir/data"
    start_server "$bin" "$dir"
    local args=(run --creds "$work/seed-$side/users.json" --server "127.0.0.1:$port"
        --users "$users" --workload "$workload" --rate "$rate" --duration "$duration"
        --warmup "$warmup" --server-pid "$server_pid" --json "$dir/report.json")
    [[ $workload == group ]] && args+=(--group-size "$group_size")
    note "pair $pair, $workload, side $side: $rate msg/s for $duration s"
    local status=ok
    "$lg" "${args[@]}" >"$dir/loadgen.log" 2>&1 || status=failed
    stop_server
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    if [[ $status == ok && -s $dir/report.json ]]; then
        jq -r --arg w "$workload" --arg p "$pair" --arg s "$side" --arg l "$load" '
            [$w, $p, $s, $l,
             (.delivered_per_sec | floor),
             (.e2e_latency.p50_ms * 10 | round / 10),
             (.e2e_latency.p99_ms * 10 | round / 10),
             ((.server.cpu_us_per_message // 0) * 10 | round / 10),
             ((.generator.cpu_us_per_message // 0) * 10 | round / 10),
             .lost, .unacknowledged, .connection_errors,
             (if .duplicated > 0 or (.errors | length) > 0 then "duplicates or refusals" else "ok" end)]
            | @tsv' "$dir/report.json" >>"$results"
    else
        printf '%s\t%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\tfailed (%s)\n' \
            "$workload" "$pair" "$side" "$load" "$dir/loadgen.log" >>"$results"
        echo "ab.sh: run failed; the generator's last lines:" >&2
        tail -n 5 "$dir/loadgen.log" >&2
        failures=$((failures + 1))
    fi
    ((keep)) || rm -rf "$dir/data"
}

failures=0
for pair in $(seq 1 "$pairs"); do
    for workload in "${workload_list[@]}"; do
        run_one a "$workload" "$pair"
        run_one b "$workload" "$pair"
    done
done

# ---- report -------------------------------------------------------------

echo "# A/B: ferrogram-server, $pairs pairs per workload, runs interleaved A, B"
echo
echo "- A: $bin_a (sha256 $(short_id "$bin_a"))${rev_a:+, revision $rev_a}"
echo "- B: $bin_b (sha256 $(short_id "$bin_b"))${rev_b:+, revision $rev_b}"
if ((own_loadgen)); then
    echo "- generators: $loadgen_a (A), $loadgen_b (B)"
else
    echo "- generator: $loadgen (sha256 $(short_id "$loadgen"))"
fi
echo "- $users users, $duration s measured after $warmup s of warm-up, a fresh server and data copy per run"
echo "- direct: $direct_rate msg/s, 1 KiB; group: $group_rate msg/s to groups of $group_size"
echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs; load = 1-min load average after the run"
echo

columns='| side | load | delivered/s | p50 ms | p99 ms | server µs/msg | generator µs/msg | lost | unacked | conn. closed | status |'
rule='| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
for workload in "${workload_list[@]}"; do
    for pair in $(seq 1 "$pairs"); do
        echo "## $workload, pair $pair"
        echo
        echo "$columns"
        echo "$rule"
        awk -F'\t' -v w="$workload" -v p="$pair" '
            NR > 1 && $1 == w && $2 == p {
                printf "| %s |", toupper($3)
                for (i = 4; i <= 13; i++) printf " %s |", $i
                printf "\n"
            }' "$results"
        echo
    done
done

# Medians over the runs of each side that finished; sums of losses.
echo "## Medians over the pairs"
echo
echo '| workload | side | runs | delivered/s | p50 ms | p99 ms (range) | server µs/msg (range) | generator µs/msg | lost (sum) | unacked (sum) | runs that lost or closed |'
echo '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
for workload in "${workload_list[@]}"; do
    for side in a b; do
        awk -F'\t' -v w="$workload" -v s="$side" '
            function median(a, n,    i, j, t) {
                for (i = 2; i <= n; i++) {
                    t = a[i]
                    for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
                    a[j + 1] = t
                }
                if (n == 0) return "-"
                return sprintf("%.1f", (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2)
            }
            NR > 1 && $1 == w && $3 == s && $5 != "-" {
                n++
                d[n] = $5; p50[n] = $6; p99[n] = $7; cpu[n] = $8; gen[n] = $9
                lost += $10; unacked += $11
                if ($10 > 0 || $11 > 0 || $12 > 0) bad++
            }
            NR > 1 && $1 == w && $3 == s { runs++ }
            END {
                md = median(d, n); m50 = median(p50, n); m99 = median(p99, n)
                mcpu = median(cpu, n); mgen = median(gen, n)
                # median() sorted the arrays in place: ranges from the ends.
                printf "| %s | %s | %d of %d | %s | %s | %s (%s-%s) | %s (%s-%s) | %s | %d | %d | %d |\n",
                    w, toupper(s), n, runs, md, m50, m99, p99[1], p99[n],
                    mcpu, cpu[1], cpu[n], mgen, lost, unacked, bad
            }' "$results"
    done
done
echo
if ((keep)); then
    echo "Per-run reports (JSON), generator and server logs: $work"
fi
if ((failures > 0)); then
    note "$failures run(s) failed"
    exit 1
fi
