#!/usr/bin/env bash
# Trains short versions of every shipped experiment with the release binary and prints the
# sha256 of every checkpoint, state, metrics file and PNG: run before and after a refactor that
# must not change results, then diff the two listings (the run folders go under OUT).
# Usage: scripts/dev/result-hashes.sh OUT > hashes.txt
set -e
cd "$(dirname "$0")/../.."
out=${1:?out dir}
rm -rf $out; mkdir -p $out
W=.build/release/workbench
$W train Experiments/voc2007-quick.yaml --set train.max_steps=40 --set train.epochs=2 --set train.checkpoint_every_epochs=1 --run-dir $out/quick --quiet
$W train Experiments/voc2007-quick.yaml --set train.max_steps=20 --set train.grad_clip=0.5 --set train.warmup_steps=5 --set train.optimizer=sgd --set train.momentum=0.9 --run-dir $out/quick-sgd --quiet
$W train Experiments/voc2007-seed.yaml --set data.root=data/synthetic-voc --set data.image_size=32 --set model.base_channels=4 --set train.max_steps=12 --set data.train_split=train --set eval.split=val --run-dir $out/seed --quiet
$W train Experiments/voc2007.yaml --set data.root=data/synthetic-voc --set data.image_size=32 --set model.base_channels=4 --set train.max_steps=12 --run-dir $out/voc --quiet
$W train Experiments/ddpm-mnist-quick.yaml --set train.max_steps=30 --set train.checkpoint_every_steps=15 --set train.eval_every_steps=30 --set eval.images=16 --set sample.count=4 --run-dir $out/ddpm --quiet
$W train Experiments/ddpm-mnist.yaml --set data.root=Data/mnist-subset --set train.max_steps=6 --set train.batch_size=8 --set eval.images=8 --set eval.bound_timesteps=4 --set model.base_channels=8 --set sample.count=2 --set train.checkpoint_every_steps=3 --run-dir $out/ddpm-full --quiet
cd $out; find . -type f \( -name "*.safetensors" -o -name "metrics.jsonl" -o -name "*.png" \) | sort | xargs sha256sum
