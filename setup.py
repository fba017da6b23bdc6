"""Ship the SLURM templates, job definitions and site profiles inside the wheel.

They stay where they are in the repository (slurm/, jobs/, configs/site-*.toml: the source of truth);
``build_py`` adds copies of them to the package as ``qtlhpc/_shipped/<folder>/...`` (and sdists carry
the originals), so ``pip install .`` gives a ``qtlhpc submit`` that finds them.  qtlhpc.resources
reads the copies in an installed wheel and the repository's folders in a source checkout.  Everything
else about the package is in pyproject.toml.
"""

import glob
import os

from setuptools import setup
from setuptools.command.build_py import build_py

#: folder -> the files of it that ship (the same table as qtlhpc.resources.SHIPPED)
SHIPPED = {"slurm": "*.sbatch", "jobs": "*.toml", "configs": "site-*.toml"}


class build_py_with_shipped(build_py):
    """``build_py`` whose package data also holds the SHIPPED files, under qtlhpc/_shipped/."""

    def _get_data_files(self):
        return super()._get_data_files() + [self._shipped()]

    def get_data_files_without_manifest(self):
        return super().get_data_files_without_manifest() + [self._shipped()]

    def _shipped(self):
        files = sorted(path for folder, pattern in SHIPPED.items() for path in glob.glob(os.path.join(folder, pattern)))
        missing = [folder for folder in SHIPPED if not any(path.startswith(folder + os.sep) for path in files)]
        if missing:
            raise RuntimeError(f"qtlhpc build: no files in {', '.join(missing)}/ to ship (build from the "
                               f"repository root or from an sdist made there)")
        return ("qtlhpc._shipped", "", os.path.join(self.build_lib, "qtlhpc", "_shipped"), files)


setup(cmdclass={"build_py": build_py_with_shipped})
