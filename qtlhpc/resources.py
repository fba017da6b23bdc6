"""Files qtlhpc ships beside its code: SLURM templates, job definitions and site profiles.

The folders at the top of the repository are their source of truth::

    slurm/*.sbatch          the three script templates (stage, array, merge)
    jobs/*.toml             one job definition per method (default resources per stage)
    configs/site-*.toml     site profiles

A built wheel carries copies of them in ``qtlhpc/_shipped/<folder>/`` (``setup.py`` adds them to
``build_py``'s package data, so ``pip install .`` installs them); a source checkout or an editable
install has no ``_shipped`` and reads the repository's folders.  :func:`folder` is the one place that
decides which.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from qtlhpc.errors import ConfigError, QtlhpcError, did_you_mean

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_DIR = PACKAGE_DIR / "_shipped"
SOURCE_ROOT = PACKAGE_DIR.parent
#: the shipped folders and the files of each that a wheel carries (setup.py reads the same table)
SHIPPED = {"slurm": "*.sbatch", "jobs": "*.toml", "configs": "site-*.toml"}


def folder(name: str) -> Path:
    """The directory of shipped folder ``name`` (``slurm``, ``jobs`` or ``configs``).

    The wheel's copy when qtlhpc was installed from one, else the folder of the source checkout the
    package sits in (recognised by its ``pyproject.toml``).
    """
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not a shipped folder ({', '.join(SHIPPED)})")
    for base in (SHIPPED_DIR, SOURCE_ROOT if (SOURCE_ROOT / "pyproject.toml").is_file() else None):
        if base is not None and (base / name).is_dir():
            return base / name
    raise QtlhpcError(f"qtlhpc's {name}/ folder is missing: neither {SHIPPED_DIR / name} (an installed wheel) "
                      f"nor {SOURCE_ROOT / name} (a source checkout) exists; reinstall qtlhpc")


def named_file(name_or_path, folder_name: str, pattern: str, what: str) -> Path:
    """A file given by path (``*.toml`` or an existing file), or by name as ``pattern.format(name)``
    in the shipped folder ``folder_name``.

    An unknown name raises a :class:`ConfigError` that lists the known names and suggests the nearest.
    """
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.is_file():
        if not candidate.is_file():
            raise ConfigError(f"{what} {candidate} does not exist")
        return candidate
    directory = folder(folder_name)
    path = directory / pattern.format(name_or_path)
    if not path.is_file():
        known = known_names(directory, pattern)
        raise ConfigError(f"unknown {what} {str(name_or_path)!r}{did_you_mean(name_or_path, known)} "
                          f"(known: {', '.join(known) or 'none'}; or give the path of a {what} TOML)")
    return path


def known_names(directory: Path, pattern: str) -> List[str]:
    """The NAMEs of the files ``pattern.format(NAME)`` in ``directory``, sorted."""
    prefix, _, suffix = pattern.partition("{}")
    return sorted(p.name[len(prefix):len(p.name) - len(suffix)] for p in directory.glob(prefix + "*" + suffix))
