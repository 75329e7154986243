# lib.sh: the prelude the tests/e2e shell tests share.
#
# Sourced after HV, MPIEXEC, SRC and WORK are set: refuses a scratch folder
# not named tmp-* (it is wiped), wipes and creates it, and defines check
# ("what" command...: counts, prints "not ok: what" on failure) and finish
# (prints "N passed, N failed" and exits 1 on any failure), and the mocks of
# the published dataset layouts (below).
set -u
case "$(basename "$WORK")" in tmp-*) ;; *) echo "not ok: WORK must be tmp-*"; exit 1;; esac
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
pass=0 failn=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else failn=$((failn + 1)); echo "not ok: $what"; fi; }
finish() { echo "$pass passed, $failn failed"; [ "$failn" -eq 0 ]; exit $?; }
export OMPI_MCA_rmaps_base_oversubscribe=1

# journal_bytes DIR: the bytes in DIR/journal/rank-*.log (0 before any; a
# journal starts with a layout record, so bytes alone do not mean a case)
journal_bytes() { cat "$1"/journal/rank-*.log 2>/dev/null | wc -c; }
# wait_journal DIR PID MORE [TENTHS]: wait until DIR's journals hold more than
# MORE bytes (MORE measured once the journal existed: a case finished since),
# at most TENTHS tenths of a second (default 1200); fails when PID ended
# first or the time ran out
wait_journal() {
  local dir=$1 pid=$2 more=$3 i
  for ((i = 0; i < ${4:-1200}; i++)); do
    [ "$(journal_bytes "$dir")" -gt "$more" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# wait_done LOG N PID [TENTHS]: wait until LOG counts N cases done (the
# run's "case ID: done" lines, over every method so far); as wait_journal
wait_done() {
  local log=$1 n=$2 pid=$3 i c
  for ((i = 0; i < ${4:-1200}; i++)); do
    c=$(grep -c ': done, ' "$log" 2>/dev/null)
    [ "${c:-0}" -ge "$n" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# -- mocks of the published dataset layouts, made from a phantom cohort
# (COHORT: the folder `healthivert phantom --out` wrote: raw/<id>/<id>.nii.gz,
# <id>_msk.nii.gz, <id>.json, split.json). Each copies the files under the
# dataset's own names; ids are numbered in the cohort's case order.

# mock_verse19 COHORT DEST SPLIT_OUT: VerSe 2019 (subject-based): DEST/rawdata/
# sub-verseNNN/sub-verseNNN_ct.nii.gz, DEST/derivatives/sub-verseNNN/
# ..._seg-vert_msk.nii.gz and _seg-subreg_ctd.json (NNN from 900); the cohort's
# split.json with its ids renamed, to SPLIT_OUT. Prints the case count.
mock_verse19() {
  local cohort=$1 dest=$2 split_out=$3 n=0 d id sub sed_file
  sed_file=$split_out.sed
  for d in "$cohort"/raw/*/; do
    id=$(basename "$d")
    sub=$(printf 'sub-verse%03d' $((900 + n)))
    n=$((n + 1))
    mkdir -p "$dest/rawdata/$sub" "$dest/derivatives/$sub" || return 1
    cp "$d/$id.nii.gz" "$dest/rawdata/$sub/${sub}_ct.nii.gz" &&
      cp "$d/${id}_msk.nii.gz" "$dest/derivatives/$sub/${sub}_seg-vert_msk.nii.gz" &&
      cp "$d/$id.json" "$dest/derivatives/$sub/${sub}_seg-subreg_ctd.json" || return 1
    echo "s/\"${id}_/\"${sub}_/g" >>"$sed_file"
  done
  sed -f "$sed_file" "$cohort/split.json" >"$split_out" || return 1
  rm -f "$sed_file"
  echo "$n"
}

# mock_verse20 COHORT DEST: VerSe 2020 as released: one rawdata/ + derivatives/
# tree per part, DEST/dataset-01training, dataset-02validation, dataset-03test
# (cases dealt to the parts in turn), subjects sub-glNNN (NNN from 900) with
# the orientation entity of the release's names: sub-glNNN_dir-ax_ct.nii.gz,
# _dir-ax_seg-vert_msk.nii.gz, _dir-ax_seg-subreg_ctd.json. No grade file
# (VerSe 2020 publishes none). Prints the case count.
mock_verse20() {
  local cohort=$1 dest=$2 n=0 d id sub part
  local parts=(dataset-01training dataset-02validation dataset-03test)
  for d in "$cohort"/raw/*/; do
    id=$(basename "$d")
    sub=$(printf 'sub-gl%03d' $((900 + n)))
    part=$dest/${parts[$((n % 3))]}
    n=$((n + 1))
    mkdir -p "$part/rawdata/$sub" "$part/derivatives/$sub" || return 1
    cp "$d/$id.nii.gz" "$part/rawdata/$sub/${sub}_dir-ax_ct.nii.gz" &&
      cp "$d/${id}_msk.nii.gz" "$part/derivatives/$sub/${sub}_dir-ax_seg-vert_msk.nii.gz" &&
      cp "$d/$id.json" "$part/derivatives/$sub/${sub}_dir-ax_seg-subreg_ctd.json" || return 1
  done
  echo "$n"
}

# mock_ctspine1k COHORT DEST: CTSpine1K as the Hugging Face copy lays it out:
# DEST/rawdata/volumes/<subset>/<stem>.nii.gz and DEST/rawdata/labels/<subset>/
# <stem>_seg.nii.gz, the cases dealt in turn to the four subsets under their
# own naming (COLONOG 1.3.6.1.4.1.9328.50.4.09NN, HNSCC-3DCT-RT HN_P9NN,
# MSD-T10 liver_9NN, COVID-19 volume-covid19-A-09NN_ct), no centroid files,
# no grades, and DEST/metadata/data_split.txt in the published format
# (trainset: / test_public: / test_private: lists of CT file names).
# Prints the case count.
mock_ctspine1k() {
  local cohort=$1 dest=$2 n=0 d id sub stem
  local subsets=(COLONOG HNSCC-3DCT-RT MSD-T10 COVID-19) sets=(trainset test_public test_private)
  local -a names=()
  for d in "$cohort"/raw/*/; do
    id=$(basename "$d")
    case $((n % 4)) in
      0) stem=$(printf '1.3.6.1.4.1.9328.50.4.%04d' $((900 + n)));;
      1) stem=$(printf 'HN_P%03d' $((900 + n)));;
      2) stem=$(printf 'liver_%d' $((900 + n)));;
      3) stem=$(printf 'volume-covid19-A-%04d_ct' $((900 + n)));;
    esac
    sub=${subsets[$((n % 4))]}
    names[n]=$stem.nii.gz
    n=$((n + 1))
    mkdir -p "$dest/rawdata/volumes/$sub" "$dest/rawdata/labels/$sub" || return 1
    cp "$d/$id.nii.gz" "$dest/rawdata/volumes/$sub/$stem.nii.gz" &&
      cp "$d/${id}_msk.nii.gz" "$dest/rawdata/labels/$sub/${stem}_seg.nii.gz" || return 1
  done
  mkdir -p "$dest/metadata" || return 1
  local s i
  for s in 0 1 2; do
    [ "$s" -gt 0 ] && echo
    echo "${sets[$s]}:"
    for ((i = s; i < n; i += 3)); do echo "${names[$i]}"; done
  done >"$dest/metadata/data_split.txt"
  echo "$n"
}
