#!/usr/bin/env bash
# The alpha 0.75 one-pass candidate for #17, trained on the CPU across sessions (about 700 s an epoch on 2 cores,
# 70 epochs): run it in the background, and run it again to resume where the last epoch ended (its state is in
# models/cand/a75/emotion.keras.work, git-ignored). The shipped model's recipe (votes, erasing 0.25, 70 epochs from
# fc585d8's FER+ base, widened by Net2WiderNet) except the width and one-pass scoring, which keeps the faces/s of
# the shipped model mirror-averaged (research/results/network_speed.md).
# Its state does not survive a fresh checkout (git-ignored): the 18 epochs of 2026-12-02 were lost that way, and the
# 70 epochs are 10-15 h on 2 cores, so a session lent a GPU is the way to run it (about 5 minutes on one H200):
#   bash research/device_train_ferplus.sh "a75 0.75 128 70 --init-model models/cand/prev/emotion.keras --erase 0.25 --no-flip-average"
# (create models/cand/prev first, as below, and pack the data and wheels as that script's header says).
#   nohup bash research/cpu_train_a75.sh >> models/cand/a75/train.log 2>&1 &
set -eu
cd "$(dirname "$0")/.."
if [ ! -f models/cand/prev/emotion.keras ]; then
  mkdir -p models/cand/prev
  git show fc585d8:models/emotion.keras > models/cand/prev/emotion.keras
  git show fc585d8:models/emotion.json > models/cand/prev/emotion.json
fi
mkdir -p models/cand/a75
. research/ferplus_recipe.sh
# shellcheck disable=SC2086  # the recipe is a list of words
exec python -m batchemo train ../shared/datasets/fer2013/train --out models/cand/a75/emotion.keras \
  --alpha 0.75 --size 128 --epochs 70 $FERPLUS_RECIPE \
  --init-model models/cand/prev/emotion.keras --erase 0.25 --no-flip-average
