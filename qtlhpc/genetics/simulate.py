"""Deterministic simulation of mapping populations with a planted truth.

Every random draw comes from ``qtlhpc.parallel.unit_rng(seed, stream, unit)`` with a named stream
per ingredient (``map``, ``genotypes``, ``missing``, ``genotype-errors`` per chromosome;
``polygenic``, ``noise`` per trait; ``covariates``), so that adding a trait, a covariate or a QTL
leaves the genotypes unchanged, and adding a chromosome leaves the others unchanged.

Meioses are simulated along each chromosome with a crossover between adjacent markers with
probability ``r = mf(d)`` of the map function, independently per interval (no interference: exact
for Haldane; for Kosambi the adjacent-marker fractions are exact, multi-locus interference is not
modelled, as in the HMM).  bc: one F1 gamete (plus an A gamete); f2: two F1 gametes; riself: an F1
selfed, generation after generation, until every locus is fixed; risib: F1 sibs mated brother x
sister until the line is fixed.  The RILs' adjacent-marker fractions are then R = 2r/(1+2r) and
4r/(1+6r) (Haldane & Waddington 1931).

Trait model (per trait t), with Xu (2013) codes Z = 1/0/-1 (AA/AB/BB), W = 1 (AB), -1 (AA, BB):

    y_t = sum_q (a_q Z_q + d_q W_q)
        + sum_(k,l) (aa Z_k Z_l + ad Z_k W_l + da W_k Z_l + dd W_k W_l)
        + g_t (polygenic: Z b_t, centred and scaled to variance polygenic_variance)
        + X c (covariates ~ N(0, 1), effect covariate_effect each)
        + e_t (noise ~ N(0, noise_variance)).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from qtlhpc.io.cross import ADDITIVE_CODE, DOMINANCE_CODE, GENOTYPE_STATES, HMM_CROSS_TYPE, Cross, check_cross_type
from qtlhpc.errors import ConfigError
from qtlhpc.genetics.genoprob import check_map_function, recombination_fraction
from qtlhpc.parallel import unit_rng

#: cap on RIL generations; lines still segregating afterwards (probability ~ 1e-19 per locus for
#: selfing, ~ 1e-9 for sib mating) are fixed by keeping their first haplotype
MAX_RIL_GENERATIONS = 200


# ----------------------------------------------------------------------------------------------
# map
# ----------------------------------------------------------------------------------------------

@dataclass
class SimulatedMap:
    """A genetic map: ``markers``, ``chromosomes``, ``positions`` (cM), each ``(n_markers,)``."""

    markers: np.ndarray
    chromosomes: np.ndarray
    positions: np.ndarray


def simulate_map(n_chromosomes: int, chromosome_length_cM: float, markers_per_chromosome: int, *, seed: int,
                 spacing: str = "even") -> SimulatedMap:
    """Markers ``D<chromosome>M<k>`` on chromosomes "1".."n"; the first marker of each at 0 cM.

    ``spacing="even"``: evenly spaced up to ``chromosome_length_cM``; ``"random"``: the others
    uniform on (0, length], sorted (stream ``map``, unit = chromosome index).
    """
    if n_chromosomes < 1 or markers_per_chromosome < 1 or chromosome_length_cM < 0:
        raise ConfigError(f"need n_chromosomes >= 1, markers_per_chromosome >= 1, chromosome_length_cM >= 0; "
                          f"got {n_chromosomes}, {markers_per_chromosome}, {chromosome_length_cM}")
    if spacing not in ("even", "random"):
        raise ConfigError(f"marker spacing must be 'even' or 'random', got {spacing!r}")
    markers, chromosomes, positions = [], [], []
    for c in range(n_chromosomes):
        if spacing == "even" or markers_per_chromosome == 1:
            pos = np.linspace(0.0, chromosome_length_cM, markers_per_chromosome)
        else:
            rng = unit_rng(seed, "map", c)
            pos = np.concatenate([[0.0], np.sort(rng.uniform(0.0, chromosome_length_cM, markers_per_chromosome - 1))])
        positions.append(pos)
        chromosomes += [str(c + 1)] * markers_per_chromosome
        markers += [f"D{c + 1}M{k + 1}" for k in range(markers_per_chromosome)]
    return SimulatedMap(np.array(markers), np.array(chromosomes), np.concatenate(positions))


# ----------------------------------------------------------------------------------------------
# meioses
# ----------------------------------------------------------------------------------------------

def _gamete(first: np.ndarray, second: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One gamete per row from the haplotypes ``first``, ``second`` ``(n, n_markers)`` (alleles 0/1).

    Starts on a random haplotype and switches at each interval with probability ``fractions[k]``.
    """
    n, n_markers = first.shape
    start = rng.integers(0, 2, size=(n, 1))
    switches = rng.random((n, n_markers - 1)) < fractions
    strand = (start + np.concatenate([np.zeros((n, 1), dtype=int), np.cumsum(switches, axis=1)], axis=1)) % 2
    return np.where(strand == 1, second, first)


def _selfed_lines(n_individuals, fractions, rng):
    """RILs by selfing from an F1: alleles ``(n_individuals, n_markers)`` once every locus is fixed."""
    n_markers = len(fractions) + 1
    first = np.zeros((n_individuals, n_markers), dtype=np.int8)
    second = np.ones((n_individuals, n_markers), dtype=np.int8)
    for _ in range(MAX_RIL_GENERATIONS):
        active = np.flatnonzero(np.any(first != second, axis=1))
        if len(active) == 0:
            break
        a, b = first[active], second[active]
        first[active], second[active] = _gamete(a, b, fractions, rng), _gamete(a, b, fractions, rng)
    return first


def _sib_mated_lines(n_individuals, fractions, rng):
    """RILs by brother-sister mating from two F1s: alleles ``(n_individuals, n_markers)`` once fixed."""
    n_markers = len(fractions) + 1
    parents = [np.zeros((n_individuals, n_markers), dtype=np.int8), np.ones((n_individuals, n_markers), dtype=np.int8),
               np.zeros((n_individuals, n_markers), dtype=np.int8), np.ones((n_individuals, n_markers), dtype=np.int8)]
    for _ in range(MAX_RIL_GENERATIONS):
        segregating = np.zeros(n_individuals, dtype=bool)
        for haplotype in parents[1:]:
            segregating |= np.any(haplotype != parents[0], axis=1)
        active = np.flatnonzero(segregating)
        if len(active) == 0:
            break
        mother = [parents[0][active], parents[1][active]]
        father = [parents[2][active], parents[3][active]]
        children = [_gamete(*mother, fractions, rng), _gamete(*father, fractions, rng),
                    _gamete(*mother, fractions, rng), _gamete(*father, fractions, rng)]
        for haplotype, child in zip(parents, children):
            haplotype[active] = child
    return parents[0]


def simulate_true_genotypes(positions, cross_type: str, n_individuals: int, rng: np.random.Generator,
                            map_function: str = "haldane") -> np.ndarray:
    """True genotype states ``(n_individuals, n_markers)`` (indices into GENOTYPE_STATES) of one chromosome."""
    kind = HMM_CROSS_TYPE[check_cross_type(cross_type)]
    fractions = recombination_fraction(np.diff(np.asarray(positions, dtype=float)), map_function)
    n_markers = len(positions)
    f1_first = np.zeros((n_individuals, n_markers), dtype=np.int8)
    f1_second = np.ones((n_individuals, n_markers), dtype=np.int8)
    if kind == "bc":
        return _gamete(f1_first, f1_second, fractions, rng).astype(np.int8)
    if kind == "f2":
        return (_gamete(f1_first, f1_second, fractions, rng) + _gamete(f1_first, f1_second, fractions, rng)).astype(np.int8)
    if kind == "riself":
        return _selfed_lines(n_individuals, fractions, rng)
    return _sib_mated_lines(n_individuals, fractions, rng)


def simulate_genotypes(genetic_map: SimulatedMap, cross_type: str, n_individuals: int, *, seed: int,
                       missing_rate: float = 0.0, error_rate: float = 0.0,
                       map_function: str = "haldane") -> Tuple[np.ndarray, np.ndarray]:
    """True states and observed codes ``(n_individuals, n_markers)`` (int8) for a map.

    Observed code = state + 1 (qtlhpc.io.cross conventions); with probability ``error_rate`` it
    is replaced by another fully informative code (uniformly), then with probability
    ``missing_rate`` by 0.  Streams ``genotypes``, ``genotype-errors``, ``missing`` per chromosome.
    """
    kind = check_cross_type(cross_type)
    if kind not in HMM_CROSS_TYPE:
        raise ConfigError(f"cannot simulate cross type {cross_type!r}; expected one of {', '.join(HMM_CROSS_TYPE)}")
    for name, rate in (("missing_rate", missing_rate), ("error_rate", error_rate)):
        if not 0.0 <= rate < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {rate}")
    map_function = check_map_function(map_function)
    n_states = len(GENOTYPE_STATES[kind])
    chromosomes = np.asarray(genetic_map.chromosomes)
    true_states = np.empty((n_individuals, len(chromosomes)), dtype=np.int8)
    observed = np.empty_like(true_states)
    for c, name in enumerate(dict.fromkeys(chromosomes.tolist())):
        columns = np.flatnonzero(chromosomes == name)
        states = simulate_true_genotypes(genetic_map.positions[columns], kind, n_individuals,
                                         unit_rng(seed, "genotypes", c), map_function)
        rng_errors = unit_rng(seed, "genotype-errors", c)
        is_error = rng_errors.random(states.shape) < error_rate
        shift = rng_errors.integers(1, n_states, size=states.shape)
        codes = np.where(is_error, (states + shift) % n_states, states) + 1
        codes[unit_rng(seed, "missing", c).random(states.shape) < missing_rate] = 0
        true_states[:, columns] = states
        observed[:, columns] = codes
    return true_states, observed


def state_codes(true_states: np.ndarray, cross_type: str) -> Tuple[np.ndarray, np.ndarray]:
    """Xu (2013) additive ``Z`` and dominance ``W`` codes ``(n_individuals, n_markers)`` of true states."""
    names = GENOTYPE_STATES[HMM_CROSS_TYPE[check_cross_type(cross_type)]]
    additive = np.array([ADDITIVE_CODE[s] for s in names])
    dominance = np.array([DOMINANCE_CODE[s] for s in names])
    return additive[true_states], dominance[true_states]


# ----------------------------------------------------------------------------------------------
# planted effects
# ----------------------------------------------------------------------------------------------

@dataclass
class MainQTL:
    """A main-effect QTL at a marker (column index): ``additive * Z + dominance * W``."""

    marker: int
    additive: float
    dominance: float = 0.0
    marker_name: str = ""
    traits: Optional[Tuple[int, ...]] = None   # trait indices affected; None = every trait


@dataclass
class EpistaticPair:
    """An epistatic pair of markers (k, l): ``aa Z_k Z_l + ad Z_k W_l + da W_k Z_l + dd W_k W_l``."""

    marker_1: int
    marker_2: int
    aa: float = 0.0
    ad: float = 0.0
    da: float = 0.0
    dd: float = 0.0
    marker_names: Tuple[str, str] = ("", "")
    traits: Optional[Tuple[int, ...]] = None


@dataclass
class SimulationTruth:
    """Everything planted: effects (with marker names), the true genotypes and genetic values."""

    seed: int
    cross_type: str
    map_function: str
    main_qtl: List[MainQTL]
    epistatic_pairs: List[EpistaticPair]
    polygenic_variance: float
    polygenic_effects: np.ndarray        # (n_markers, n_traits), after scaling
    noise_variance: float
    covariate_effects: np.ndarray        # (n_covariates,)
    true_genotypes: np.ndarray           # (n_individuals, n_markers) state indices
    genetic_values: np.ndarray           # (n_individuals, n_traits): QTL + epistasis + polygenic
    extra: Dict[str, Any] = field(default_factory=dict)


def _marker_index(marker, marker_names: np.ndarray, what: str) -> int:
    if isinstance(marker, (int, np.integer)) and not isinstance(marker, bool):
        if not 0 <= marker < len(marker_names):
            raise ConfigError(f"{what}: marker index {marker} is out of range; the map has {len(marker_names)} "
                              f"markers (0-based indices 0..{len(marker_names) - 1})")
        return int(marker)
    hits = np.flatnonzero(marker_names == str(marker))
    if len(hits) != 1:
        close = difflib.get_close_matches(str(marker), marker_names.tolist(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{what}: no marker named {marker!r}{hint}")
    return int(hits[0])


def _traits(value, n_traits: int, what: str) -> Optional[Tuple[int, ...]]:
    if value is None:
        return None
    traits = tuple(int(t) for t in ([value] if np.isscalar(value) else value))
    if any(not 0 <= t < n_traits for t in traits):
        raise ConfigError(f"{what}: trait indices {traits} out of range 0..{n_traits - 1}")
    return traits


def _as_main_qtl(item, marker_names, n_traits, position) -> MainQTL:
    what = f"main_qtl[{position}]"
    if isinstance(item, MainQTL):
        item = {"marker": item.marker, "additive": item.additive, "dominance": item.dominance, "traits": item.traits}
    elif not isinstance(item, dict):
        item = dict(zip(("marker", "additive", "dominance"), item))
    _check_keys(item, {"marker", "additive", "dominance", "traits"}, what)
    if "marker" not in item:
        raise ConfigError(f"{what}: needs a 'marker' (index or name)")
    index = _marker_index(item["marker"], marker_names, what)
    return MainQTL(index, float(item.get("additive", 0.0)), float(item.get("dominance", 0.0)),
                   str(marker_names[index]), _traits(item.get("traits"), n_traits, what))


def _as_pair(item, marker_names, n_traits, position) -> EpistaticPair:
    what = f"epistatic_pairs[{position}]"
    if isinstance(item, EpistaticPair):
        item = {"markers": [item.marker_1, item.marker_2], "aa": item.aa, "ad": item.ad, "da": item.da,
                "dd": item.dd, "traits": item.traits}
    elif not isinstance(item, dict):
        values = list(item)
        item = {"markers": values[:2], **dict(zip(("aa", "ad", "da", "dd"), values[2:]))}
    _check_keys(item, {"markers", "marker_1", "marker_2", "aa", "ad", "da", "dd", "traits"}, what)
    markers = item.get("markers", [item.get("marker_1"), item.get("marker_2")])
    if len(markers) != 2 or any(m is None for m in markers):
        raise ConfigError(f"{what}: needs 'markers' = [k, l] (two marker indices or names)")
    k, l = (_marker_index(m, marker_names, what) for m in markers)
    if k == l:
        raise ConfigError(f"{what}: the two markers of a pair must differ, got {markers}")
    return EpistaticPair(k, l, *(float(item.get(name, 0.0)) for name in ("aa", "ad", "da", "dd")),
                         marker_names=(str(marker_names[k]), str(marker_names[l])),
                         traits=_traits(item.get("traits"), n_traits, what))


def _check_keys(item: dict, allowed: set, what: str) -> None:
    for key in item:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{what}: unknown key {key!r}{hint} (allowed: {', '.join(sorted(allowed))})")


def _applies(traits: Optional[Tuple[int, ...]], trait: int) -> bool:
    return traits is None or trait in traits


def genetic_values(additive: np.ndarray, dominance: np.ndarray, main_qtl: Sequence[MainQTL],
                   pairs: Sequence[EpistaticPair], trait: int = 0) -> np.ndarray:
    """QTL and epistatic contributions ``(n_individuals,)`` from codes ``Z, W (n_individuals, n_markers)``."""
    values = np.zeros(additive.shape[0])
    for q in main_qtl:
        if _applies(q.traits, trait):
            values += q.additive * additive[:, q.marker] + q.dominance * dominance[:, q.marker]
    for p in pairs:
        if _applies(p.traits, trait):
            zk, zl, wk, wl = additive[:, p.marker_1], additive[:, p.marker_2], dominance[:, p.marker_1], dominance[:, p.marker_2]
            values += p.aa * zk * zl + p.ad * zk * wl + p.da * wk * zl + p.dd * wk * wl
    return values


def _polygenic(additive: np.ndarray, variance: float, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Polygenic values Z b with b ~ N(0, 1), centred and scaled to sample variance ``variance``."""
    effects = rng.standard_normal(additive.shape[1])
    values = additive @ effects
    spread = values.std()
    if variance <= 0 or spread == 0:
        return np.zeros(additive.shape[0]), np.zeros(additive.shape[1])
    scale = np.sqrt(variance) / spread
    return (values - values.mean()) * scale, effects * scale


# ----------------------------------------------------------------------------------------------
# the cross
# ----------------------------------------------------------------------------------------------

def simulate_cross(cross_type: str, n_individuals: int, *, n_chromosomes: int = 5, chromosome_length_cM: float = 100.0,
                   markers_per_chromosome: int = 20, marker_spacing: str = "even", missing_rate: float = 0.0,
                   error_rate: float = 0.0, map_function: str = "haldane", seed: int = 1,
                   main_qtl: Sequence = (), epistatic_pairs: Sequence = (), polygenic_variance: float = 0.0,
                   noise_variance: float = 1.0, n_traits: int = 1, n_covariates: int = 0,
                   covariate_effect: float = 0.5) -> Tuple[Cross, SimulationTruth]:
    """A simulated cross and its truth. See the module docstring for the model.

    ``main_qtl``: MainQTL, dicts ``{"marker": index or name, "additive": a, "dominance": d,
    "traits": [t...]}`` or tuples ``(marker, a, d)``.  ``epistatic_pairs``: EpistaticPair, dicts
    ``{"markers": [k, l], "aa": .., "ad": .., "da": .., "dd": .., "traits": [..]}`` or tuples
    ``(k, l, aa, ad, da, dd)``.  Marker indices are 0-based columns of the genotype matrix.
    """
    kind = check_cross_type(cross_type)
    if n_individuals < 1 or n_traits < 0 or n_covariates < 0:
        raise ConfigError(f"need n_individuals >= 1, n_traits >= 0, n_covariates >= 0; "
                          f"got {n_individuals}, {n_traits}, {n_covariates}")
    if polygenic_variance < 0 or noise_variance < 0:
        raise ConfigError(f"variances must be >= 0, got polygenic {polygenic_variance}, noise {noise_variance}")
    genetic_map = simulate_map(n_chromosomes, chromosome_length_cM, markers_per_chromosome, seed=seed,
                               spacing=marker_spacing)
    true_states, observed = simulate_genotypes(genetic_map, kind, n_individuals, seed=seed, missing_rate=missing_rate,
                                               error_rate=error_rate, map_function=map_function)
    qtl = [_as_main_qtl(item, genetic_map.markers, n_traits, i) for i, item in enumerate(main_qtl)]
    pairs = [_as_pair(item, genetic_map.markers, n_traits, i) for i, item in enumerate(epistatic_pairs)]
    additive, dominance = state_codes(true_states, kind)
    covariates = unit_rng(seed, "covariates", 0).standard_normal((n_individuals, n_covariates))
    covariate_effects = np.full(n_covariates, float(covariate_effect))
    values = np.zeros((n_individuals, n_traits))
    polygenic_effects = np.zeros((len(genetic_map.markers), n_traits))
    phenotypes = np.zeros((n_individuals, n_traits))
    for t in range(n_traits):
        polygenic, polygenic_effects[:, t] = _polygenic(additive, polygenic_variance, unit_rng(seed, "polygenic", t))
        values[:, t] = genetic_values(additive, dominance, qtl, pairs, t) + polygenic
        noise = np.sqrt(noise_variance) * unit_rng(seed, "noise", t).standard_normal(n_individuals)
        phenotypes[:, t] = values[:, t] + covariates @ covariate_effects + noise
    cross = Cross(kind, [f"ind{i + 1}" for i in range(n_individuals)], genetic_map.markers, genetic_map.chromosomes,
                  genetic_map.positions, observed, phenotypes, [f"trait{t + 1}" for t in range(n_traits)],
                  covariates, [f"covar{k + 1}" for k in range(n_covariates)], sources={"simulated": f"seed {seed}"})
    truth = SimulationTruth(seed, kind, check_map_function(map_function), qtl, pairs, float(polygenic_variance),
                            polygenic_effects, float(noise_variance), covariate_effects, true_states, values)
    return cross, truth


# ----------------------------------------------------------------------------------------------
# config form
# ----------------------------------------------------------------------------------------------

#: keys of a ``[simulate]`` config section: key -> (type, default, description)
SIMULATE_OPTIONS: Dict[str, Tuple[type, Any, str]] = {
    "cross_type": (str, "f2", "bc, f2, riself, risib or imf2"),
    "n_individuals": (int, 200, "number of individuals"),
    "n_chromosomes": (int, 5, "number of chromosomes, named 1..n"),
    "chromosome_length_cM": (float, 100.0, "length of every chromosome (cM)"),
    "markers_per_chromosome": (int, 20, "markers per chromosome, the first at 0 cM"),
    "marker_spacing": (str, "even", "'even' or 'random' (uniform) marker positions"),
    "missing_rate": (float, 0.0, "probability that a genotype is missing"),
    "error_rate": (float, 0.0, "probability that a genotype is miscalled"),
    "map_function": (str, "haldane", "haldane, kosambi, c-f or morgan"),
    "seed": (int, 1, "run seed: the same seed gives the same cross"),
    "main_qtl": (list, [], "list of {marker = index or name, additive = a, dominance = d, traits = [..]}"),
    "epistatic_pairs": (list, [], "list of {markers = [k, l], aa = .., ad = .., da = .., dd = .., traits = [..]}"),
    "polygenic_variance": (float, 0.0, "variance of the polygenic background (sum of small additive effects)"),
    "noise_variance": (float, 1.0, "residual variance"),
    "n_traits": (int, 1, "number of traits (same QTL unless 'traits' is given; own polygenic and noise)"),
    "n_covariates": (int, 0, "number of N(0, 1) covariates"),
    "covariate_effect": (float, 0.5, "effect of every covariate on every trait"),
}


def _checked_value(key: str, value, expected: type):
    if expected is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if expected is list and isinstance(value, (list, tuple)):
        return list(value)
    if expected is str and isinstance(value, str):
        return value
    raise ConfigError(f"[simulate] {key}: expected {expected.__name__}, got {value!r} ({type(value).__name__})")


def simulate_from_config(section: Dict[str, Any]) -> Tuple[Cross, SimulationTruth]:
    """:func:`simulate_cross` from a config section (a dict, e.g. TOML ``[simulate]``); keys in SIMULATE_OPTIONS."""
    options = {}
    for key, value in section.items():
        if key not in SIMULATE_OPTIONS:
            close = difflib.get_close_matches(key, list(SIMULATE_OPTIONS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"[simulate]: unknown key {key!r}{hint}")
        options[key] = _checked_value(key, value, SIMULATE_OPTIONS[key][0])
    merged = {key: default for key, (_, default, _) in SIMULATE_OPTIONS.items()}
    merged.update(options)
    cross_type = merged.pop("cross_type")
    n_individuals = merged.pop("n_individuals")
    try:
        return simulate_cross(cross_type, n_individuals, **merged)
    except ConfigError as error:
        raise ConfigError(f"[simulate]: {error}") from None
    except ValueError as error:   # unknown cross type from check_cross_type
        raise ConfigError(f"[simulate] cross_type: {error}") from None
