#!/usr/bin/env bash
# Compatibility test with TensorBoard itself: trains a tiny run, stops it, resumes it further, and
# reads its event files with TensorBoard's EventAccumulator (tensorboard_check.py). Installs the
# `tensorboard` package from PyPI into .venv-compat/ on first use; the workbench never needs Python.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv-compat/bin/python ] || ! .venv-compat/bin/python -c "import tensorboard" 2>/dev/null; then
    python3 -m venv .venv-compat
    .venv-compat/bin/pip install -q --disable-pip-version-check tensorboard
fi
run=$(mktemp -d)/run
workbench=${WORKBENCH:-.build/debug/workbench}
common=(--quiet --set data.image_size=32 --set model.base_channels=2 --set train.checkpoint_every_epochs=null
        --set train.checkpoint_every_steps=3 --set train.eval_every_steps=3 --set train.log_every_steps=1)
"$workbench" train Experiments/voc2007-quick.yaml "${common[@]}" --set train.max_steps=6 --run-dir "$run" > /dev/null
"$workbench" train Experiments/voc2007-quick.yaml "${common[@]}" --set train.max_steps=9 --resume "$run" > /dev/null
.venv-compat/bin/python scripts/compat/tensorboard_check.py "$run"
rm -rf "$(dirname "$run")"
