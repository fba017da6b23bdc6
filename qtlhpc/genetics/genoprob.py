"""Genotype probabilities given observed marker genotypes: the hidden Markov model of R/qtl.

The conventions are those of R/qtl's ``calc.genoprob`` (Broman et al. 2003, Bioinformatics 19:889;
Lander & Green 1987), so that results can be compared number for number:

* hidden states per cross type: ``bc`` (AA, AB), ``riself`` / ``risib`` (AA, BB), ``f2`` (AA, AB, BB);
  an immortalized F2 (``imf2``) is analysed as an F2 (``qtlhpc.io.cross.HMM_CROSS_TYPE``);
* initial probabilities: 1/2, 1/2 (bc, RILs); 1/4, 1/2, 1/4 (f2);
* emissions with genotyping error probability ``e``: a fully informative code is observed with
  probability ``1 - e`` when it equals the true state, otherwise ``e`` (two states) or ``e/2``
  (three states); F2's partially informative codes 4 (not BB) and 5 (not AA) have probability
  ``1 - e/2`` when compatible with the true state and ``e`` otherwise (as R/qtl 1.58 computes:
  checked against its calc.genoprob, see tests); a missing code (0) has probability 1;
* transitions from the recombination fraction ``r = mf(d)`` of the map function ``mf``
  (Haldane, Kosambi, Carter-Falconer, Morgan) between adjacent positions; for RILs the
  RIL-map expansion replaces r by ``R = 2r/(1+2r)`` (selfing) or ``R = 4r/(1+6r)`` (sib mating)
  (Haldane & Waddington 1931); r is floored at 1e-14 as R/qtl does, so markers at the same
  position are handled without a division by zero;
* pseudomarkers every ``step`` cM between and including the terminal markers, as R/qtl's
  ``create.map(map, step, off.end=0, stepwidth="fixed")``: the grid starts at the first marker,
  grid points that coincide exactly with a marker are dropped, pseudomarkers are named
  ``c<chromosome>.loc<distance from the first marker>``; a chromosome with a single marker gets
  ``off.end = 5`` cM, again as R/qtl does.

The forward-backward recursions are scaled at every position (each forward / backward vector is
renormalised to sum to 1), vectorised over individuals.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numba
import numpy as np

from qtlhpc.io.cross import GENOTYPE_STATES, HMM_CROSS_TYPE, OBSERVED_CODES, check_cross_type
from qtlhpc.errors import ConfigError, InputError

MAP_FUNCTIONS = ("haldane", "kosambi", "c-f", "morgan")

#: R/qtl's floor on recombination fractions (and error_prob floor), see calc.genoprob
MIN_RECOMBINATION_FRACTION = 1e-14
MIN_ERROR_PROB = 1e-50
#: off.end R/qtl forces for a chromosome with a single marker
SINGLE_MARKER_OFF_END = 5.0


# ----------------------------------------------------------------------------------------------
# map functions
# ----------------------------------------------------------------------------------------------

def check_map_function(map_function: str) -> str:
    """Return the canonical map function name or raise ConfigError naming the allowed ones."""
    name = str(map_function).lower()
    name = {"carter-falconer": "c-f", "cf": "c-f"}.get(name, name)
    if name not in MAP_FUNCTIONS:
        raise ConfigError(f"unknown map function {map_function!r}; expected one of {', '.join(MAP_FUNCTIONS)}")
    return name


def _carter_falconer_distance(fraction):
    """Carter-Falconer inverse map function d(r) in cM: 12.5 (ln(1+2r) - ln(1-2r)) + 25 atan(2r)."""
    two_r = 2.0 * fraction
    return 12.5 * (np.log1p(two_r) - np.log1p(-two_r)) + 25.0 * np.arctan(two_r)


def recombination_fraction(distance_cM, map_function: str = "haldane") -> np.ndarray:
    """Recombination fraction r for a map distance d (cM), array in, array out (same shape).

    haldane: r = (1 - exp(-d/50)) / 2;  kosambi: r = tanh(d/50) / 2;  morgan: r = min(d/100, 1/2);
    c-f (Carter-Falconer): the root of d = 12.5 ln((1+2r)/(1-2r)) + 25 atan(2r), d capped at 300.
    """
    name = check_map_function(map_function)
    distance = np.asarray(distance_cM, dtype=float)
    if np.any(distance < 0) or np.any(np.isnan(distance)):
        raise InputError(f"map distances must be non-negative numbers, got {distance[(distance < 0) | np.isnan(distance)][:3]}")
    if name == "haldane":
        return 0.5 * -np.expm1(-distance / 50.0)
    if name == "kosambi":
        return 0.5 * np.tanh(distance / 50.0)
    if name == "morgan":
        return np.minimum(distance / 100.0, 0.5)
    # Carter-Falconer: bisection on the monotone inverse, vectorised (60 halvings: below 1e-18)
    target = np.minimum(distance, 300.0)
    low = np.zeros_like(target)
    high = np.full_like(target, 0.5 - MIN_RECOMBINATION_FRACTION)
    for _ in range(60):
        middle = 0.5 * (low + high)
        below = _carter_falconer_distance(middle) < target
        low = np.where(below, middle, low)
        high = np.where(below, high, middle)
    return np.where(target == 0, 0.0, 0.5 * (low + high))


def hmm_fraction(distance_cM, map_function: str = "haldane") -> np.ndarray:
    """The recombination fractions the HMM uses, computed with R/qtl's own arithmetic.

    Haldane as R/qtl's ``mf.h``: ``(1 - exp(-d/50)) / 2``, not the ``expm1`` form of
    :func:`recombination_fraction`.  The two differ only in rounding, by up to ~1e-16 absolute, which is
    a *relative* difference of ~5e-5 for intervals of 1e-10 cM; R/qtl's ``jittermap`` (used on its
    bundled ``hyper``) spaces markers that far apart, and where two genotyping errors compete with one
    recombination in such an interval the posterior moves by ~1e-8 with it.  Other map functions: as
    :func:`recombination_fraction`.
    """
    name = check_map_function(map_function)
    if name != "haldane":
        return recombination_fraction(distance_cM, name)
    distance = np.asarray(distance_cM, dtype=float)
    recombination_fraction(distance, name)  # the same checks
    # the C library's exp, as R calls it (numpy's vectorised exp may round the last bit differently)
    return 0.5 * (1.0 - _libm_exp(-distance / 50.0).astype(float))


_libm_exp = np.frompyfunc(math.exp, 1, 1)


def map_distance(fraction, map_function: str = "haldane") -> np.ndarray:
    """Inverse of :func:`recombination_fraction`: map distance (cM) for a recombination fraction.

    r >= 1/2 is replaced by 1/2 - 1e-14 (as R/qtl's imf.* functions) so the result is finite.
    """
    name = check_map_function(map_function)
    r = np.asarray(fraction, dtype=float)
    if np.any(r < 0) or np.any(np.isnan(r)):
        raise InputError(f"recombination fractions must be in [0, 1/2], got {r[(r < 0) | np.isnan(r)][:3]}")
    if name == "morgan":
        return np.minimum(r * 100.0, 50.0)
    r = np.minimum(r, 0.5 - MIN_RECOMBINATION_FRACTION)
    if name == "haldane":
        return -50.0 * np.log1p(-2.0 * r)
    if name == "kosambi":
        return 50.0 * np.arctanh(2.0 * r)
    return _carter_falconer_distance(r)


def ril_expanded_fraction(fraction, cross_type: str, x_chromosome: bool = False) -> np.ndarray:
    """The RIL's recombination fraction R for the meiotic fraction r (Haldane & Waddington 1931).

    riself: R = 2r / (1 + 2r);  risib: R = 4r / (1 + 6r), on the X chromosome (``x_chromosome``: a
    chromosome named X, as R/qtl's ``adjust.rf.ri``) R = (8/3) r / (1 + 4r);  other cross types: R = r.
    """
    r = np.asarray(fraction, dtype=float)
    if cross_type == "riself":
        return 2.0 * r / (1.0 + 2.0 * r)
    if cross_type == "risib" and x_chromosome:
        return 8.0 / 3.0 * r / (1.0 + 4.0 * r)
    if cross_type == "risib":
        return 4.0 * r / (1.0 + 6.0 * r)
    return r


# ----------------------------------------------------------------------------------------------
# model: initial, emission, transition
# ----------------------------------------------------------------------------------------------

def hmm_cross_type(cross_type: str) -> str:
    """The HMM cross type (bc, riself, risib, f2) or a clear error for ``generic`` crosses."""
    try:
        name = check_cross_type(cross_type)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if name not in HMM_CROSS_TYPE:
        raise InputError(
            f"genotype probabilities need a cross type with discrete genotypes (bc, riself, risib, f2, "
            f"imf2); cross type {cross_type!r} carries numeric genotypes that are used as given",
            hint="skip the genoprob stage for generic crosses, or give the cross type of the population")
    return HMM_CROSS_TYPE[name]


def initial_probabilities(cross_type: str) -> np.ndarray:
    """Initial state probabilities ``(n_states,)``: bc and RILs (1/2, 1/2), f2 (1/4, 1/2, 1/4)."""
    kind = hmm_cross_type(cross_type)
    if kind == "f2":
        return np.array([0.25, 0.5, 0.25])
    return np.array([0.5, 0.5])


def emission_table(cross_type: str, error_prob: float) -> np.ndarray:
    """Emission probabilities ``(n_codes, n_states)``: row = observed code (0 missing), column = state.

    Two states: 1 - e when the code is the state, e otherwise.  F2: 1 - e / (e/2 for each wrong
    state) for codes 1-3; codes 4 (not BB) and 5 (not AA): 1 - e/2 if compatible, e if not (R/qtl).
    """
    kind = hmm_cross_type(cross_type)
    e = float(error_prob)
    if kind == "f2":
        h = e / 2.0
        return np.array([
            [1.0, 1.0, 1.0],
            [1.0 - e, h, h],
            [h, 1.0 - e, h],
            [h, h, 1.0 - e],
            [1.0 - h, 1.0 - h, e],
            [e, 1.0 - h, 1.0 - h],
        ])
    return np.array([[1.0, 1.0], [1.0 - e, e], [e, 1.0 - e]])


def transition_matrices(fractions, cross_type: str, x_chromosome: bool = False) -> np.ndarray:
    """Transition matrices ``(n_intervals, n_states, n_states)``, ``[k, s, t] = P(t at k+1 | s at k)``.

    ``fractions (n_intervals,)`` are meiotic recombination fractions; RILs use the expanded R.
    bc / RIL: [[1-r, r], [r, 1-r]].  f2 (two independent meioses):
    AA -> ((1-r)^2, 2r(1-r), r^2); AB -> (r(1-r), (1-r)^2 + r^2, r(1-r)); BB -> (r^2, 2r(1-r), (1-r)^2).
    """
    kind = hmm_cross_type(cross_type)
    r = ril_expanded_fraction(np.asarray(fractions, dtype=float), kind, x_chromosome)
    r = np.maximum(r, MIN_RECOMBINATION_FRACTION)
    s = 1.0 - r
    if kind == "f2":
        matrices = np.empty((len(r), 3, 3))
        matrices[:, 0] = np.stack([s * s, 2 * r * s, r * r], axis=1)
        matrices[:, 1] = np.stack([r * s, s * s + r * r, r * s], axis=1)
        matrices[:, 2] = np.stack([r * r, 2 * r * s, s * s], axis=1)
        return matrices
    return np.stack([np.stack([s, r], axis=1), np.stack([r, s], axis=1)], axis=1)


# ----------------------------------------------------------------------------------------------
# pseudomarker grid (R/qtl create.map, stepwidth = "fixed")
# ----------------------------------------------------------------------------------------------

def _r_number(value: float) -> str:
    """A number written as R's ``paste`` writes it (15 significant digits, no trailing zeros)."""
    text = f"{value:.15g}"
    return "0" if text == "-0" else text


def _r_seq(start: float, stop: float, step: float) -> np.ndarray:
    """R's ``seq(start, stop, by=step)``: start + (0..n) step with n = floor((stop-start)/step + 1e-10)."""
    n = int(np.floor((stop - start) / step + 1e-10))
    return np.minimum(start + np.arange(n + 1) * step, stop)


@dataclass
class PositionGrid:
    """Markers and pseudomarkers of one chromosome, in map order. All arrays ``(n_positions,)``."""

    positions: np.ndarray
    is_marker: np.ndarray
    marker_index: np.ndarray   # index into the chromosome's markers, -1 for pseudomarkers
    names: np.ndarray


def pseudomarker_grid(positions, step: float, *, marker_names: Optional[Sequence[str]] = None,
                      chromosome: Optional[str] = None) -> PositionGrid:
    """Markers plus pseudomarkers every ``step`` cM from the first marker (R/qtl ``create.map``).

    ``positions (n_markers,)`` non-decreasing cM.  ``step = 0``: markers only.  Grid points at
    distances 0, step, 2 step, ... <= last - first from the first marker; points equal to a marker's
    distance are dropped.  Pseudomarker names: ``loc<distance>`` prefixed with ``c<chromosome>.``
    when ``chromosome`` is given.  A single marker gets pseudomarkers from -5 to +5 cM around it.
    """
    positions = np.asarray(positions, dtype=float)
    n_markers = len(positions)
    assert n_markers >= 1
    if marker_names is None:
        marker_names = [f"m{k + 1}" for k in range(n_markers)]
    prefix = "" if chromosome is None else f"c{chromosome}."
    origin = positions.min()
    relative = positions - origin
    if n_markers == 1:
        if step == 0:
            grid = np.array([-SINGLE_MARKER_OFF_END, SINGLE_MARKER_OFF_END])
        else:
            grid = _r_seq(-SINGLE_MARKER_OFF_END, SINGLE_MARKER_OFF_END, step)
        grid = grid[grid != 0]
    elif step == 0:
        grid = np.empty(0)
    else:
        grid = _r_seq(0.0, relative.max(), step)
        grid = grid[~np.isin(grid, relative)]
    # R: sort(c(grid, markers)), stable, grid first
    all_relative = np.concatenate([grid, relative])
    order = np.argsort(all_relative, kind="stable")
    n_grid = len(grid)
    marker_index = np.concatenate([np.full(n_grid, -1), np.arange(n_markers)])[order]
    names = np.array([prefix + "loc" + _r_number(g) for g in grid] + [str(m) for m in marker_names],
                     dtype=object)[order]
    # R: (sorted distances from the first marker) + origin, markers included, so marker positions carry
    # the same last-bit rounding as in R/qtl (it matters for intervals of ~1e-10 cM, see hmm_fraction)
    absolute = all_relative[order] + origin
    return PositionGrid(absolute, marker_index >= 0, marker_index, names.astype(str))


# ----------------------------------------------------------------------------------------------
# forward-backward kernel
# ----------------------------------------------------------------------------------------------

@numba.njit(cache=True)
def _scaled_sweeps(emissions, transitions, initial, forward, backward):
    """Fill ``forward`` and ``backward (n_positions, n_states, n_individuals)``, each vector scaled to sum to 1."""
    n_positions, n_states, n_individuals = emissions.shape
    total = np.empty(n_individuals)
    for a in range(n_states):
        for i in range(n_individuals):
            forward[0, a, i] = initial[a] * emissions[0, a, i]
    for j in range(n_positions):
        if j > 0:
            for b in range(n_states):
                for i in range(n_individuals):
                    forward[j, b, i] = transitions[j - 1, 0, b] * forward[j - 1, 0, i]
                for a in range(1, n_states):
                    for i in range(n_individuals):
                        forward[j, b, i] += transitions[j - 1, a, b] * forward[j - 1, a, i]
                for i in range(n_individuals):
                    forward[j, b, i] *= emissions[j, b, i]
        _normalise(forward[j], total)
    for a in range(n_states):
        for i in range(n_individuals):
            backward[n_positions - 1, a, i] = 1.0 / n_states
    for j in range(n_positions - 2, -1, -1):
        for a in range(n_states):
            for i in range(n_individuals):
                backward[j, a, i] = transitions[j, a, 0] * emissions[j + 1, 0, i] * backward[j + 1, 0, i]
            for b in range(1, n_states):
                for i in range(n_individuals):
                    backward[j, a, i] += transitions[j, a, b] * emissions[j + 1, b, i] * backward[j + 1, b, i]
        _normalise(backward[j], total)


@numba.njit(cache=True)
def _normalise(vectors, total):
    """Scale ``vectors (n_states, n_individuals)`` so that every column sums to 1."""
    n_states, n_individuals = vectors.shape
    for i in range(n_individuals):
        total[i] = vectors[0, i]
    for a in range(1, n_states):
        for i in range(n_individuals):
            total[i] += vectors[a, i]
    for a in range(n_states):
        for i in range(n_individuals):
            vectors[a, i] /= total[i]


def forward_backward(emissions: np.ndarray, transitions: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Posterior state probabilities of a hidden Markov chain, scaled forward-backward.

    ``emissions (n_positions, n_states, n_individuals)`` = P(observation | state) per position
    (states before individuals, so that every per-state row is contiguous over individuals);
    ``transitions (n_positions - 1, n_states, n_states)`` with ``[k, s, t] = P(t at k+1 | s at k)``;
    ``initial (n_states,)``.  Returns ``(n_positions, n_states, n_individuals)``, summing to 1 over
    states: P(state at j | all observations) proportional to alpha_j * beta_j, where
    alpha_j = (T_{j-1}' alpha_{j-1}) * e_j and beta_j = T_j (e_{j+1} * beta_{j+1}), each renormalised.
    """
    return state_posterior(*forward_and_backward(emissions, transitions, initial))


def state_posterior(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """``P(state at j | all observations)`` from scaled forward and backward vectors (same shapes)."""
    posterior = forward * backward
    posterior /= posterior.sum(axis=1, keepdims=True)
    return posterior


# ----------------------------------------------------------------------------------------------
# per chromosome and per cross
# ----------------------------------------------------------------------------------------------

@dataclass
class GenoprobChromosome:
    """Genotype probabilities of one chromosome.

    ``probs (n_individuals, n_positions, n_states)`` (a transposed view of the kernel output: use
    ``np.ascontiguousarray`` if C order matters); ``positions``, ``is_marker``, ``names``,
    ``marker_index`` (index into the chromosome's markers, -1 for pseudomarkers): ``(n_positions,)``.
    """

    probs: np.ndarray
    positions: np.ndarray
    is_marker: np.ndarray
    names: np.ndarray
    marker_index: np.ndarray


def _check_parameters(step: float, error_prob: float, map_function: str) -> Tuple[float, float, str]:
    step = float(step)
    if not np.isfinite(step) or step < 0:
        raise ConfigError(f"step must be a non-negative number of cM (0 = markers only), got {step}")
    error_prob = float(error_prob)
    if not (0.0 <= error_prob < 1.0):
        raise ConfigError(f"error_prob must be in [0, 1), got {error_prob}")
    return step, max(error_prob, MIN_ERROR_PROB), check_map_function(map_function)


def _check_genotypes(genotypes: np.ndarray, positions: np.ndarray, kind: str) -> None:
    if genotypes.ndim != 2 or genotypes.shape[1] != len(positions):
        raise InputError(f"genotypes must be (n_individuals, n_markers) = (?, {len(positions)}), "
                         f"got shape {genotypes.shape}")
    if len(positions) == 0:
        raise InputError("a chromosome needs at least one marker")
    if not np.all(np.isfinite(positions)):
        raise InputError("marker positions must be finite numbers (cM)")
    steps = np.diff(positions)
    if np.any(steps < 0):
        k = int(np.flatnonzero(steps < 0)[0])
        raise InputError(f"marker positions must be non-decreasing within a chromosome; marker {k + 2} "
                         f"is at {positions[k + 1]} cM, before marker {k + 1} at {positions[k]} cM",
                         hint="sort the markers by position")
    allowed = np.array(OBSERVED_CODES[kind])
    bad = ~np.isin(genotypes, allowed)
    if np.any(bad):
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(f"genotype code {genotypes[row, col]} (individual {row + 1}, marker {col + 1}) is not "
                         f"valid for cross type {kind}; expected one of {', '.join(map(str, allowed))} (0 = missing)")


def _ril_x(kind: str, chromosome) -> bool:
    """R/qtl expands the map of a sib-mating RIL's chromosome named X (or x) as an X (``adjust.rf.ri``)."""
    return kind == "risib" and chromosome is not None and str(chromosome) in ("X", "x")


def genoprob_chromosome(genotypes, positions, cross_type: str, *, step: float = 1.0, error_prob: float = 1e-4,
                        map_function: str = "haldane", marker_names: Optional[Sequence[str]] = None,
                        chromosome: Optional[str] = None) -> GenoprobChromosome:
    """Genotype probabilities at the markers and pseudomarkers of one chromosome.

    ``genotypes (n_individuals, n_markers)`` integer codes (qtlhpc.io.cross: 0 missing);
    ``positions (n_markers,)`` cM, non-decreasing.  Returns a :class:`GenoprobChromosome` with
    ``probs (n_individuals, n_positions, n_states)``, states in GENOTYPE_STATES order.
    """
    kind = hmm_cross_type(cross_type)
    step, error_prob, map_function = _check_parameters(step, error_prob, map_function)
    genotypes = np.asarray(genotypes)
    positions = np.asarray(positions, dtype=float)
    _check_genotypes(genotypes, positions, kind)
    grid = pseudomarker_grid(positions, step, marker_names=marker_names, chromosome=chromosome)
    n_individuals, n_positions = genotypes.shape[0], len(grid.positions)
    codes = np.zeros((n_positions, n_individuals), dtype=np.intp)
    codes[grid.is_marker] = genotypes.T[grid.marker_index[grid.is_marker]]
    # (n_states, n_positions, n_individuals) seen as (n_positions, n_states, n_individuals)
    emissions = emission_table(kind, error_prob).T[:, codes].transpose(1, 0, 2)
    fractions = hmm_fraction(np.diff(grid.positions), map_function)
    transitions = transition_matrices(fractions, kind, _ril_x(kind, chromosome))
    posterior = forward_backward(emissions, transitions, initial_probabilities(kind))
    # a view (n_individuals, n_positions, n_states); calc_genoprob copies it once into its output
    return GenoprobChromosome(posterior.transpose(2, 0, 1), grid.positions, grid.is_marker, grid.names,
                              grid.marker_index)


@dataclass
class GenoProbs:
    """Genotype probabilities of a whole cross, chromosomes concatenated in genome order.

    ``probs (n_individuals, n_positions, n_states)``; ``position_names``, ``chromosomes``,
    ``positions`` (cM), ``is_marker``, ``marker_index`` (column of the marker in the cross's
    genotype matrix, -1 for pseudomarkers): ``(n_positions,)``; ``states`` e.g. ("AA", "AB", "BB").
    """

    probs: np.ndarray
    position_names: np.ndarray
    chromosomes: np.ndarray
    positions: np.ndarray
    is_marker: np.ndarray
    marker_index: np.ndarray
    states: Tuple[str, ...]
    cross_type: str = ""
    step: float = 0.0
    error_prob: float = 1e-4
    map_function: str = "haldane"

    @property
    def n_positions(self) -> int:
        return len(self.positions)


def calc_genoprob(cross, *, step: float = 1.0, error_prob: float = 1e-4, map_function: str = "haldane",
                  individuals=None) -> GenoProbs:
    """Genotype probabilities for every chromosome of ``cross`` (a qtlhpc.io.Cross).

    ``individuals``: a slice or index array selecting rows (the HMM is independent per individual,
    so a distributed driver can compute its own block); default all.  See :func:`genoprob_chromosome`.
    """
    kind = hmm_cross_type(cross.cross_type)
    genotypes = cross.genotypes if individuals is None else cross.genotypes[individuals]
    pieces = []
    for chromosome, columns in cross.chromosome_slices().items():
        first = columns.start
        is_x = getattr(cross, "is_x", lambda _: False)(chromosome)
        try:
            # the X of a bc or f2: R/qtl's backcross HMM on its g1/g2 codes (qtlhpc.genetics.xchr)
            piece = genoprob_chromosome(genotypes[:, columns], cross.positions[columns], "bc" if is_x else kind,
                                        step=step, error_prob=error_prob, map_function=map_function,
                                        marker_names=cross.markers[columns], chromosome=chromosome)
        except InputError as error:
            raise InputError(f"chromosome {chromosome}: {error}") from None
        if is_x:
            from qtlhpc.genetics.xchr import x_states_to_cross

            classes = cross.x_classes() if individuals is None else cross.x_classes()[individuals]
            piece.probs = x_states_to_cross(piece.probs, classes, kind, len(GENOTYPE_STATES[kind]))
        pieces.append((chromosome, first, piece))
    n_states = len(GENOTYPE_STATES[kind])
    if pieces:
        probs = np.concatenate([p.probs for _, _, p in pieces], axis=1)
    else:
        probs = np.empty((genotypes.shape[0], 0, n_states))
    return GenoProbs(
        probs=probs,
        position_names=np.concatenate([p.names for _, _, p in pieces] or [np.empty(0, str)]),
        chromosomes=np.concatenate([np.full(len(p.positions), c) for c, _, p in pieces] or [np.empty(0, str)]),
        positions=np.concatenate([p.positions for _, _, p in pieces] or [np.empty(0)]),
        is_marker=np.concatenate([p.is_marker for _, _, p in pieces] or [np.empty(0, bool)]),
        marker_index=np.concatenate([np.where(p.marker_index >= 0, p.marker_index + first, -1)
                                     for _, first, p in pieces] or [np.empty(0, int)]),
        states=GENOTYPE_STATES[kind],
        cross_type=kind,
        step=float(step),
        error_prob=float(error_prob),
        map_function=check_map_function(map_function),
    )


# ----------------------------------------------------------------------------------------------
# joint probabilities of two positions (R/qtl calc.pairprob)
# ----------------------------------------------------------------------------------------------

def forward_and_backward(emissions: np.ndarray, transitions: np.ndarray,
                         initial: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Scaled forward and backward vectors of the chain of :func:`forward_backward`.

    Same arguments; returns ``forward, backward`` each ``(n_positions, n_states, n_individuals)``,
    every vector renormalised to sum to 1: ``forward_j`` proportional to
    P(observations 1..j, state at j) and ``backward_j`` to P(observations j+1..m | state at j).
    """
    emissions = np.ascontiguousarray(emissions, dtype=float)
    n_positions, n_states, n_individuals = emissions.shape
    assert transitions.shape == (n_positions - 1, n_states, n_states)
    forward = np.empty((n_positions, n_states, n_individuals))
    backward = np.empty((n_positions, n_states, n_individuals))
    if n_positions:
        _scaled_sweeps(emissions, np.ascontiguousarray(transitions, dtype=float),
                       np.ascontiguousarray(initial, dtype=float), forward, backward)
    return forward, backward


def pair_posterior(forward: np.ndarray, backward: np.ndarray, emissions: np.ndarray, transitions: np.ndarray,
                   first, second) -> np.ndarray:
    """Joint posterior ``P(g_j = a, g_k = b | observations)`` for pairs of positions ``j < k``.

    ``forward``, ``backward``: from :func:`forward_and_backward`; ``emissions``, ``transitions``: as
    :func:`forward_backward`; ``first``, ``second (n_pairs,)`` position indices with ``first < second``.
    Returns ``(n_individuals, n_pairs, n_states, n_states)``, each pair's ``(a, b)`` table summing to 1.
    (A transposed view of a ``(n_pairs, n_states, n_states, n_individuals)`` C-order array: rows over
    individuals are contiguous.)

    ``P(a, b) ~ forward_j(a) [T_j E_{j+1} T_{j+1} ... E_{k-1} T_{k-1}]_{ab} e_k(b) backward_k(b)``
    with ``E_l = diag(e_l)``.  One sweep over ``k`` carries the matrix product of every distinct
    ``j`` of the request at once (renormalised at each step), so the cost is
    ``(max k - min j)`` steps of ``n_distinct_j * n_individuals * n_states^3`` flops.
    """
    first = np.asarray(first, dtype=np.intp)
    second = np.asarray(second, dtype=np.intp)
    n_positions, n_states, n_individuals = forward.shape
    out = np.empty((len(first), n_states, n_states, n_individuals))  # returned as a transposed view
    if len(first) == 0:
        return out.transpose(3, 0, 1, 2)
    assert first.shape == second.shape and np.all(first < second) and first.min() >= 0
    assert second.max() < n_positions
    starts, start_of_pair = np.unique(first, return_inverse=True)  # sorted: the running ones are a prefix
    # carried[s, a, b, i] (distinct start, a at start, b at current k, individual): individuals last, so
    # that every elementwise step runs over long contiguous rows; two buffers for the matrix product
    carried = np.empty((len(starts), n_states, n_states, n_individuals))
    spare = np.empty_like(carried)
    bwd_emit = emissions * backward
    order = np.argsort(second, kind="stable")
    bounds = np.searchsorted(second[order], np.arange(n_positions + 1))
    n_running = 0
    for k in range(starts[0] + 1, second.max() + 1):
        # advance the products started before k - 1 over position k - 1, then start those at k - 1
        if n_running:
            carried[:n_running] *= emissions[k - 1]
            np.matmul(transitions[k - 1].T, carried[:n_running], out=spare[:n_running])
            carried, spare = spare, carried
            running = carried[:n_running]
            running *= 1.0 / running.reshape(n_running, n_states * n_states, n_individuals).sum(axis=1)[:, None, None]
        if n_running < len(starts) and starts[n_running] == k - 1:
            carried[n_running] = forward[k - 1][:, None, :] * transitions[k - 1][:, :, None]
            n_running += 1
        wanted = order[bounds[k]:bounds[k + 1]]
        if wanted.size:
            joint = carried[start_of_pair[wanted]]
            joint *= bwd_emit[k]
            joint *= 1.0 / joint.reshape(len(wanted), n_states * n_states, n_individuals).sum(axis=1)[:, None, None]
            out[wanted] = joint
    return out.transpose(3, 0, 1, 2)


@dataclass
class ChromosomeChain:
    """The HMM of one chromosome on its genoprob grid, ready for joint probabilities of position pairs.

    ``emissions``, ``forward``, ``backward (n_positions, n_states, n_individuals)``;
    ``transitions (n_positions - 1, n_states, n_states)``; ``positions (n_positions,)`` cM.
    """

    emissions: np.ndarray
    transitions: np.ndarray
    forward: np.ndarray
    backward: np.ndarray
    positions: np.ndarray

    def pair_probabilities(self, first, second) -> np.ndarray:
        """``(n_individuals, n_pairs, n_states, n_states)`` joint posteriors, see :func:`pair_posterior`."""
        return pair_posterior(self.forward, self.backward, self.emissions, self.transitions, first, second)

    def marginals(self) -> np.ndarray:
        """``(n_positions, n_states, n_individuals)``: ``P(g_j = a | observations)``."""
        return state_posterior(self.forward, self.backward)

    def posterior_transitions(self) -> np.ndarray:
        """``(n_positions - 1, n_states, n_states, n_individuals)``: ``P(g_{l+1} = b | g_l = a, observations)``.

        Given the observations the genotypes along the chromosome are still a Markov chain, with
        ``P(b | a) ~ T_l(a, b) e_{l+1}(b) backward_{l+1}(b)`` (rows normalised), so that
        ``P(g_j = a, g_k = b | obs) = P(g_j = a | obs) [R_j R_{j+1} ... R_{k-1}]_{ab}``: the form
        :func:`qtlhpc.genetics.hk_kernels.joint_tile` sweeps.
        """
        weighted = self.transitions[:, :, :, None] * (self.emissions * self.backward)[1:, None, :, :]
        return weighted / weighted.sum(axis=2, keepdims=True)


def chromosome_chain(genotypes, positions, cross_type: str, *, step: float = 1.0, error_prob: float = 1e-4,
                     map_function: str = "haldane", chromosome: Optional[str] = None) -> ChromosomeChain:
    """Forward and backward vectors of one chromosome on the grid of :func:`genoprob_chromosome`
    (``chromosome``: its name, which matters only for a sib-mating RIL's X).

    ``genotypes (n_individuals, n_markers)`` codes of one chromosome, ``positions (n_markers,)`` cM.
    """
    kind = hmm_cross_type(cross_type)
    step, error_prob, map_function = _check_parameters(step, error_prob, map_function)
    genotypes = np.asarray(genotypes)
    positions = np.asarray(positions, dtype=float)
    _check_genotypes(genotypes, positions, kind)
    grid = pseudomarker_grid(positions, step)
    codes = np.zeros((len(grid.positions), genotypes.shape[0]), dtype=np.intp)
    codes[grid.is_marker] = genotypes.T[grid.marker_index[grid.is_marker]]
    emissions = emission_table(kind, error_prob).T[:, codes].transpose(1, 0, 2)
    transitions = transition_matrices(hmm_fraction(np.diff(grid.positions), map_function), kind,
                                      _ril_x(kind, chromosome))
    forward, backward = forward_and_backward(emissions, transitions, initial_probabilities(kind))
    return ChromosomeChain(emissions, transitions, forward, backward, grid.positions)


def pair_probabilities(genotypes, positions, cross_type: str, first, second, *, step: float = 1.0,
                       error_prob: float = 1e-4, map_function: str = "haldane") -> np.ndarray:
    """Joint genotype probabilities at pairs of grid positions of one chromosome (R/qtl ``calc.pairprob``).

    ``genotypes (n_individuals, n_markers)`` codes of ONE chromosome, ``positions (n_markers,)`` cM;
    ``first``, ``second (n_pairs,)`` indices ``j < k`` into the chromosome's genoprob grid (the
    positions of :func:`genoprob_chromosome` with the same ``step``).  Returns
    ``(n_individuals, n_pairs, n_states, n_states)``: ``P(g_j = a, g_k = b | marker data)``, whose
    margins are :func:`genoprob_chromosome`'s probabilities.  For many calls on one chromosome
    build :func:`chromosome_chain` once and call its ``pair_probabilities``.
    """
    chain = chromosome_chain(genotypes, positions, cross_type, step=step, error_prob=error_prob,
                             map_function=map_function)
    first = np.asarray(first, dtype=np.intp)
    second = np.asarray(second, dtype=np.intp)
    n_positions = len(chain.positions)
    if first.shape != second.shape or first.ndim != 1:
        raise InputError(f"first and second must be 1-D index arrays of one length, got shapes {first.shape} "
                         f"and {second.shape}")
    bad = (first < 0) | (second >= n_positions) | (first >= second)
    if np.any(bad):
        p = int(np.flatnonzero(bad)[0])
        raise InputError(f"pair {p} is ({first[p]}, {second[p]}); expected grid indices 0 <= first < second < "
                         f"{n_positions}")
    return chain.pair_probabilities(first, second)


class GenomePairProbabilities:
    """Joint probabilities of position pairs anywhere in a cross's genoprob grid (genome order).

    Built from a qtlhpc.io.Cross with the options of :func:`calc_genoprob`; ``chromosomes
    (n_positions,)`` labels every grid position as :class:`GenoProbs` does.  Calling the object with
    absolute ``first``, ``second (n_pairs,)`` indices of pairs on one chromosome each returns
    ``(n_individuals, n_pairs, n_states, n_states)`` (the form ``scan2d_hk``'s ``pair_probs`` takes).
    A chromosome's chain (forward and backward vectors: three times its genotype probabilities) is
    computed at its first use and kept.
    """

    def __init__(self, cross, *, step: float = 1.0, error_prob: float = 1e-4, map_function: str = "haldane",
                 individuals=None):
        self.kind = hmm_cross_type(cross.cross_type)
        self.options = dict(step=step, error_prob=error_prob, map_function=map_function)
        self.genotypes = cross.genotypes if individuals is None else cross.genotypes[individuals]
        self.positions = cross.positions
        # the X of a bc/f2 (g1/g2 codes): R/qtl's backcross chain, two states (qtlhpc.genetics.xchr)
        self.x_chromosome = getattr(cross, "x_chromosome", None)
        self.slices = cross.chromosome_slices()
        labels, offsets = [], {}
        for chromosome, columns in self.slices.items():
            offsets[chromosome] = sum(len(label) for label in labels)
            n_grid = len(pseudomarker_grid(cross.positions[columns], float(step)).positions)
            labels.append(np.full(n_grid, chromosome))
        self.chromosomes = np.concatenate(labels) if labels else np.empty(0, str)
        self.offsets = offsets
        self._chains = {}
        self._subset = None
        self._posterior = {}
        self.individuals = None

    def for_individuals(self, individuals) -> "GenomePairProbabilities":
        """The same cross for the rows ``individuals`` (a mask or indices; None: all), sharing computed chains."""
        view = copy.copy(self)
        view.individuals = individuals
        view._subset = None
        view._posterior = {}
        return view

    def chromosome_ranges(self):
        """``(label, first_position, n_positions)`` of every chromosome, in genome order."""
        return [(label, self.offsets[label], int(np.count_nonzero(self.chromosomes == label)))
                for label in self.slices]

    def posterior_chain(self, label) -> Tuple[np.ndarray, np.ndarray]:
        """Marginals ``(P, n_states, n)`` and posterior transitions ``(P - 1, n_states, n_states, n)`` of one
        chromosome (see :meth:`ChromosomeChain.posterior_transitions`) for this object's individuals."""
        if label not in self._posterior:
            chain = self.chain(label)
            marginals, transitions = chain.marginals(), chain.posterior_transitions()
            if self.individuals is not None:
                marginals = np.ascontiguousarray(marginals[:, :, self.individuals])
                transitions = np.ascontiguousarray(transitions[..., self.individuals])
            self._posterior[label] = (marginals, transitions)
        return self._posterior[label]

    def chain(self, chromosome) -> ChromosomeChain:
        if chromosome not in self._chains:
            columns = self.slices[chromosome]
            kind = "bc" if self.x_chromosome is not None and str(chromosome) == str(self.x_chromosome) else self.kind
            self._chains[chromosome] = chromosome_chain(self.genotypes[:, columns], self.positions[columns],
                                                        kind, chromosome=chromosome, **self.options)
        return self._chains[chromosome]

    def __call__(self, first, second, individuals=None) -> np.ndarray:
        """Joint probabilities of pairs ``first < second`` (absolute, same chromosome); rows ``individuals``
        (default: those of :meth:`for_individuals`, else all)."""
        if individuals is None:
            individuals = self.individuals
        first = np.asarray(first, dtype=np.intp)
        second = np.asarray(second, dtype=np.intp)
        chromosome = self.chromosomes[first]
        if np.any(chromosome != self.chromosomes[second]):
            raise InputError("GenomePairProbabilities: every pair must lie on one chromosome")
        n_individuals = self.genotypes.shape[0] if individuals is None else len(np.arange(self.genotypes.shape[0])[individuals])
        n_states = len(initial_probabilities(self.kind))
        labels = np.unique(chromosome)
        if len(labels) == 1:
            return self._chromosome_pairs(str(labels[0]), first, second, individuals)
        out = np.empty((len(first), n_states, n_states, n_individuals))  # as pair_posterior's, transposed
        for label in labels:
            pick = np.flatnonzero(chromosome == label)
            out[pick] = self._chromosome_pairs(str(label), first[pick], second[pick], individuals).transpose(1, 2, 3, 0)
        return out.transpose(3, 0, 1, 2)

    def _chromosome_pairs(self, label: str, first, second, individuals) -> np.ndarray:
        chain = self.chain(label)
        arrays = (chain.forward, chain.backward, chain.emissions)
        if individuals is not None:
            # the same subset is usually asked for many batches in a row: keep the last one
            key = (label, np.asarray(individuals).dtype.str, np.asarray(individuals).tobytes())
            if self._subset is None or self._subset[0] != key:
                self._subset = (key, tuple(np.ascontiguousarray(a[:, :, individuals]) for a in arrays))
            arrays = self._subset[1]
        offset = self.offsets[label]
        return pair_posterior(*arrays, chain.transitions, first - offset, second - offset)
