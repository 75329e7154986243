#!/usr/bin/env bash
# test_reproduce.sh: `healthivert reproduce` end to end on a phantom mock of
# VerSe 2019 (a 6-case L1-L2 phantom cohort rearranged into VerSe's
# published layout by lib.sh's mock_verse19, its split file named
# verse19_split.json so the published numbers are recognised), methods
# baseline and gan (a tiny random generator, synthesis.neighbours = 0):
#  - an unknown method is refused before anything runs, listing the known
#    ones, and nothing is written; an unwritable output is refused;
#  - a method whose run fails (gan with a file that is no model) is a row
#    "failed" with the reason, the baseline is still reported, exit 3;
#  - 2 ranks: exit 0, table.csv / table.md / table.png; each method's row
#    equals its own grader_metrics.csv (the same %.17g text), and
#    independently: the fold mean and population variance of macro F1
#    recomputed with awk from grader_folds.csv, the val macro F1 and the
#    recall per grade recomputed with awk from the confusion matrix;
#    the published VerSe 2019 numbers appear in table.md as their own
#    table labelled published, never in table.csv;
#  - 1 rank killed with SIGKILL during the gan method, then re-run and
#    stopped with SIGTERM (exit 75, no table), then re-run again: the same
#    table.csv, table.md and table.png as the 2-rank run (rank-count and
#    resume identity at once).
#
# usage: test_reproduce.sh HEALTHIVERT MPIEXEC SOURCE_DIR WORK MAKE_GAN_MODEL
HV=$1 MPIEXEC=$2 SRC=$3 WORK=$4 MAKE_MODEL=$5
source "$(dirname "$0")/lib.sh"
die() { echo "not ok: $*"; echo "$pass passed, $((failn + 1)) failed"; exit 1; }
"$MAKE_MODEL" "$WORK/tiny.h5" --seed 3 --seg-bias 8 >/dev/null || die "tiny model"
"$MAKE_MODEL" "$WORK/broken.h5" --broken >/dev/null || die "broken model"

# -- the mock: a phantom cohort in VerSe 2019's layout (lib.sh)
"$HV" phantom --out "$WORK/ph" --cases 6 --seed 2 --spacing 2 --range L1-L2 \
  --fracture-rate 0.5 >"$WORK/phantom.log" 2>&1 || die "phantom cohort"
v=$WORK/verse
n=$(mock_verse19 "$WORK/ph" "$v" "$v/verse19_split.json") || die "mock"
check "6 cases rearranged" test "$n" -eq 6

# the config: configs/verse19.ini plus a [reproduce] section
cfg=$WORK/repro.ini
{ cat "$SRC/configs/verse19.ini"; printf '\n[reproduce]\nmethods = baseline, gan\noutput = %s\n' \
  "$WORK/unset"; } >"$cfg"
BASE=(--set "input.dataset=$v" --set "input.split=$v/verse19_split.json"
      --set output.images=none --set synthesis.neighbours=0 --set run.progress_interval=0)
COMMON=("${BASE[@]}" --set "synthesis.model=$WORK/tiny.h5")
repro() { # repro NRANKS OUT [args...]: stdout+stderr to OUT.log
  local nr=$1 out=$2; shift 2
  if [ "$nr" -eq 0 ]; then
    "$HV" reproduce "$cfg" "${COMMON[@]}" --set "reproduce.output=$out" "$@" >"$out.log" 2>&1
  else
    "$MPIEXEC" -n "$nr" --oversubscribe "$HV" reproduce "$cfg" "${COMMON[@]}" \
      --set "reproduce.output=$out" "$@" >"$out.log" 2>&1
  fi
}

same_text() { [ -n "$1" ] && [ "$1" = "$2" ]; }
col() { # col FILE NAME ROWKEY: the column NAME of the row whose first field is ROWKEY
  awk -F, -v name="$2" -v key="$3" 'NR == 1 { for (c = 1; c <= NF; c++) k[$c] = c; next }
    $1 == key { print $k[name]; exit }' "$1"
}
# -- refusals before anything runs
repro 0 "$WORK/unk" --set "reproduce.methods=baseline, aot"; rc=$?
check "unknown method refused with exit 2 (got $rc)" [ $rc -eq 2 ]
check "unknown method: named, known ones listed" \
  grep -q "unknown method 'aot' (known: baseline, gan" "$WORK/unk.log"
check "unknown method: nothing written" [ ! -e "$WORK/unk" ]
repro 2 "$WORK/unk2" --set "reproduce.methods=gan,baseline,gan"; rc=$?
check "a method twice refused at 2 ranks (got $rc)" [ $rc -eq 2 ]
check "a method twice: nothing written" [ ! -e "$WORK/unk2" ]
"$HV" reproduce "$cfg" "${COMMON[@]}" --set reproduce.output=/proc/hv-no/out >"$WORK/ro.log" 2>&1
rc=$?
check "unwritable output refused (got $rc)" [ $rc -eq 1 ]
check "unwritable output: says which" grep -q "reproduce.output /proc/hv-no/out" "$WORK/ro.log"
repro 0 "$WORK/setm" --set synthesis.method=gan; rc=$?
check "--set synthesis.method refused (got $rc)" [ $rc -eq 2 ]

# -- a method whose run fails: its row says why, the other is reported
"$HV" reproduce "$cfg" "${BASE[@]}" --set "synthesis.model=$WORK/broken.h5" \
  --set "reproduce.output=$WORK/fail" >"$WORK/fail.log" 2>&1
rc=$?
check "failed method: exit 3 (got $rc; $WORK/fail.log)" [ $rc -eq 3 ]
check "failed method: gan row failed with the reason" \
  grep -q '^gan,failed,.*synthesis.model.*broken.h5' "$WORK/fail/table.csv"
check "failed method: baseline still graded" grep -q '^baseline,ok,5,' "$WORK/fail/table.csv"
check "failed method: its row's columns line up (cases = 0)" \
  [ "$(col "$WORK/fail/table.csv" cases gan)" = 0 ]
check "failed method: baseline row: 12 vertebrae" \
  [ "$(col "$WORK/fail/table.csv" vertebrae baseline)" = 12 ]
check "failed method: table.md says why" grep -q '^gan failed: .*broken.h5' "$WORK/fail/table.md"
check "failed method: progress on stderr" grep -q '^reproduce: gan failed' "$WORK/fail.log"

# -- 2 ranks, uninterrupted
A=$WORK/a
repro 2 "$A"; rc=$?
check "2 ranks: exit 0 (got $rc; $A.log)" [ $rc -eq 0 ]
for f in table.csv table.md table.png; do check "2 ranks: $f written" test -s "$A/$f"; done
check "progress per method on stderr" grep -q '^reproduce: method 2 of 2: gan -> ' "$A.log"
check "two rows, both ok" [ "$(grep -c ',ok,5,' "$A/table.csv")" -eq 2 ]
check "published numbers in table.md, labelled" \
  grep -q '^| HealthiVert-GAN (published) | gan | 0.727 | 0.753 | 0.723 |' "$A/table.md"
check "published AOT-GAN and SupCon-SENet rows" \
  grep -c '(published)' "$A/table.md" | grep -qx 3
check "no published number in table.csv" sh -c "! grep -qi 'published\|0.727' '$A/table.csv'"

# each row against its method's own outputs
for m in baseline gan; do
  gm=$A/$m/grader_metrics.csv
  check "$m: grader is the SVM protocol" grep -q '^svm,val,' "$gm"
  for pair in macro_f1_mean:fold_mean_f1 macro_f1_var:fold_var_f1 \
              macro_precision_mean:fold_mean_precision macro_precision_var:fold_var_precision \
              macro_recall_mean:fold_mean_recall macro_recall_var:fold_var_recall \
              val_macro_f1:macro_f1 val_macro_precision:macro_precision \
              val_macro_recall:macro_recall; do
    t=$(col "$A/table.csv" "${pair%%:*}" "$m"); g=$(col "$gm" "${pair##*:}" svm)
    check "$m: table ${pair%%:*} ($t) = grader_metrics ${pair##*:} ($g)" same_text "$t" "$g"
  done
  nfb=$(grep -c synth_fallback "$A/$m/vertebrae.csv")
  check "$m: synth_fallbacks = the flagged rows of vertebrae.csv ($nfb)" \
    [ "$(col "$A/table.csv" synth_fallbacks "$m")" = "$nfb" ]
  # independent: fold mean and population variance of macro F1 from the folds
  read -r fm fv < <(awk -F, 'NR > 1 { x[NR] = $2; s += $2; n++ }
    END { m = s / n; for (i in x) v += (x[i] - m) ^ 2; printf "%.15g %.15g\n", m, v / n }' \
    "$A/$m/grader_folds.csv")
  check "$m: 5 folds" [ "$(($(wc -l <"$A/$m/grader_folds.csv") - 1))" -eq 5 ]
  check "$m: fold mean F1 = awk over grader_folds.csv" awk -v a="$(col "$A/table.csv" macro_f1_mean "$m")" \
    -v b="$fm" 'BEGIN { d = a - b; exit !(d < 1e-12 && d > -1e-12) }'
  check "$m: fold variance F1 = awk over grader_folds.csv" awk -v a="$(col "$A/table.csv" macro_f1_var "$m")" \
    -v b="$fv" 'BEGIN { d = a - b; exit !(d < 1e-12 && d > -1e-12) }'
  # independent: val macro F1 and per-grade recall from the confusion matrix
  # (rows true, columns predicted; F1 per class 2 tp / (row + column), the
  # macro mean over the classes present)
  awk -F, '/^true\\pred/ { hdr = 1; for (c = 2; c <= NF; c++) cls[c - 1] = $c; k = NF - 1; next }
    hdr && NF > 1 { r++; for (c = 2; c <= NF; c++) { m[r, c - 1] = $c; row[r] += $c; colsum[c - 1] += $c } }
    END { for (i = 1; i <= k; i++) { f = (row[i] + colsum[i]) ? 2 * m[i, i] / (row[i] + colsum[i]) : 0; s += f
            printf "recall_grade%s %.15g\n", cls[i], row[i] ? m[i, i] / row[i] : -1 }
          printf "val_macro_f1 %.15g\n", s / k }' "$gm" >"$WORK/$m.conf"
  check "$m: confusion read ($(wc -l <"$WORK/$m.conf") values)" [ "$(wc -l <"$WORK/$m.conf")" -ge 3 ]
  while read -r name want; do
    [ "$want" = "-1" ] && continue
    got=$(col "$A/table.csv" "$name" "$m")
    check "$m: $name ($got) = $want from the confusion" awk -v a="$got" -v b="$want" \
      'BEGIN { d = a - b; exit !(a != "" && d < 1e-12 && d > -1e-12) }'
  done <"$WORK/$m.conf"
done

# -- 1 rank, SIGKILL during the gan method, then re-run: the same table
B=$WORK/b
"$HV" reproduce "$cfg" "${COMMON[@]}" --set "reproduce.output=$B" >"$B.log" 2>&1 &
pid=$!
wait_done "$B.log" 7 $pid   # the baseline's 6 cases, then one of gan's
check "killed during gan (a gan case done, the run still going)" kill -0 $pid
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
check "no table after the kill" [ ! -e "$B/table.csv" ]
# then SIGTERM during the resumed gan run: exit 75, no table, resumable
jb=$(journal_bytes "$B/gan")
"$HV" reproduce "$cfg" "${COMMON[@]}" --set "reproduce.output=$B" >"$B.term.log" 2>&1 &
pid=$!
wait_journal "$B/gan" $pid "$jb"
kill -TERM $pid 2>/dev/null
wait $pid; rc=$?
check "SIGTERM during gan: exit 75 (got $rc; $B.term.log)" [ $rc -eq 75 ]
check "SIGTERM: says how to resume" grep -q "stopped early: stopped during method gan; re-run" "$B.term.log"
check "no table after SIGTERM" [ ! -e "$B/table.csv" ]
repro 0 "$B"; rc=$?
check "1 rank, re-run after kill -9: exit 0 (got $rc; $B.log)" [ $rc -eq 0 ]
check "the re-run resumed gan (1 to 5 of its cases finished earlier)" \
  grep -qE "ready: [1-5] case\(s\) to run, [1-5] finished earlier" "$B.log"
for f in table.csv table.md table.png; do
  check "1 rank after kill -9 = 2 ranks: $f" cmp "$A/$f" "$B/$f"
done
finish
