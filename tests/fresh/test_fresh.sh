#!/usr/bin/env bash
# test_fresh.sh: both README commands' install steps on a brand-new Debian 12.
#
#   test_fresh.sh SOURCE_DIR WORK_DIR [SHARED_DIR]
#
# A green suite on a development machine proves nothing about a new one:
# packages installed by hand once stay installed. So this test makes a
# minimal Debian 12 root with debootstrap (--variant=minbase: no compiler, no
# -dev package, nothing recommended), copies into it a `git archive` of the
# checkout (as it stands: new and modified files that git does not ignore
# too) and the shared data folder beside it, and runs inside it, with an
# empty environment (env -i) and no standard input:
#
#   scripts/deps.sh test      what the build, the main job and the tests need
#   scripts/demo.sh OUT       README command 1: configure, build, the main job
#   ctest -L "unit|io"        the test build runs there (figures: the fonts)
#   cmake ... -DHV_FUZZ=ON    the fuzz build configures (clang's runtimes)
#
# then checks the main job's results: every case done, none failed, the
# tables and figures written.
#
# The debootstrap result is cached as a tarball under WORK_DIR (it is the
# "before" state, never modified); every run unpacks a new copy of it, so
# each run starts from a machine that has seen nothing. Debian's mirror is
# the one this machine's own apt sources use (HV_FRESH_MIRROR overrides).
#
# Needs root (chroot, mounts) and the Debian registry. Exit 77 (skip) only
# outside CI when not root or debootstrap is missing; under CI=true those are
# failures (scripts/deps.sh test installs debootstrap).
set -euo pipefail

src="$(cd "$1" && pwd)"
work="$2"
shared="${3:-$src/../shared}"
suite=bookworm

skip() {
  if [ "${CI:-}" = "true" ]; then echo "not ok: $* (required under CI)"; exit 1; fi
  echo "SKIP: $*"; exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root for chroot and mounts"
command -v debootstrap >/dev/null || skip "debootstrap is not installed (scripts/deps.sh test installs it)"
[ -d "$shared/data" ] || skip "shared data folder '$shared/data' is missing"

# Debian's mirror: the first http(s) URI of this machine's Debian sources.
mirror="${HV_FRESH_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
               /etc/apt/sources.list.d/*.sources 2>/dev/null |
           grep -v '^[[:space:]]*#' | grep -o 'https\?://[^ ]*/debian/\?' |
           grep -v security | head -n1 || true)
fi
[ -n "$mirror" ] || { echo "not ok: no Debian mirror found in /etc/apt (set HV_FRESH_MIRROR)"; exit 1; }

mkdir -p "$work"
work="$(cd "$work" && pwd)"
cache="$work/debian12-minbase.tar"
root="$work/root"
log="$work/fresh.log"
: >"$log"

cleanup() {
  for m in "$root/sys" "$root/proc" "$root/dev/pts" "$root/dev"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m" 2>/dev/null || true
  done
}
trap cleanup EXIT
cleanup
rm -rf "$root"

t0=$(date +%s)
if [ ! -s "$cache" ]; then
  echo "== debootstrap --variant=minbase $suite (mirror from /etc/apt)"
  rm -rf "$work/bootstrap"
  if ! debootstrap --variant=minbase "$suite" "$work/bootstrap" "$mirror" >>"$log" 2>&1; then
    tail -n 30 "$log"; echo "not ok: debootstrap failed"; exit 1
  fi
  tar -C "$work/bootstrap" -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
  rm -rf "$work/bootstrap"
fi
mkdir -p "$root"
tar -C "$root" -xf "$cache"
echo "== fresh root ready ($(( $(date +%s) - t0 )) s)"

# What a user would have: the checkout and shared/ beside it.
mkdir -p "$root/src/healthivert" "$root/src/shared"
# The checkout as it stands: committed, modified and new files that git does
# not ignore (a throw-away index, so the real one is left alone).
idx="$work/archive.index"
cp "$(git -C "$src" rev-parse --absolute-git-dir)/index" "$idx"
GIT_INDEX_FILE="$idx" git -C "$src" add -A
tree=$(GIT_INDEX_FILE="$idx" git -C "$src" write-tree)
rm -f "$idx"
git -C "$src" archive "$tree" | tar -C "$root/src/healthivert" -xf -
cp -a "$shared/." "$root/src/shared/"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts" 2>/dev/null || true
mount -t sysfs sys "$root/sys"

inside() {
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      LANG=C.UTF-8 TERM=dumb \
      chroot "$root" /bin/bash -c "cd /src/healthivert && $1" </dev/null
}

step() {
  local what="$1" cmd="$2" t=$(date +%s)
  echo "== $what"
  if ! inside "$cmd" >>"$log" 2>&1; then
    tail -n 40 "$log"
    echo "not ok: '$cmd' failed in a fresh Debian 12 root (log: $log)"
    exit 1
  fi
  echo "ok: $what ($(( $(date +%s) - t )) s)"
}

step "deps (scripts/deps.sh test)" "scripts/deps.sh test"
step "README command 1 (scripts/demo.sh)" "scripts/demo.sh /tmp/demo"
step "test build runs (ctest -L 'unit|io')" "ctest --test-dir build -L 'unit|io' --output-on-failure"
step "fuzz build configures (clang, libFuzzer, OpenMP)" \
  "cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DHV_FUZZ=ON -DHV_ENABLE_CUDA=OFF >/dev/null"

# The main job's results, from its own files.
out="$root/tmp/demo"
fail=0
for f in store.h5 summary.md confusion.png rhlv_by_grade.png; do
  if [ -s "$out/$f" ]; then echo "ok: demo wrote $f"; else echo "not ok: demo did not write $f"; fail=1; fi
done
# Expected: every case of configs/phantom.ini's cohort, read from the config.
want=$(sed -n 's/^cases *= *\([0-9]*\).*/\1/p' "$root/src/healthivert/configs/phantom.ini" | head -n1)
csv="$out/cases.csv"
ndone=$(awk -F, 'NR>1 && $2=="done"' "$csv" 2>/dev/null | wc -l)
nrows=$(awk 'NR>1' "$csv" 2>/dev/null | wc -l)
if [ -n "$want" ] && [ "$ndone" -eq "$want" ] && [ "$nrows" -eq "$want" ]; then
  echo "ok: all $want phantom cases done, none failed (cases.csv)"
else
  echo "not ok: cases.csv has $ndone done of $nrows rows, want $want done"; fail=1
fi
echo "== fresh root total $(( $(date +%s) - t0 )) s"
[ "$fail" -eq 0 ] && echo "4 passed, 0 failed" || { echo "fresh test failed"; exit 1; }
