"""Epistatic QTL mapping with the PEPIS model (Xu 2013; Zhang et al. 2016): the method's Python API.

Arrays and a communicator in, arrays out (no TOML, no HDF5)::

    from qtlhpc.methods import pepis
    K = pepis.kinships(Z, W, comm=comm).matrices            # the six kinships, (n, n) each
    fits = pepis.fit_traits(Y, X, K, comm=comm)             # REML per trait
    result = pepis.scan1d(background, Z, W, comm=comm)      # 1D LRT per locus
    pairs = pepis.scan2d(background, Z, W, comm=comm)       # 2D LRT per locus pair

(``background``: :func:`null_background` of the rotated null model, see
:mod:`qtlhpc.methods.pepis.kernels.null_model`.)  The names are imported on first use, so that the
stage registry can read this room's declarations without loading the compiled kernels.
"""

_API = {
    "kinships": "distributed", "fit_traits": "distributed", "scan1d": "distributed", "scan2d": "distributed",
    "rotate": "kernels.null_model", "null_background": "kernels.null_model", "combined_kinship": "kernels.reml",
}
__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
