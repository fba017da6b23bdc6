"""The ``qtlhpc`` command: one thin subcommand per stage, each calling the public Python API.

Run under MPI as ``mpirun -n N python -m mpi4py -m qtlhpc run STAGE CONFIG`` so that an exception on
one rank aborts the whole job instead of leaving the others waiting.
"""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import signal
import sys
from typing import List, Optional

from qtlhpc import __version__
from qtlhpc.errors import ConfigError, QtlhpcError


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="analysis config (TOML)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="set any config key, e.g. --set scan2d.tile=128 (repeatable)")
    parser.add_argument("--output", help="results file (config key run.output); a relative path is relative to the "
                        "config file's folder, as every path of a config")
    parser.add_argument("--seed", type=int, help="run seed (config key run.seed)")


def _load_config(args):
    from qtlhpc.config import Config

    overrides = list(args.overrides)
    if getattr(args, "output", None):  # one rule: resolved like run.output, against the config file's folder
        overrides.append(f"run.output={_toml_string(args.output)}")
    if getattr(args, "seed", None) is not None:
        overrides.append(f"run.seed={args.seed}")
    return Config.load(args.config, overrides)


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _plan_text(config, ranks: int, mem_per_cpu: str) -> str:
    """`qtlhpc plan`: sizes from the input (or [simulate]) and block settings from the config."""
    from qtlhpc.cluster.plan import format_plan, plan, planned_run_stages, problem_for_config

    size, description = problem_for_config(config)
    header = f"{config.source}: {description}; {ranks} rank(s) with {mem_per_cpu} each\n"
    return header + format_plan(plan(size, ranks=ranks, mem_per_cpu=mem_per_cpu, stages=planned_run_stages(config)))


def _check_array_arguments(args) -> None:
    from qtlhpc.stages import registry

    if args.stage not in registry.stages():
        raise ConfigError(f"--units, --unit-output and task files apply to one array or merge stage, not to "
                          f"{args.stage!r}")
    spec = registry.get(args.stage)
    if (args.units or args.unit_output) and spec.array is None:
        arrays = [s.name for s in registry.stages().values() if s.array is not None]
        raise ConfigError(f"--units/--unit-output: stage {args.stage!r} is not an array stage "
                          f"(array stages: {', '.join(arrays)})")
    if args.inputs and spec.merges is None:
        raise ConfigError(f"stage {args.stage!r} takes no task files (merge stages take them: "
                          f"{', '.join(s.name for s in registry.stages().values() if s.merges)})")


def build_parser() -> argparse.ArgumentParser:
    from qtlhpc.stages import registry

    parser = argparse.ArgumentParser(prog="qtlhpc", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"qtlhpc {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error instead of its one-line message")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    commands.add_parser("info", help="MPI, parallel HDF5, PETSc/SLEPc and the backends in use")

    simulate = commands.add_parser("simulate", help="write a simulated cross (and its truth) from [simulate]")
    _add_config_arguments(simulate)

    genoprob = commands.add_parser("genoprob", help="genotype probabilities (same as `run genoprob`)")
    _add_config_arguments(genoprob)

    run = commands.add_parser("run", help="run one stage, or `all` stages listed in run.stages")
    pipelines = registry.pipelines()
    runnable = list(registry.stages()) + list(pipelines) + ["all"]

    def stage_name(name: str) -> str:
        if name not in runnable:
            from qtlhpc.errors import did_you_mean

            raise argparse.ArgumentTypeError(f"unknown stage or pipeline {name!r}{did_you_mean(name, runnable)} "
                                             f"(choose from {', '.join(runnable)})")
        return name

    run.add_argument("stage", type=stage_name, metavar="STAGE",
                     help="stage to run (" + ", ".join(registry.stages()) + "), a method's pipeline (" + "; ".join(
                         f"{m}: {', '.join(p)}" for m, p in pipelines.items()) + "), or `all` (run.stages)")
    _add_config_arguments(run)
    array_stages = [s.name for s in registry.stages().values() if s.array is not None]
    merge_stages = [s.name for s in registry.stages().values() if s.merges is not None]
    run.add_argument("--units", metavar="START:STOP",
                     help=f"array stages ({', '.join(array_stages)}): the unit ids START:STOP of this task")
    run.add_argument("--unit-output", metavar="FILE",
                     help="array stages: write this task's results to FILE (merged later by the merge stage)")
    run.add_argument("inputs", nargs="*", default=[],
                     help=f"merge stages ({', '.join(merge_stages)}): the task files to merge")

    export = commands.add_parser("export", help="write one dataset of a results file as TSV")
    export.add_argument("results", help="results HDF5 file")
    export.add_argument("dataset", help="dataset path, e.g. scan1d/lod (see `qtlhpc inspect`), or a table: "
                        "scan2d/top_pairs (pairs with names, positions, LOD, p-value, effects), scan1d/peaks, cis/table, "
                        "cross-trans/pairs, cross-eqtl/cis")
    export.add_argument("-o", "--out", default="-", help="output TSV (default: standard output)")

    inspect = commands.add_parser("inspect", help="stages, provenance and datasets of a results file")
    inspect.add_argument("results", help="results HDF5 file")
    inspect.add_argument("--verify", action="store_true",
                         help="read every dataset and block and check it against its checksum; names each damaged "
                              "dataset and block (exit status 1 when one is)")

    report = commands.add_parser("report", help="PNG figures and an index.html from a results file")
    report.add_argument("results", help="results HDF5 file")
    report.add_argument("-o", "--output", required=True, help="report directory")
    report.add_argument("--top", type=int, default=20, help="rows of the top QTL and pair tables (report.top)")

    plan = commands.add_parser("plan", help="memory per rank and time per stage, and what to ask SLURM for")
    _add_config_arguments(plan)
    plan.add_argument("--ranks", type=int, help="ranks to plan for (slurm.plan_ranks)")
    plan.add_argument("--mem-per-cpu", help="memory per rank the site gives, e.g. 4G (slurm.plan_mem_per_cpu)")

    submit = commands.add_parser("submit", help="render the SLURM scripts of a job and sbatch them, chained")
    submit.add_argument("job", nargs="?", help="job definition: a name in jobs/ (e.g. pepis) or a TOML file")
    submit.add_argument("config", nargs="?", help="analysis config (TOML)")
    submit.add_argument("--site", help="site profile: a name in configs/site-NAME.toml or a TOML file")
    submit.add_argument("--run-dir", help="where scripts, logs and job records go (slurm.run_dir; relative to the "
                        "config file's folder)")
    submit.add_argument("--dry-run", action="store_true", help="print the scripts, submit nothing")
    submit.add_argument("--resume", metavar="RUN_DIR", help="resubmit only what is missing or failed in RUN_DIR")
    submit.add_argument("--fit", action="store_true",
                        help="shrink requests the partition cannot meet (ntasks, mem-per-cpu, time) to what fits")
    submit.add_argument("--from-plan", action="store_true",
                        help="ask for what `qtlhpc plan` suggests (ntasks, mem-per-cpu, time) for each planned stage")

    status = commands.add_parser("status", help="which stages and array tasks of a submitted run finished")
    status.add_argument("run_dir", help="run directory written by `qtlhpc submit`")

    truth = commands.add_parser("check-truth", help="were the planted QTL of a simulation found? (demo)")
    truth.add_argument("results", help="results HDF5 file")
    truth.add_argument("truth", help="the *_truth.json written by `qtlhpc simulate`")
    truth.add_argument("--window", type=float, default=10.0, help="cM around a planted locus that counts as found")

    commands.add_parser("config-help", help="every config section and key with its default and meaning")
    return parser


MPI_COMMANDS = ("info", "simulate", "genoprob", "run")


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `qtlhpc export ... | head` ends quietly
    debug = "--debug" in argv  # accepted before or after the subcommand
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(argv)
    from qtlhpc.parallel import SERIAL, world

    # only the commands that compute start MPI: a process that started MPI passes its rank identity on to
    # the programs it runs (sbatch would copy it into every job)
    comm = world() if args.command in MPI_COMMANDS else SERIAL
    try:
        return _dispatch(args, comm, argv)
    except (QtlhpcError, OSError, _unknown_dataset_error()) as error:
        message = None if debug else str(error) if isinstance(error, QtlhpcError) else _user_message(error, args)
        if message is None:
            _end_other_ranks(comm)
            raise
        _report_error(message, comm, collective=getattr(error, "collective", False))
        return 2
    except Exception:
        _end_other_ranks(comm)
        raise


def _end_other_ranks(comm) -> None:
    """An unexpected error on one of several ranks: show its traceback and end the job (the other ranks
    would otherwise wait for this one in their next collective call until the time limit)."""
    if comm.Get_size() > 1:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        comm.Abort(1)


def _report_error(message: str, comm, collective: bool) -> None:
    """Print ``qtlhpc: error: MESSAGE`` (one line); under several ranks, a non-collective error ends the job."""
    message = " ".join(message.split())
    if comm.Get_size() == 1 or (collective and comm.Get_rank() == 0):
        sys.stderr.write(f"qtlhpc: error: {message} (--debug shows the traceback)\n")
    elif not collective:
        sys.stderr.write(f"qtlhpc: error on rank {comm.Get_rank()}: {message}\n")
    sys.stderr.flush()
    if comm.Get_size() > 1 and not collective:
        comm.Abort(2)


def _unknown_dataset_error():
    from qtlhpc.schema import UnknownVariableError

    return UnknownVariableError


#: what to do, by errno, for OS errors about the user's files and disk
_OS_ERROR_ADVICE = {
    errno.ENOENT: "check the path; relative paths in a config are resolved against the config file's folder",
    errno.EACCES: "check the file's permissions (ls -l) or give a path you may read and write",
    errno.EPERM: "check the file's permissions (ls -l) or give a path you may read and write",
    errno.EISDIR: "give the path of a file, not of a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.ENOSPC: "free some space or write the results to another file system (run.output), then rerun: "
                  "completed stages and blocks are kept",
    errno.EDQUOT: "your disk quota is used up: free some space or write elsewhere (run.output), then rerun",
    errno.EROFS: "the file system is read-only: write the results elsewhere (run.output)",
}


def _user_message(error: BaseException, args) -> Optional[str]:
    """The one-line message for an error a user can cause (a file, the disk, a dataset name), or None for
    an internal error (then the traceback is shown)."""
    if isinstance(error, KeyError):  # schema.UnknownVariableError: its message already suggests a name
        return str(error)
    code = getattr(error, "errno", None)
    results = getattr(args, "results", None)
    filename = getattr(error, "filename", None) or (results if _is_h5py_error(error) else None)
    if code in _OS_ERROR_ADVICE:
        strerror = error.strerror or os.strerror(code)
        if filename:
            return f"{filename}: {strerror} ({_OS_ERROR_ADVICE[code]})"
        source = getattr(args, "config", None) or results
        writing = code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
        context = "" if not source else f" while writing the outputs of {source}" if writing else f" ({source})"
        return f"{strerror}{context} ({_OS_ERROR_ADVICE[code]})"
    if results is not None and _is_h5py_error(error):
        if not os.path.exists(results):
            return f"{results}: No such file or directory ({_OS_ERROR_ADVICE[errno.ENOENT]})"
        return (f"{results}: cannot be read as a qtlhpc results file ({_first_line(error)}); give the HDF5 file "
                f"written by `qtlhpc run` (run.output), or rerun the stages if it was cut short")
    return None


def _is_h5py_error(error: BaseException) -> bool:
    """h5py reports a file it cannot open (not HDF5, truncated, locked) as an OSError without errno."""
    text = str(error)
    return isinstance(error, OSError) and ("Unable to" in text or "file signature" in text or "HDF5" in text)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _export_tables():
    """Every method room's derived tables (``TABLES`` of ``qtlhpc/methods/<room>/tables.py``), by name."""
    import importlib

    from qtlhpc.stages import registry

    tables = {}
    for room in registry.rooms():
        try:
            module = importlib.import_module(f"{room}.tables") if room.startswith("qtlhpc.methods.") else None
        except ModuleNotFoundError as error:
            if error.name != f"{room}.tables":
                raise
            module = None
        tables.update(getattr(module, "TABLES", {}))
    return tables


def _write_table(results_path, build, handle) -> None:
    """Table ``build(results) -> (header, rows)`` of ``results_path`` as TSV with a header line."""
    from qtlhpc.store import open_results
    from qtlhpc.store.export import format_value

    with open_results(results_path) as results:
        header, rows = build(results)
    handle.write("\t".join(header) + "\n")
    for row in rows:
        handle.write("\t".join(format_value(value) for value in row) + "\n")


def _refuse_unknown_export(name: str, tables) -> None:
    """An InputError naming the tables and the nearest table or dataset when ``name`` is neither."""
    from qtlhpc import schema
    from qtlhpc.errors import InputError, did_you_mean
    from qtlhpc.stages import registry

    registry.load_schemas()
    datasets = [variable.path for variable in schema.variables()]
    if name not in datasets:
        raise InputError(f"{name!r} is neither a table nor a results dataset{did_you_mean(name, [*tables, *datasets])} "
                         f"(tables: {', '.join(sorted(tables))}; datasets: `qtlhpc inspect RESULTS`)")


def _dispatch(args, comm, argv) -> int:
    command_line = "qtlhpc " + " ".join(shlex.quote(a) for a in argv)
    if args.command == "info":
        from qtlhpc.backends import describe

        text = describe(comm)
        if comm.Get_rank() == 0:
            print(text)
        return 0
    if args.command == "config-help":
        from qtlhpc.config import describe_sections

        print(describe_sections())
        return 0
    if args.command == "export":
        from qtlhpc.store.export import export_tsv

        if comm.Get_rank() == 0:
            tables = _export_tables()
            if args.dataset in tables:
                if args.out == "-":
                    _write_table(args.results, tables[args.dataset], sys.stdout)
                else:
                    with open(args.out, "w") as handle:
                        _write_table(args.results, tables[args.dataset], handle)
            elif args.out == "-":
                _refuse_unknown_export(args.dataset, tables)
                export_tsv(args.results, args.dataset, sys.stdout)
            else:
                _refuse_unknown_export(args.dataset, tables)
                export_tsv(args.results, args.dataset, args.out)
        return 0
    if args.command == "inspect":
        from qtlhpc.store.export import inspect_text, verify_text

        if comm.Get_rank() == 0:
            print(inspect_text(args.results))
            if args.verify:
                text, intact = verify_text(args.results)
                print(text)
                return 0 if intact else 1
        return 0

    if args.command == "check-truth":
        from qtlhpc.genetics.drivers.simulate import compare_with_truth

        if comm.Get_rank() == 0:
            print("\n".join(compare_with_truth(args.results, args.truth, window_cM=args.window)))
        return 0
    if args.command == "report":
        from qtlhpc.report import write_report

        if comm.Get_rank() == 0:
            print(write_report(args.results, args.output, top=args.top))
        return 0
    if args.command in ("submit", "status"):
        from qtlhpc.cluster.slurm import status_command, submit_command

        if args.command == "status":
            print(status_command(args.run_dir))
            return 0
        if not args.resume and not (args.job and args.config):
            raise ConfigError("qtlhpc submit needs JOB and CONFIG (e.g. `qtlhpc submit pepis analysis.toml`), "
                              "or --resume RUN_DIR")
        print(submit_command(args.job, args.config, dry_run=args.dry_run, resume_dir=args.resume,
                             site=args.site, run_dir=args.run_dir, fit=args.fit, from_plan=args.from_plan))
        return 0

    config = _load_config(args)
    if args.command == "plan":
        if comm.Get_rank() == 0:
            slurm = config.section("slurm")
            print(_plan_text(config, args.ranks or slurm["plan_ranks"], args.mem_per_cpu or slurm["plan_mem_per_cpu"]))
        return 0
    from qtlhpc.stages.runtime import RunContext, setup_logging

    run_options = config.section("run")
    log = setup_logging(comm, run_options["log_level"], run_options["per_rank_logs"])
    from qtlhpc.backends import missing_note

    note = missing_note(comm.Get_size())
    if note and comm.Get_rank() == 0:
        log.warning(note)
    context = RunContext(config, comm, command_line=command_line, log=log)
    if args.command == "simulate":
        from qtlhpc.genetics.drivers.simulate import run_simulate

        run_simulate(context)
        return 0
    if args.command == "genoprob":
        args.stage = "genoprob"
    from qtlhpc.stages import run_stage

    extra = {}
    if getattr(args, "units", None) or getattr(args, "unit_output", None) or getattr(args, "inputs", None):
        _check_array_arguments(args)
        extra = {"units": args.units, "unit_output": args.unit_output, "inputs": args.inputs}
    run_stage(context, args.stage, **extra)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
