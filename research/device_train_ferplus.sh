#!/usr/bin/env bash
# FER+ vote-trained candidates side by side on one GPU machine without TensorFlow (Keras on JAX), each starting
# from the shipped model's base (four by default; the runs as arguments otherwise, see below). Run from the repo
# root, with the data and the wheels the machine lacks packed beside it (.devdata/ and .whl/ are git-ignored):
#   mkdir -p .devdata && (cd ../shared/datasets && tar czf "$OLDPWD/.devdata/fer.tgz" fer2013/train ferplus/train.csv)
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#       --platform manylinux_2_17_x86_64 -d .whl keras==3.15.1 optree==0.20.0 namex==0.1.0
# The models come back under $OUT (or ./gpu-out); the TFLite twins and the temperature are made afterwards on a
# machine with TensorFlow (`batchemo export`, `batchemo calibrate`).
set -u
OUT=${OUT:-gpu-out}
SECS=${SECS:-480}  # each run's wall-clock budget; a run cut short still leaves its best epoch in <out>.work
# Arguments: runs as "name alpha size epochs [options]"; the default is the first comparison made with it.
[ $# -gt 0 ] || set -- "a50_s96 0.5 96 45" "a50_s112 0.5 112 36" "a50_s128 0.5 128 32" "a75_s96 0.75 96 36"
needs_cards() {  # a run's words: each model after --teacher or --init-model must be here with its card
  local prev= word
  for word in "$@"; do
    case $word in --teacher=*|--init-model=*|--votes=*) prev=${word%%=*}; word=${word#*=} ;; esac
    if [ "$prev" = --teacher ] || [ "$prev" = --init-model ]; then
      [ -f "$word" ] && [ -f "${word%.keras}.json" ] || { echo "error: $word or its card ${word%.keras}.json is missing"; return 1; }
    elif [ "$prev" = --votes ]; then  # e.g. distillation targets from research/distill_votes.py
      [ -f "$word" ] || { echo "error: votes file $word is missing"; return 1; }
    fi
    prev=$word
  done
}
# Checked before the machine's time goes on installing and unpacking.
for spec in "$@"; do needs_cards $spec || exit 2; done
mkdir -p "$OUT" ../shared/datasets models/gpu logs
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
tar xzf .devdata/fer.tgz -C ../shared/datasets
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import keras, jax; print('keras', keras.__version__, 'jax', jax.__version__, jax.devices())"

. "$(dirname "$0")/ferplus_recipe.sh"
run() {  # name alpha size epochs [more train options]
  local name=$1 alpha=$2 size=$3 epochs=$4; shift 4
  timeout -k 10 "$SECS" python3 -m batchemo train ../shared/datasets/fer2013/train --out "models/gpu/$name.keras" \
    --alpha "$alpha" --size "$size" --epochs "$epochs" $FERPLUS_RECIPE "$@" >"logs/$name.log" 2>&1
  echo "$name exit $?"
}
names=()
for spec in "$@"; do run $spec & names+=("${spec%% *}"); done
wait
for n in "${names[@]}"; do
  # Each model with its card (NAME.json): a model carried back as a --teacher or --init-model needs it beside it.
  if [ -f "models/gpu/$n.keras" ]; then cp "models/gpu/$n.keras" "models/gpu/$n.json" "$OUT/";
  elif [ -f "models/gpu/$n.keras.work/best.keras" ]; then cp "models/gpu/$n.keras.work/best.keras" "$OUT/$n.partial.keras"; fi
  tail -n 4 "logs/$n.log"
done
tar czf "$OUT/meta.tgz" models/gpu/*.json models/gpu/*.md models/gpu/*.work/state.json logs 2>/dev/null
ls -la "$OUT"
