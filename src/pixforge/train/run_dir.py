"""Where a run lives: a new run gets a new or empty folder, a resumed run its own ``config.yaml``.

The command line and the Python API share these rules, so neither can start a run over another's files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixforge.config import Config, ConfigError, deep_merge, load_config


def new_run(config: str | Path, overrides: dict[str, Any] | None = None, out: Path | None = None
            ) -> tuple[Config, Path]:
    """The config (a YAML file or preset, with ``overrides``) and the folder of a new run (default
    ``runs/NAME``); a folder that already holds a run, or anything else, is refused."""
    cfg = load_config(config, overrides)
    run_dir = out or Path("runs") / cfg.name
    if (run_dir / "checkpoints" / "latest.safetensors").exists() or (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir}: already holds a run; use --resume {run_dir} or another --out")
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ConfigError(f"--out {run_dir}: exists and is not empty; a new run needs a new or empty folder")
    return _with_data(cfg), run_dir


def resumed_run(run_dir: Path, overrides: dict[str, Any] | None = None) -> Config:
    """The config a run directory was started with (``overrides`` on top, e.g. a moved dataset)."""
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml to resume from)")
    return _with_data(load_config(run_dir / "config.yaml", overrides))


def with_data_root(overrides: dict[str, Any], root: Path | None) -> dict[str, Any]:
    """``overrides`` with ``data.root`` set to ``root`` (the ``--data`` option), if given."""
    return overrides if root is None else deep_merge(overrides, {"data": {"root": str(root)}})


def _with_data(cfg: Config) -> Config:
    if cfg.data.root is None:
        raise ConfigError("data.root: no dataset folder; pass --data DIR or set data.root in the config")
    return cfg
