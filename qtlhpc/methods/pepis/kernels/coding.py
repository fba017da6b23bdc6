"""Additive and dominance codes of the epistatic model (Xu 2013; Zhang et al. 2016, PEPIS).

Each true genotype state has an additive code ``Z`` and a dominance code ``W``
(:data:`qtlhpc.io.cross.ADDITIVE_CODE`, :data:`qtlhpc.io.cross.DOMINANCE_CODE`)::

    state   AA   AB   BB
    Z        1    0   -1
    W       -1    1   -1

With uncertain genotypes the codes are their expectations under the genotype probabilities,
``Z = sum_s p_s Z(s)`` and ``W = sum_s p_s W(s)``; for an F2 this is ``Z = p_AA - p_BB`` and
``W = p_AB - p_AA - p_BB``, for a backcross ``Z = p_AA`` and ``W = p_AB - p_AA``.  In crosses
without heterozygotes (RILs) ``W`` is the constant -1: it carries no information, and the
dominance kinships (``d``, ``ad``, ``da``, ``dd``) must not be fitted; :class:`EpistaticCodes`
flags this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from qtlhpc.io.cross import ADDITIVE_CODE, COMPATIBLE_STATES, DOMINANCE_CODE, GENOTYPE_STATES, Cross
from qtlhpc.errors import InputError


@dataclass
class EpistaticCodes:
    """Additive ``additive (n_individuals, n_markers)`` and dominance ``dominance`` codes.

    ``dominance_informative`` is False when ``dominance`` is the same constant everywhere (RILs,
    or user codes without dominance): the dominance kinships are then not identifiable.
    """

    additive: np.ndarray
    dominance: np.ndarray
    dominance_informative: bool


def state_codes(states: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """The additive and dominance code of each state, two arrays of shape ``(n_states,)``."""
    unknown = [s for s in states if s not in ADDITIVE_CODE]
    if unknown:
        raise InputError(f"genotype states {unknown} have no epistatic-model code; "
                         f"expected states among {sorted(ADDITIVE_CODE)}")
    additive = np.array([ADDITIVE_CODE[s] for s in states], dtype=float)
    dominance = np.array([DOMINANCE_CODE[s] for s in states], dtype=float)
    return additive, dominance


def dominance_is_informative(dominance: np.ndarray) -> bool:
    """True when the dominance codes are not one constant (then they separate individuals)."""
    dominance = np.asarray(dominance)
    if dominance.size == 0:
        return False
    return bool(np.ptp(dominance) > 0)


def additive_dominance_codes(probs: np.ndarray, states: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Expected additive and dominance codes from genotype probabilities.

    ``probs (n_individuals, n_markers, n_states)``, the last axis in the order of ``states``
    (e.g. ``("AA", "AB", "BB")``).  Returns ``Z, W``, each ``(n_individuals, n_markers)``:
    ``Z = probs @ Z(states)``, ``W = probs @ W(states)`` (see the module docstring).
    """
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 3 or probs.shape[2] != len(states):
        raise InputError(f"genotype probabilities have shape {probs.shape}; expected "
                         f"(n_individuals, n_markers, {len(states)}) for states {tuple(states)}")
    if not np.all(np.isfinite(probs)):
        raise InputError("genotype probabilities contain NaN or infinite values")
    totals = probs.sum(axis=2)
    if np.any(np.abs(totals - 1.0) > 1e-6) or np.any(probs < -1e-12):
        i, k = np.unravel_index(np.argmax(np.abs(totals - 1.0)), totals.shape)
        raise InputError(f"genotype probabilities of individual {i + 1}, marker {k + 1} sum to "
                         f"{totals[i, k]:.6g}; expected non-negative probabilities summing to 1")
    additive_of_state, dominance_of_state = state_codes(states)
    return probs @ additive_of_state, probs @ dominance_of_state


def _codes_from_observed(genotypes: np.ndarray, cross_type: str) -> Tuple[np.ndarray, np.ndarray]:
    """Codes of fully informative observed genotypes; InputError at the first ambiguous one."""
    states = GENOTYPE_STATES[cross_type]
    compatible = COMPATIBLE_STATES[cross_type]
    additive_of_state, dominance_of_state = state_codes(states)
    additive_lookup = np.full(8, np.nan)
    dominance_lookup = np.full(8, np.nan)
    for code, possible in compatible.items():
        if len(possible) == 1:
            additive_lookup[code] = additive_of_state[possible[0]]
            dominance_lookup[code] = dominance_of_state[possible[0]]
    codes = np.asarray(genotypes, dtype=np.int64)
    if codes.min(initial=0) < 0 or codes.max(initial=0) >= 8:
        raise InputError(f"genotype codes must lie in {sorted(compatible)} for a {cross_type} cross")
    additive = additive_lookup[codes]
    ambiguous = np.isnan(additive)
    if np.any(ambiguous):
        i, k = np.argwhere(ambiguous)[0]
        raise InputError(
            f"{int(ambiguous.sum())} genotypes are missing or partly informative (first: individual "
            f"{i + 1}, marker {k + 1}, code {codes[i, k]}); the epistatic codes then need genotype "
            "probabilities", hint="compute them first (genoprob stage) and pass genoprobs=")
    return additive, dominance_lookup[codes]


def codes_from_cross(cross: Cross, genoprobs: Optional[np.ndarray] = None) -> EpistaticCodes:
    """The epistatic-model codes of a cross.

    Order of precedence: the user's codes (``cross.additive_codes``/``cross.dominance_codes``,
    PEPIS input) as given; else expectations under ``genoprobs (n_individuals, n_markers,
    n_states)`` (states in :data:`qtlhpc.io.cross.GENOTYPE_STATES` order); else the codes of
    the observed genotypes, which must then be complete and fully informative.  A ``generic``
    cross uses its numeric genotypes as additive codes, with uninformative zero dominance codes.
    """
    n_individuals, n_markers = cross.n_individuals, cross.n_markers
    if cross.additive_codes is not None:
        additive = np.asarray(cross.additive_codes, dtype=float)
        if cross.dominance_codes is None:
            dominance = np.zeros_like(additive)
        else:
            dominance = np.asarray(cross.dominance_codes, dtype=float)
        for name, codes in (("additive", additive), ("dominance", dominance)):
            if codes.shape != (n_individuals, n_markers):
                raise InputError(f"{name} codes have shape {codes.shape}; expected "
                                 f"(n_individuals, n_markers) = {(n_individuals, n_markers)}")
            if not np.all(np.isfinite(codes)):
                raise InputError(f"{name} codes contain NaN or infinite values; PEPIS codes must be complete")
        return EpistaticCodes(additive, dominance, dominance_is_informative(dominance))

    if cross.cross_type == "generic":
        additive = np.asarray(cross.genotypes, dtype=float)
        if not np.all(np.isfinite(additive)):
            raise InputError("a generic cross has missing (NaN) genotypes; the epistatic model needs "
                             "complete numeric genotypes or user-supplied additive codes")
        return EpistaticCodes(additive, np.zeros_like(additive), False)

    states = GENOTYPE_STATES[cross.cross_type]
    if genoprobs is not None:
        genoprobs = np.asarray(genoprobs)
        expected = (n_individuals, n_markers, len(states))
        if genoprobs.shape != expected:
            raise InputError(f"genotype probabilities have shape {genoprobs.shape}; expected {expected} "
                             f"(states {states}) for this {cross.cross_type} cross")
        additive, dominance = additive_dominance_codes(genoprobs, states)
    else:
        additive, dominance = _codes_from_observed(cross.genotypes, cross.cross_type)
    informative = "AB" in states and dominance_is_informative(dominance)
    return EpistaticCodes(additive, dominance, informative)
