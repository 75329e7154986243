#!/usr/bin/env bash
# train-classifier's item cache (classifier.item_cache_mb): the check of
# test_train_cache.sh on the classifier (2 ranks, 6 steps crossing into the
# second epoch of the balanced sampler, validation at steps 0, 3 and 6, whose
# items a 1 MiB budget reads again each time): bitwise the same weights, the
# same losses.csv (seconds aside) and val.csv at the default budget and at
# 1 MiB.
TRAIN_CMD=train-classifier TRAIN_SEC=classifier
source "$(dirname "$0")/test_train_cache.sh"
