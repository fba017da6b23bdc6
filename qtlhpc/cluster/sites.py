"""Site profiles: what differs between clusters (partition, account, modules, MPI launcher, python).

A site profile is a small TOML file::

    name = "mycluster"
    partition = "compute"          # empty: the cluster's default partition
    account = "proj123"            # empty: no --account line
    launcher = "srun"              # srun (srun --mpi=pmix), mpirun (mpirun -n $SLURM_NTASKS) or none
    python = "/path/to/venv/bin/python"   # empty: the interpreter that runs `qtlhpc submit`
    modules = ["openmpi/4.1", "hdf5/1.12-mpi"]
    extra_sbatch = ["--constraint=skylake", "--qos=normal"]
    [env]
    OMP_NUM_THREADS = "1"

``load_site(name_or_path)`` accepts a path to such a file or a name ``NAME`` looked up as
``configs/site-NAME.toml`` among the profiles qtlhpc ships (:func:`qtlhpc.resources.folder`; ``local``
is the single-machine profile).  Every value is later shell-quoted when rendered into a script; values
that SLURM parses itself (partition, account, extra sbatch options) are also checked here for
characters that have no business there.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Tuple

from qtlhpc.errors import ConfigError, did_you_mean
from qtlhpc.resources import named_file

LAUNCHERS = ("srun", "mpirun", "none")
_KEYS = ("name", "partition", "account", "launcher", "python", "modules", "extra_sbatch", "env")
_SLURM_NAME = re.compile(r"^[A-Za-z0-9_.,+-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Site:
    """A cluster's submission settings (see the module docstring for the meaning of each field)."""

    name: str = "local"
    partition: str = ""
    account: str = ""
    launcher: str = "srun"
    python: str = ""
    modules: Tuple[str, ...] = ()
    extra_sbatch: Tuple[str, ...] = ()
    env: Dict[str, str] = field(default_factory=dict)
    source: str = "<built-in>"

    @property
    def interpreter(self) -> str:
        """The python that runs the jobs: the profile's, else the one running this process."""
        return self.python or sys.executable


def site_path(name_or_path) -> Path:
    """The profile file for a path or a site name (``configs/site-NAME.toml``)."""
    return named_file(name_or_path, "configs", "site-{}.toml", "site")


def load_site(name_or_path=None) -> Site:
    """Read and check a site profile; ``None`` or ``""`` gives the ``local`` profile."""
    path = site_path(name_or_path or "local")
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return site_from_dict(data, source=str(path))


def site_from_dict(data, source: str = "<site>") -> Site:
    """Build a :class:`Site` from a mapping, rejecting unknown keys and malformed values."""
    for key in data:
        if key not in _KEYS:
            raise ConfigError(f"{source}: unknown key {key!r}{did_you_mean(key, _KEYS)} "
                              f"(valid keys: {', '.join(_KEYS)})")
    site = Site(
        name=_string(data, "name", source, default=Path(source).stem.replace("site-", "")),
        partition=_string(data, "partition", source),
        account=_string(data, "account", source),
        launcher=_string(data, "launcher", source, default="srun"),
        python=_string(data, "python", source),
        modules=_strings(data, "modules", source),
        extra_sbatch=_strings(data, "extra_sbatch", source),
        env=_env(data.get("env", {}), source),
        source=source,
    )
    if site.launcher not in LAUNCHERS:
        raise ConfigError(f"{source}: launcher = {site.launcher!r}; expected one of {', '.join(LAUNCHERS)}")
    for key in ("partition", "account"):
        value = getattr(site, key)
        if not _SLURM_NAME.match(value):
            raise ConfigError(f"{source}: {key} = {value!r} has characters a SLURM {key} name cannot have "
                              f"(letters, digits and _ . , + - only)")
    for option in site.extra_sbatch:
        if not option.startswith("--") or "=" not in option:
            raise ConfigError(f"{source}: extra_sbatch item {option!r}; expected a long sbatch option "
                              f"written --name=value, e.g. '--constraint=skylake'")
    return site


def _string(data, key: str, source: str, default: str = "") -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {key} = {value!r}; expected a string")
    _single_line(value, key, source)
    return value


def _strings(data, key: str, source: str) -> Tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{source}: {key} = {value!r}; expected a list of strings")
    for item in value:
        _single_line(item, key, source)
    return tuple(value)


def _env(value, source: str) -> Dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: [env] must be a table of NAME = \"value\"")
    for name, text in value.items():
        if not _ENV_NAME.match(name):
            raise ConfigError(f"{source}: [env] {name!r} is not a valid environment variable name")
        if not isinstance(text, str):
            raise ConfigError(f"{source}: [env] {name} = {text!r}; expected a string")
        _single_line(text, f"env.{name}", source)
    return dict(value)


def _single_line(value: str, key: str, source: str) -> None:
    if "\n" in value or "\r" in value or "\0" in value:
        raise ConfigError(f"{source}: {key} = {value!r} contains a line break; expected a single line")
