#!/bin/sh
# bench/phantom/cohort.sh BIN [CASES] [OUTDIR]: time `healthivert phantom` on
# the default cohort (T1-L5, 1 mm, RAS, int16 CT + uint8 mask, gzip level 1)
# at 1 and 2 OpenMP threads, against a floor measured in the same run: gzip
# level 1 of the same uncompressed NIfTI bytes (what writing alone costs,
# single-threaded) for all files of the cohort.
# Prints one CSV line per thread count: threads,cases,voxels,wall_s,
# ns_per_voxel_cpu,gzip_floor_s,wall_over_floor.
set -e
bin="$1"
cases="${2:-20}"
out="${3:-${TMPDIR:-/tmp}/hv-bench-phantom}"
[ -x "$bin" ] || { echo "usage: $0 path/to/healthivert [cases] [outdir]" >&2; exit 2; }
now() { date +%s.%N; }
rm -rf "$out"
echo "# healthivert phantom --cases $cases --seed 1 (defaults: T1-L5, 1 mm, RAS); $(nproc) cores; $(date -u +%FT%TZ)"
results=""
for t in 1 2; do
    rm -rf "$out"
    t0=$(now)
    OMP_NUM_THREADS=$t "$bin" -q phantom --out "$out" --cases "$cases" --seed 1 > "$out.summary"
    t1=$(now)
    results="$results $t:$(echo "$t1 - $t0" | bc -l)"
done
# voxel count from the summary lines (dims field "XxYxZ")
vox=$(awk '/^ph[0-9]/ { split($2, d, "x"); s += d[1] * d[2] * d[3] } END { print s }' "$out.summary")
# floor: gzip -1 of every file's uncompressed bytes, one after another
tmpraw="$out.raw.nii"
floor=0
for f in "$out"/raw/*/*.nii.gz; do
    gunzip -c "$f" > "$tmpraw"
    a=$(now)
    gzip -1 -c "$tmpraw" > /dev/null
    b=$(now)
    floor=$(echo "$floor + $b - $a" | bc -l)
done
rm -f "$tmpraw"
echo "threads,cases,voxels,wall_s,gzip_floor_s,wall_over_floor"
for r in $results; do
    t=${r%%:*}
    w=${r#*:}
    printf '%s,%s,%s,%.2f,%.2f,%.2f\n' "$t" "$cases" "$vox" "$w" "$floor" "$(echo "$w / $floor" | bc -l)"
done
tail -1 "$out.summary"
rm -rf "$out" "$out.summary"
