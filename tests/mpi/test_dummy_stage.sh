#!/usr/bin/env bash
# A stage added through the table alone (dummy_stage_run.c: the default rows
# plus one) is run, timed, logged and stored by its name: the per-case log
# line names it with its seconds, the store's per-stage seconds carry a
# column "dummy" holding at least its 25 ms sleep for every case (read with
# h5dump, not with our code), and the exported cases.csv has that column.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4 RUNNER=$5
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
d="$WORK/run"
"$MPIEXEC" -n 2 --oversubscribe "$RUNNER" "$COHORT" "$d" >"$d.log" 2>&1; rc=$?
check "run with the dummy stage exits 0 (rc $rc; $d.log)" [ $rc -eq 0 ]
n=$(grep -c ': done, .*dummy 0\.0[2-9]' "$d.log")
check "every case's log line names the dummy stage with >= 20 ms ($n of 10)" [ "$n" -eq 10 ]
check "the log names the dummy stage after pictures' place in the table" \
  grep -q 'grade [0-9.]*, dummy [0-9.]*, store ' "$d.log"
# the store: stage names and seconds, by h5dump
names=$(h5dump -d /cases/stage_names "$d/store.h5" 2>/dev/null | grep -o '"[a-z_]*"' | tr -d '"' | tr '\n' ' ')
check "store lists the stages by name, dummy among them ('$names')" \
  bash -c "echo '$names' | grep -qw dummy"
col=$(echo "$names" | tr ' ' '\n' | grep -n -x dummy | cut -d: -f1)
check "dummy has a column (${col:-none})" [ -n "$col" ]
if [ -n "$col" ]; then
  # /cases/seconds is float64[N][n_stages]: one row of numbers per case
  vals=$(h5dump -y -w 0 -d /cases/seconds "$d/store.h5" 2>/dev/null | sed -n '/DATA {/,/}/p' |
         grep -v 'DATA\|}' | tr -s ' ,' '\n\n' | grep -v '^$')
  nst=$(echo "$names" | wc -w)
  ok=$(echo "$vals" | awk -v c="$col" -v n="$nst" '{ i = NR - 1; if (i % n == c - 1) { m++; if ($1 >= 0.02) g++ } }
        END { print (m == 10 && g == 10) ? "yes" : "no " m " " g }')
  check "store: dummy seconds >= 0.02 for all 10 cases ($ok)" [ "$ok" = yes ]
fi
"$HV" export "$d/store.h5" --csv "$WORK/exp" >/dev/null 2>&1
hdr=$(head -1 "$WORK/exp/cases.csv")
check "exported cases.csv has a dummy column ($hdr)" bash -c "echo '$hdr' | tr ',' '\n' | grep -q dummy"
finish
