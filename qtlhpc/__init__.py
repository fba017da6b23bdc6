"""qtlhpc: the heavy parts of genetic mapping, on clusters.

Layers (see docs/architecture.md):

* kernels (``qtlhpc.genetics.genoprob``, ``qtlhpc.methods.pepis.kernels.*``...): arrays in, arrays out;
* blocked / distributed wrappers taking a ``comm`` (default: a serial stand-in);
* stage drivers (``qtlhpc.stages``) that read inputs, validate them and write named results
  into one HDF5 file per run (``qtlhpc.store``), declared once in ``qtlhpc.schema``.
"""

__version__ = "0.1.0"
