#!/usr/bin/env bash
# Build a runnable checkout of the reference (pytorch-CycleGAN-and-pix2pix, upstream commit 2a7afba of
# 2025-08-06) OUTSIDE this repository, for `pixforge bench train|translate|cyclegan --reference DIR`.
#   benchmarks/setup_reference.sh MIRROR_GIT_DIR [TARGET]     (TARGET defaults to /tmp/pixforge-reference)
# MIRROR_GIT_DIR is a bare clone holding that commit. Only .py/.txt files are checked out (the images of the
# repository are not needed). torchvision 0.28.0 is the only build matching torch 2.13.0 and is a CUDA build:
# it is installed without dependencies and its two registrations of CUDA ops are made conditional, as the
# reference imports torchvision only for its transforms.
set -euo pipefail
mirror=${1:?usage: setup_reference.sh MIRROR_GIT_DIR [TARGET]}
target=${2:-/tmp/pixforge-reference}
commit=2a7afba
mkdir -p "$target"
git --git-dir="$mirror" ls-tree -r --name-only "$commit" | grep -E '\.(py|txt)$' | while read -r f; do
  mkdir -p "$target/$(dirname "$f")"
  git --git-dir="$mirror" cat-file -p "$commit:$f" > "$target/$f"
done
python3 -m venv "$target/venv"
echo "torch==2.13.0" > "$target/constraints.txt"
"$target/venv/bin/pip" install -q -c "$target/constraints.txt" torch==2.13.0 numpy pillow dominate scipy
"$target/venv/bin/pip" install -q --no-deps torchvision==0.28.0
init=$("$target/venv/bin/python" -c "import importlib.util; print(importlib.util.find_spec('torchvision').origin)")
"$target/venv/bin/python" - "$init" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
old = "from torchvision import (\n    _autograd_registrations,\n    _meta_registrations,\n"
new = ("if extension._has_ops():\n    from torchvision import _autograd_registrations, _meta_registrations  # noqa: F401\n"
       "from torchvision import (\n")
if old in text:
    open(path, "w").write(text.replace(old, new))
PY
echo "reference ready: --reference $target --reference-python $target/venv/bin/python"
