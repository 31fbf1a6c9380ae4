#!/usr/bin/env bash
# Build a runnable checkout of the reference (pytorch-CycleGAN-and-pix2pix, upstream commit 2a7afba of
# 2025-08-06) OUTSIDE this repository, for `pixforge bench train|translate|cyclegan --reference DIR`.
#   benchmarks/setup_reference.sh [TARGET [MIRROR_GIT_DIR]]
#     TARGET          default /tmp/pixforge-reference
#     MIRROR_GIT_DIR  a bare clone holding that commit; default $PIXFORGE_REFERENCE_MIRROR or
#                     /work/.mirror/premsuggu+pytorch-CycleGAN-and-pix2pix/repo (the search tool's `fetch`)
#   The older order `setup_reference.sh MIRROR_GIT_DIR [TARGET]` still works (a bare git dir first).
# Every file but the repository's images is checked out. torchvision 0.28.0 is the only build matching torch
# 2.13.0 and is a CUDA build: it is installed without dependencies and its two registrations of CUDA ops are
# made conditional, as the reference imports torchvision only for its transforms. train.py imports wandb at
# module level and never uses it offline: an empty wandb.py goes into the venv's site-packages.
# Then: --reference TARGET --reference-python TARGET/venv/bin/python
#
#   benchmarks/setup_reference.sh --cut [TARGET [MIRROR_GIT_DIR]]
#     the CUT authors' code instead (taesungp/contrastive-unpaired-translation, HEAD b3ac297), for
#     `pixforge bench cut --reference DIR`; TARGET default /tmp/pixforge-cut-reference, MIRROR default
#     $PIXFORGE_CUT_MIRROR or /work/.mirror/taesungp+contrastive-unpaired-translation/repo.
set -euo pipefail
commit=2a7afba repo=premsuggu/pytorch-CycleGAN-and-pix2pix default_target=/tmp/pixforge-reference
default_mirror=${PIXFORGE_REFERENCE_MIRROR:-/work/.mirror/premsuggu+pytorch-CycleGAN-and-pix2pix/repo}
if [[ ${1:-} == --cut ]]; then
  shift
  commit=b3ac297 repo=taesungp/contrastive-unpaired-translation default_target=/tmp/pixforge-cut-reference
  default_mirror=${PIXFORGE_CUT_MIRROR:-/work/.mirror/taesungp+contrastive-unpaired-translation/repo}
fi
if [[ $# -ge 1 && -f "$1/HEAD" && -d "$1/objects" ]]; then  # the older order: MIRROR [TARGET]
  mirror=$1 target=${2:-$default_target}
else
  target=${1:-$default_target} mirror=${2:-$default_mirror}
fi
git --git-dir="$mirror" cat-file -e "$commit^{commit}" 2>/dev/null ||
  { echo "$mirror: not a git dir holding commit $commit (fetch $repo)" >&2; exit 1; }
mkdir -p "$target"
# One blob at a time: `git archive` walks the whole tree and the mirror lacks the images' blobs.
git --git-dir="$mirror" ls-tree -r --name-only "$commit" | grep -v -i -E '\.(png|jpe?g|gif)$' | while read -r f; do
  mkdir -p "$target/$(dirname "$f")"
  git --git-dir="$mirror" cat-file -p "$commit:$f" > "$target/$f"
done
python3 -m venv "$target/venv"
echo "torch==2.13.0" > "$target/constraints.txt"
"$target/venv/bin/pip" install -q --no-warn-script-location -c "$target/constraints.txt" torch==2.13.0 numpy pillow dominate scipy packaging
"$target/venv/bin/pip" install -q --no-warn-script-location --no-deps torchvision==0.28.0
site=$("$target/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
: > "$site/wandb.py"
"$target/venv/bin/python" - "$site/torchvision/__init__.py" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
old = "from torchvision import (\n    _autograd_registrations,\n    _meta_registrations,\n"
new = ("if extension._has_ops():\n    from torchvision import _autograd_registrations, _meta_registrations  # noqa: F401\n"
       "from torchvision import (\n")
if old in text:
    open(path, "w").write(text.replace(old, new))
elif new not in text:
    sys.exit(f"{path}: the import of _autograd_registrations/_meta_registrations is not where expected")
PY
(cd "$target" && venv/bin/python -c "import torchvision.transforms, wandb, models.networks") ||
  { echo "$target: the reference's imports fail" >&2; exit 1; }
echo "reference ready: --reference $target --reference-python $target/venv/bin/python"
