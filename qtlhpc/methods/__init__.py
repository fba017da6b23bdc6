"""One room per method: ``qtlhpc/methods/<method>/`` with the same file names in every room.

A room is found by being here: the stage registry (:mod:`qtlhpc.stages.registry`) imports every
sub-package's ``options``, ``schema`` and ``stages`` modules. See docs/architecture.md.
"""
