#!/usr/bin/env bash
# Runs every query command in every output format with two sipidx binaries on the same DB and
# diffs stdout, stderr and exit status: a refactoring of the query/output layer must change none.
# Usage: scripts/compare-output.sh OLD_BIN NEW_BIN [DB]   (DB is built with OLD_BIN when missing)
set -u
old=${1:?old binary}
new=${2:?new binary}
db=${3:-/tmp/sipidx-compare.db}
root=$(cd "$(dirname "$0")/.." && pwd)
caps=("$root"/testdata/corpus "$root"/testdata/rtp "$root"/testdata/crafted)
if [ ! -f "$db/catalog.json" ]; then
    "$old" index -q --db "$db" "${caps[@]}" 2>/dev/null
fi
out=$(mktemp -d)
fail=0
n=0

run() { # run NAME ARGS...: both binaries, same args; COLUMNS fixed so piped tables are stable
    local name=$1
    shift
    n=$((n + 1))
    (cd "$root" && COLUMNS=${COLUMNS_OVERRIDE:-} "$old" "$@" >"$out/old.out" 2>"$out/old.err"; echo "exit $?" >>"$out/old.err")
    (cd "$root" && COLUMNS=${COLUMNS_OVERRIDE:-} "$new" "$@" >"$out/new.out" 2>"$out/new.err"; echo "exit $?" >>"$out/new.err")
    sed -i "s#$old#BIN#g" "$out/old.err"
    sed -i "s#$new#BIN#g" "$out/new.err"
    if ! cmp -s "$out/old.out" "$out/new.out" || ! cmp -s "$out/old.err" "$out/new.err"; then
        echo "DIFF: $name: $*"
        diff "$out/old.out" "$out/new.out" | head -10
        diff "$out/old.err" "$out/new.err" | head -10
        fail=$((fail + 1))
    fi
}

fmts=("--color never" "--color always" "--json" "--csv")
limits=("" "--limit 0" "--limit 3" "--limit 1")
for f in "${fmts[@]}"; do
    for l in "${limits[@]}"; do
        # shellcheck disable=SC2086
        {
            run "search $f $l" search --db "$db" $f $l
            run "search invite $f $l" search --db "$db" $f $l INVITE
            run "search status $f $l" search --db "$db" $f $l --status 4xx --sort -time
            run "search cidr $f $l" search --db "$db" $f $l --ip 10.0.0.0/8 --method INVITE
            run "search since $f $l" search --db "$db" $f $l --since 2012-01-01 --until "2014-01-01 00:00"
            run "search none $f $l" search --db "$db" $f $l --call-id nosuch
            run "calls $f $l" calls --db "$db" $f $l
            run "calls sort $f $l" calls --db "$db" $f $l --sort -duration --kind call
            run "calls pdd $f $l" calls --db "$db" $f $l --min-pdd 100ms --min-duration 1
            run "calls state $f $l" calls --db "$db" $f $l --state answered,canceled --status 2xx
            run "calls failed $f $l" calls --db "$db" $f $l --failed --ua nero
            run "calls none $f $l" calls --db "$db" $f $l --call-id nosuch
        }
    done
    # shellcheck disable=SC2086
    COLUMNS_OVERRIDE=80 run "calls narrow $f" calls --db "$db" $f
    # shellcheck disable=SC2086
    COLUMNS_OVERRIDE=60 run "search narrow $f" search --db "$db" $f
done
for f in "" "--json" "--csv"; do
    # shellcheck disable=SC2086
    {
        run "streams $f" streams --db "$db" $f
        run "streams call $f" streams --db "$db" $f --call-id 1-7879@127.0.0.1
        run "streams unmatched $f" streams --db "$db" $f --unmatched --codec pcma
        run "streams ssrc $f" streams --db "$db" $f --ssrc 0x0EAF0EAF
        run "streams loss $f" streams --db "$db" $f --min-loss 1 --max-mos 4 --ip 10.0.0.0/8
        run "streams time $f" streams --db "$db" $f --since 2008-01-01 --until 2015-01-01
        run "streams none $f" streams --db "$db" $f --port 1
    }
done
for id in 1-7879@127.0.0.1 00e9d4a500e9d48-0015-0001-0000-0000@10.35.40.25 \
    11894297-4432a9f8@192.168.1.2 span-1340f61b46e5@10.0.8.1 nosuch; do
    for f in "" "--json" "--explain" "--json --explain"; do
        # shellcheck disable=SC2086
        run "quality $id $f" quality --db "$db" $f "$id"
    done
done
for f in "" "--json"; do
    for w in "" "--by hour" "--by day --top 3" "--since 2012-01-01 --until 2013-01-01" "--since 2030-01-01"; do
        # shellcheck disable=SC2086
        run "stats $f $w" stats --db "$db" $f $w
    done
done
run "no db" calls --db /nonexistent/db
run "no db search" search --db /nonexistent/db
run "no db stats" stats --db /nonexistent/db
run "bad sort" calls --db "$db" --sort nope
run "bad status" search --db "$db" --status 9xx
run "bad time" calls --db "$db" --since yesterday
run "bad dur" calls --db "$db" --min-duration 5parsecs
run "bad ssrc" streams --db "$db" --ssrc zz

g=("$root"/testdata/corpus/*.pcap* "$root"/testdata/crafted/*.pcap*)
for f in "" "--json" "-c" "--color always"; do
    # shellcheck disable=SC2086
    {
        run "grep $f" grep $f "${g[@]}"
        run "grep invite $f" grep $f --method INVITE "${g[@]}"
        run "grep dialog $f" grep $f -G --status 487 "${g[@]}"
        run "grep regex $f" grep $f -i "${g[@]}" -- 'x-lite'
        run "grep dedup $f" grep $f --dedup --dedup-window 1.5ms "${g[@]}"
        run "grep keep $f" grep $f --keep-hep-mirrors --hep-dedup-window 2 "${g[@]}"
        run "grep since $f" grep $f --since 2012-06-23 --until "2012-06-23 23:45:11" "${g[@]}"
        run "grep ip $f" grep $f --ip 2001:db8::/32 "${g[@]}"
    }
done
run "grep bad window" grep --dedup --dedup-window 500ms "${g[@]}"
run "grep bad dur" grep --hep-dedup-window 5parsecs "${g[@]}"
run "grep missing" grep /nonexistent.pcap

rm -rf "$out"
echo "$n cases, $fail differ"
[ "$fail" -eq 0 ]
