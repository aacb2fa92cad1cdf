#!/usr/bin/env bash
# The device run end to end on this CPU: two "calls" as the device tool makes them, then unpacking.
#   1. a copy of what call 1 sends (tracked + untracked-not-ignored files, .devcarry/call1) in $SIM/call1,
#      `bash bench/device_run.sh stash` there with OUT=$SIM/out1 (smoke benchmark)
#   2. a fresh copy with .devcarry/call2 only in $SIM/call2, `bash bench/device_run.sh run`, OUT=$SIM/out2
#   3. bench/unpack_device_run.py $SIM/out1 $SIM/out2 --dest $SIM/unpacked --expect-profile $PROFILE
# The stash ($SIM/stash) is the only thing shared between the calls, as on a warm device machine.
# Needs .devcarry/ (bench/prepare_device_carry.sh; COMPRESS=0 is enough here).
# Environment: SIM (/tmp/devsim), PYTHON (.venv/bin/python), PROFILE (smoke), BENCH_ARGS (smoke benchmark),
#   NOTEBOOK_TIMEOUT_S (device_run.sh's 480; raise it on a busy CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SIM=${SIM:-/tmp/devsim}
export PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
export PROFILE=${PROFILE:-smoke} DEVICE=${DEVICE:-cpu}
export BENCH_ARGS=${BENCH_ARGS:---smoke --profiles smoke --device cpu}
export STASH=$SIM/stash SCRATCH=$SIM/scratch
[ -d .devcarry/call1 ] && [ -d .devcarry/call2 ] || { echo "run bench/prepare_device_carry.sh first"; exit 1; }
rm -rf "$SIM" && mkdir -p "$SIM"

copy_tree() {   # $1: destination; $2: the carried folder
  mkdir -p "$1"
  git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -C "$1" -xf -
  mkdir -p "$1/$(dirname "$2")" && cp -a "$2" "$1/$2"
}

copy_tree "$SIM/call1" .devcarry/call1
(cd "$SIM/call1" && OUT=$SIM/out1 bash bench/device_run.sh stash)
copy_tree "$SIM/call2" .devcarry/call2
rc=0
(cd "$SIM/call2" && OUT=$SIM/out2 bash bench/device_run.sh run) || rc=$?
echo "call 2 exit status: $rc"
for o in "$SIM/out1" "$SIM/out2"; do
  n=$(find "$o" -type f | wc -l)
  echo "$o: $n files (the device returns at most 8): $(ls "$o" | tr '\n' ' ')"
  [ "$n" -le 8 ] || rc=1
done
"$PYTHON" bench/unpack_device_run.py "$SIM/out1" "$SIM/out2" --dest "$SIM/unpacked" --expect-profile "$PROFILE" || rc=1
exit $rc
