"""Self-describing checkpoints: one safetensors file holds weights, optimiser state, RNG state and config.

Tensors go into the safetensors body under dotted keys (``G.down.0.0.weight``, ``optim.G.state.0.exp_avg``);
everything else (the config, step counters, optimiser hyper-parameters, Python/NumPy RNG state) is JSON in
the file's metadata, with each tensor replaced by a ``{"__tensor__": key}`` placeholder. Nothing is pickled,
so loading a checkpoint from a stranger cannot run code.

The metadata's ``components`` table (``runtime.components``) names the networks among the top-level parts
and their roles, with one weights hash per generator; ``generator_sha256`` repeats the default generator's
hash for readers of the older format.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from pixforge.runtime.components import Components, decode_components, encode_components, pick_generator

FORMAT = "pixforge-checkpoint"
VERSION = "1"
LATEST = "latest.safetensors"


class CheckpointError(ValueError):
    """A checkpoint file is missing, incomplete or not a pixforge checkpoint; the message names it."""


def pack(tree: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move every tensor of a nested dict/list into ``tensors``; return the JSON-able skeleton."""
    if isinstance(tree, torch.Tensor):
        tensors[prefix] = tree.detach()
        return {"__tensor__": prefix}
    if isinstance(tree, dict):
        return {"__dict__": [[k, pack(v, f"{prefix}.{k}", tensors)] for k, v in tree.items()]}
    if isinstance(tree, list | tuple):
        items = [pack(v, f"{prefix}.{i}", tensors) for i, v in enumerate(tree)]
        return {"__tuple__": items} if isinstance(tree, tuple) else items
    return tree


_SAFETENSORS_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                       torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
                       torch.uint8: "U8", torch.bool: "BOOL"}


def write_safetensors(f: Any, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Stream ``tensors`` to the open file ``f`` in the safetensors format, one tensor at a time.

    ``safetensors.torch.save_file`` wants every tensor contiguous at once: with channels_last weights and
    Adam moments that is a copy of the whole state (1.8 GB more peak memory for pix2pixHD's 182 M-parameter
    G). The format is a little-endian u64 header length, a JSON header of dtypes, shapes and byte offsets,
    then the raw bytes; here each tensor is made contiguous (and moved to the CPU) only while it is written.
    Tensors may share memory. The files are read back with safetensors' own ``safe_open``."""
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, t in tensors.items():
        if t.dtype not in _SAFETENSORS_DTYPES:
            raise TypeError(f"{name}: cannot store a {t.dtype} tensor in a checkpoint")
        size = t.numel() * t.element_size()
        header[name] = {"dtype": _SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned, as the library writes it
    f.write(struct.pack("<Q", len(raw)))
    f.write(raw)
    for t in tensors.values():
        if t.numel():
            f.write(t.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().data)


def unpack(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__tuple__" in skeleton:
            return tuple(unpack(v, tensors) for v in skeleton["__tuple__"])
        # Keys keep their type: optimiser state is keyed by int parameter index.
        return {k: unpack(v, tensors) for k, v in skeleton["__dict__"]}
    if isinstance(skeleton, list):
        return [unpack(v, tensors) for v in skeleton]
    return skeleton


def save_checkpoint(path: str | Path, config: dict[str, Any], state: dict[str, Any],
                    extra: dict[str, str] | None = None, components: Components | None = None) -> Path:
    """Write ``state`` (nested dicts of tensors and plain values) and ``config`` atomically to ``path``.

    ``components`` names the networks among ``state``'s entries and their roles (default: pix2pix's ``G``,
    ``D``, ``E`` where present); each generator's weights hash is recorded with it, which provenance marks
    carry. ``extra`` adds string metadata of the caller's.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = hashed_components(state, components if components is not None else
                              decode_components(None, list(state)))
    tensors: dict[str, torch.Tensor] = {}
    skeleton = pack(state, "s", tensors)
    default = pick_generator(table, str(path)) if any(c.role == "generator" for c in table.values()) else None
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "config": json.dumps(config),
        "state": json.dumps(skeleton),
        "components": encode_components(table),
        **({"generator_sha256": table[default].sha256 or ""} if default else {}),
        **(extra or {}),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a checkpoint is an ordinary file
        with open(tmp, "wb") as f:
            write_safetensors(f, tensors, metadata)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def hashed_components(state: dict[str, Any], components: Components) -> Components:
    """``components`` restricted to the parts ``state`` holds, each generator given its weights hash."""
    out: Components = {}
    for name, component in components.items():
        if not isinstance(state.get(name), dict):
            continue
        out[name] = component.with_hash(weights_hash(state[name])) if component.role == "generator" \
            else component
    return out


def weights_hash(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state_dict's names, dtypes, shapes and values: the identity of a set of weights."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _open(path: Path) -> Any:
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; expected a .safetensors checkpoint or a run directory "
                              f"with checkpoints/{LATEST}")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        handle = safe_open(str(path), framework="pt")
    except Exception as err:  # safetensors raises its own error types for truncated/garbled files
        raise CheckpointError(f"{path}: not a readable safetensors file ({_one_line(err)})") from None
    meta = handle.metadata() or {}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a pixforge checkpoint (no '{FORMAT}' metadata); reference "
                              f"pix2pix .pth folders are read by `pixforge import-reference`")
    for key in ("config", "state"):
        if key not in meta:
            raise CheckpointError(f"{path}: pixforge checkpoint metadata lacks '{key}' (a damaged file)")
    return handle


def _json(path: Path, meta: dict[str, str], key: str) -> Any:
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: checkpoint metadata '{key}' is not valid JSON (a damaged file)") from None


def read_metadata(path: str | Path) -> dict[str, str]:
    """The file's string metadata (format, config, generator_sha256, ...) without reading any tensor."""
    return dict(_open(Path(path)).metadata())


def read_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    return _json(path, _open(path).metadata(), "config")


def read_components(path: str | Path) -> Components:
    """The file's named components (for an older file, those its ``G``/``D``/``E`` parts imply)."""
    path = Path(path)
    meta = _open(path).metadata()
    try:
        return decode_components(meta.get("components"), _parts(path, meta), meta.get("generator_sha256"))
    except (json.JSONDecodeError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: checkpoint metadata 'components' is not a valid table "
                              f"({_one_line(err)})") from None


def checkpoint_parts(path: str | Path) -> list[str]:
    """The top-level parts a checkpoint holds (``G``, ``D``, ``E``, ``optim``, ...), without reading tensors."""
    path = Path(path)
    return _parts(path, _open(path).metadata())


def _parts(path: Path, meta: dict[str, str]) -> list[str]:
    skeleton = _json(path, meta, "state")
    try:
        return [name for name, _ in skeleton["__dict__"]]
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path}: checkpoint metadata 'state' has an unexpected layout") from None


def load_checkpoint(path: str | Path, only: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(config, state)``; ``only="G"`` reads just that part (inference needs no optimiser)."""
    path = Path(path)
    handle = _open(path)
    meta = handle.metadata()
    skeleton = _json(path, meta, "state")
    try:
        if only is not None:
            entries = dict(skeleton["__dict__"])
            if only not in entries:
                raise CheckpointError(f"{path}: holds no '{only}' weights (it has {', '.join(entries)})")
            skeleton = {"__dict__": [[only, entries[only]]]}
            keys = [k for k in handle.keys() if k.startswith(f"s.{only}.")]  # noqa: SIM118 (no __iter__)
        else:
            keys = list(handle.keys())
        tensors = {k: _tensor(path, handle, k) for k in keys}
        state = unpack(skeleton, tensors)
    except KeyError as err:
        raise CheckpointError(f"{path}: tensor {err.args[0]!r} named in the metadata is missing from the file "
                              f"(a damaged or hand-made checkpoint)") from None
    except (TypeError, ValueError, IndexError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"{path}: checkpoint metadata 'state' has an unexpected layout "
                              f"({_one_line(err)})") from None
    return _json(path, meta, "config"), state


def _tensor(path: Path, handle: Any, key: str) -> torch.Tensor:
    try:
        return handle.get_tensor(key)
    except Exception as err:  # truncated data section
        raise CheckpointError(f"{path}: cannot read tensor {key!r} ({_one_line(err)})") from None


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}.safetensors"


def point_latest(folder: Path, target: Path) -> None:
    """Atomically repoint ``latest.safetensors`` at ``target`` (a complete file)."""
    tmp = folder / f".{LATEST}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.name)
    os.replace(tmp, folder / LATEST)


def find_checkpoint(path: str | Path) -> Path:
    """Accept a run directory, its ``checkpoints/`` folder, or a checkpoint file."""
    path = Path(path)
    if path.is_file():
        return path
    for folder in (path / "checkpoints", path):
        if (folder / LATEST).exists():
            return (folder / LATEST).resolve()
        # A crash between writing a step file and repointing `latest` leaves a complete step file.
        steps = sorted(folder.glob("step_*.safetensors"))
        if steps:
            return steps[-1]
    raise CheckpointError(f"{path}: no checkpoint found (expected a .safetensors file or a run directory "
                          f"with checkpoints/{LATEST})")


def prune_checkpoints(folder: Path, keep: int) -> None:
    steps = sorted(folder.glob("step_*.safetensors"))
    for old in steps[:-keep]:
        old.unlink(missing_ok=True)
