"""Query, rank, merge and publish the tabular benchmark that every search fills.

  nasbench bench stats  --db bench.db
  nasbench bench query  --db bench.db 3f9c2a... --dataset digits --epochs 10
  nasbench bench query  --db bench.db arch.json --reduce none
  nasbench bench top    --db bench.db -k 5 --by robust:pgd:Linf:0.1 --where budget=10
  nasbench bench pareto --db bench.db val_acc:max params:min --dataset digits
  nasbench bench export --db bench.db bench.parquet
  nasbench bench import --db merged.db site-a.parquet site-b.parquet

Metrics: train_acc, val_acc, test_acc, params, macs, latency_ms, train_seconds, a
robust accuracy robust:ATTACK:NORM:EPS, an accuracy under a common corruption
corruption:NAME:SEVERITY (NAME or mean, SEVERITY 1-5 or mean; corruption:fog:3) or the
mean corruption accuracy corruption_acc; append :max or :min to choose the direction.
Filters (--where, repeatable): COLUMN=VALUE (VALUE may be a comma list), COLUMN<=N,
>=, <, >, !=. Add --json for output a program can read. Options may also come from
a YAML file given after the action (``nasbench bench top --config top.yaml``): its keys
are the action's flags (``db``, ``by``, ``k``, ``where`` as a list, ...); typed flags
override it (a typed ``--where`` adds to the file's filters).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from nasbench.config import add_config_argument, read_json
from nasbench.errors import UserError

HELP = "query, rank, export and import the tabular benchmark of evaluated architectures"
CONFIG_AS_FLAGS = True  # --config FILE.yaml after the action: its keys are the action's flags

_WHERE = re.compile(r"^\s*([A-Za-z_]+)\s*(<=|>=|!=|=|<|>)\s*(.*?)\s*$")


# ------------------------------------------------------------------------ arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="bench_command", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    _add_query_arguments(_add_action(actions, "query", "what the benchmark knows about one architecture"))
    _add_top_arguments(_add_action(actions, "top", "the best runs (or seed-averaged architectures) by one metric"))
    _add_pareto_arguments(_add_action(actions, "pareto", "runs no other run beats on every objective at once"))
    _add_action(actions, "stats", "how many runs, architectures, datasets, budgets, seeds")
    export = _add_action(actions, "export", "write every run to a Parquet file to publish or merge")
    export.add_argument("output", type=Path, metavar="OUT.parquet")
    imported = _add_action(
        actions, "import", "merge runs from Parquet exports (rows already present are skipped)", creates=True
    )
    imported.add_argument("inputs", type=Path, nargs="+", metavar="IN.parquet")


def _add_action(
    actions: argparse._SubParsersAction, name: str, help_text: str, *, creates: bool = False
) -> argparse.ArgumentParser:
    """An action's parser with the options every action takes: --db, --json, --debug, --config."""
    sub = actions.add_parser(name, help=help_text, description=help_text)
    sub.add_argument(
        "--db",
        type=Path,
        required=True,
        metavar="BENCH.db",
        help="benchmark database" + (" (created if absent)" if creates else ""),
    )
    sub.add_argument("--json", action="store_true", help="print JSON instead of tables")
    sub.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of internal errors"
    )
    add_config_argument(sub)
    return sub


def _add_where_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--where", action="append", default=[], metavar="FILTER", help="COLUMN=VALUE, COLUMN<=N, ...; repeatable"
    )


def _add_query_arguments(query: argparse.ArgumentParser) -> None:
    query.add_argument(
        "arch", metavar="HASH|ARCH.json", help="architecture hash, or a JSON file holding the architecture"
    )
    query.add_argument("--dataset", help="only this dataset")
    query.add_argument("--epochs", type=int, help="only this training budget (epochs)")
    query.add_argument("--seed", type=int, help="only this seed (one run, no reduction)")
    query.add_argument(
        "--reduce",
        default="mean",
        choices=["mean", "median", "min", "max", "none"],
        help="how seeds are combined (default: mean; none lists every run)",
    )


def _add_top_arguments(top: argparse.ArgumentParser) -> None:
    top.add_argument("-k", "--k", type=int, default=10, help="how many (default: 10)")
    top.add_argument("--by", default="val_acc", help="metric[:max|:min] (default: val_acc)")
    top.add_argument("--dataset", help="only this dataset")
    _add_where_argument(top)
    top.add_argument(
        "--reduce",
        default="none",
        choices=["none", "mean", "min", "max"],
        help="combine each architecture's seeds before ranking (default: none)",
    )


def _add_pareto_arguments(pareto: argparse.ArgumentParser) -> None:
    pareto.add_argument(
        "objectives", nargs="+", metavar="METRIC:max|min", help="two or more objectives, e.g. val_acc:max params:min"
    )
    pareto.add_argument("--dataset", help="only this dataset")
    _add_where_argument(pareto)


def parse_where(filters: list[str]) -> dict[str, Any]:
    """``["budget=10", "params<=1e5", "space=macro,cell"]`` -> a ``where`` dict for the store."""
    where: dict[str, Any] = {}
    for text in filters:
        match = _WHERE.match(text)
        if match is None or not match.group(3):
            raise UserError(f"bad filter {text!r}: write COLUMN=VALUE or COLUMN<=NUMBER (operators: = != < <= > >=)")
        column, op, raw = match.groups()
        if column in where:
            raise UserError(f"column {column!r} is filtered twice; give one filter per column")
        if op == "=" and "," in raw:
            where[column] = [_value(part) for part in raw.split(",") if part.strip()]
        elif op == "=":
            where[column] = _value(raw)
        else:
            where[column] = (op, _value(raw))
    return where


def _value(text: str) -> int | float | str:
    text = text.strip()
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


# --------------------------------------------------------------------------- output


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _console():
    from nasbench.tables import stdout_console

    return stdout_console()  # the terminal's width (or $COLUMNS); piped, wide enough for hashes


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if key.endswith("acc") or key.endswith("_std") or key.startswith(("robust", "corruption")) or key == "accuracy":
            return f"{value:.4f}"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int) and key in ("params", "macs"):
        return f"{value:,}"
    return str(value)


def _rows_table(title: str, rows: list[dict], columns: list[str]):
    from nasbench.tables import compact_table

    table = compact_table(title)
    table.add_column("#", justify="right", no_wrap=True)
    for column in columns:
        numeric = column not in ("arch_hash", "dataset", "space", "status", "device")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=numeric, overflow="fold")
    for rank, row in enumerate(rows, start=1):
        table.add_row(str(rank), *(_fmt(column, row.get(column)) for column in columns))
    return table


# Columns that say what a run is (as opposed to what it measured).
DESCRIPTORS = ("dataset", "budget", "seed", "n_seeds", "space", "status", "device")


def _print_rows(console, title: str, rows: list[dict], columns: list[str]) -> None:
    """Ranked runs, a row each. Where that is wider than the console, the columns every row
    shares move into the title, and the rest continues in further tables (each row keeps
    its rank #), so that no hash or number is cut."""
    from nasbench.tables import natural_width, print_fitted

    if len(rows) > 1 and natural_width(console, _rows_table(title, rows, columns)) > console.width:
        shared = [c for c in columns if c in DESCRIPTORS and all(r.get(c) == rows[0].get(c) for r in rows)]
        if shared:
            title += " (all " + ", ".join(f"{c} {_fmt(c, rows[0].get(c))}" for c in shared) + ")"
            columns = [c for c in columns if c not in shared]
    print_fitted(console, lambda chosen: _rows_table(title, rows, chosen), columns)


def _show_record(console, record: dict, title: str) -> None:
    from rich.table import Table

    from nasbench.tables import compact_table, print_fitted

    console.print(f"[bold]{title}[/bold]", highlight=False)
    scalars = Table(show_header=False)
    scalars.add_column("field", style="bold")
    scalars.add_column("value", overflow="fold")
    for key, value in record.items():
        if key in ("curves", "robust", "provenance", "arch"):
            continue
        scalars.add_row(key, _fmt(key, value) if not isinstance(value, list) else ", ".join(map(str, value)))
    scalars.add_row("arch", json.dumps(record.get("arch"), sort_keys=True))
    console.print(scalars)
    curves = record.get("curves") or []
    if curves:
        names = sorted({name for entry in curves for name in entry if name != "epoch"})

        def curves_table(chosen):
            table = compact_table("per-epoch curves")
            for name in ["epoch", *chosen]:
                table.add_column(name, justify="right", no_wrap=True)
            for entry in curves:
                table.add_row(*(_fmt(name, entry.get(name)) for name in ["epoch", *chosen]))
            return table

        print_fitted(console, curves_table, names)
    from nasbench.store import CORRUPTION_NORM

    robust = [item for item in record.get("robust") or [] if item["norm"] != CORRUPTION_NORM]
    if robust:
        table = compact_table("robust accuracy")
        for name in ("attack", "norm", "eps", "accuracy"):
            table.add_column(name, justify="left" if name in ("attack", "norm") else "right")
        for item in robust:
            table.add_row(item["attack"], item["norm"], f"{item['eps']:g}", _fmt("accuracy", item["accuracy"]))
        console.print(table)
    _show_corruption(console, [item for item in record.get("robust") or [] if item["norm"] == CORRUPTION_NORM])


def _show_corruption(console, items: list[dict]) -> None:
    """Accuracy under common corruptions: a corruption per row, a severity per column, means last."""
    from rich.table import Table

    if not items:
        return
    accuracy = {(item["attack"], int(item["eps"])): item["accuracy"] for item in items}
    severities = sorted({severity for _, severity in accuracy if severity > 0})
    names = sorted({name for name, _ in accuracy if name != "mean"})
    table = Table(
        title="accuracy under common corruptions (query corruption:NAME:SEVERITY, corruption_acc)", title_justify="left"
    )
    table.add_column("corruption")
    for column in [*map(str, severities), "mean"]:
        table.add_column(column, justify="right")
    for name in [*names, "mean"]:
        table.add_row(name, *(_fmt("accuracy", accuracy.get((name, severity))) for severity in [*severities, 0]))
    console.print(table)


# ------------------------------------------------------------------------- actions


def _open(path: Path, *, create: bool = False):
    from nasbench.store import Benchmark

    return Benchmark(path, create=create)


def _arch_argument(text: str) -> str | dict:
    path = Path(text)
    if text.endswith(".json") or path.is_file():
        return read_json(path, "architecture file")
    return text


def _query(bench, args) -> int:
    arch = _arch_argument(args.arch)
    reduce = None if args.reduce == "none" else args.reduce
    answer = bench.query(arch, dataset=args.dataset, epochs=args.epochs, seed=args.seed, reduce=reduce)
    if not answer:
        name = arch if isinstance(arch, str) else args.arch
        narrowed = ", ".join(
            f"{key}={value}"
            for key, value in (("dataset", args.dataset), ("epochs", args.epochs), ("seed", args.seed))
            if value is not None
        )
        raise UserError(f"{args.db} has no runs of architecture {name}" + (f" with {narrowed}" if narrowed else ""))
    if args.json:
        _print_json(answer)
        return 0
    console = _console()
    for record in answer if isinstance(answer, list) else [answer]:
        if "reduce" in record:
            title = (
                f"{record['arch_hash']} on {record['dataset']}, {record['budget']} epochs: "
                f"{record['reduce']} of {record['n_seeds']} seed(s)"
            )
        else:
            title = f"{record['arch_hash']} on {record['dataset']}, {record['budget']} epochs, seed {record['seed']}"
        _show_record(console, record, title)
    return 0


def _top(bench, args) -> int:
    from nasbench.store import parse_objective

    reduce = None if args.reduce == "none" else args.reduce
    rows = bench.top(args.k, by=args.by, where=parse_where(args.where), dataset=args.dataset, reduce=reduce)
    if args.json:
        _print_json(rows)
        return 0
    metric, _ = parse_objective(args.by)
    columns = [
        "arch_hash",
        "dataset",
        "budget",
        "n_seeds" if reduce else "seed",
        "space",
        "val_acc",
        "test_acc",
        "params",
        "macs",
        "latency_ms",
    ]
    if metric not in columns:
        columns.append(metric)
    _print_rows(_console(), f"top {args.k} by {args.by}" + (f" ({reduce} over seeds)" if reduce else ""), rows, columns)
    if not rows:
        print("no finished runs match", file=sys.stderr)
    return 0


def _pareto(bench, args) -> int:
    from nasbench.store import parse_objective

    objectives = [part for text in args.objectives for part in text.split(",") if part.strip()]
    rows = bench.pareto(objectives, dataset=args.dataset, where=parse_where(args.where))
    if args.json:
        _print_json(rows)
        return 0
    names = [parse_objective(text)[0] for text in objectives]
    columns = ["arch_hash", "dataset", "budget", "seed", *names]
    _print_rows(_console(), f"Pareto front of {', '.join(objectives)}: {len(rows)} run(s)", rows, columns)
    return 0


def _stats(bench, args) -> int:
    from rich.table import Table

    stats = bench.stats()
    if args.json:
        _print_json(stats)
        return 0
    console = _console()
    summary = Table(title=f"benchmark {stats['path']}", title_justify="left", show_header=False)
    summary.add_column("field", style="bold")
    summary.add_column("value")
    for key in ("schema_version", "rows", "architectures", "robust_results", "robust_settings", "bytes"):
        summary.add_row(key, f"{stats[key]:,}")
    summary.add_row("by status", ", ".join(f"{k}: {v:,}" for k, v in stats["by_status"].items()))
    summary.add_row("by space", ", ".join(f"{k}: {v:,}" for k, v in stats["by_space"].items()) or "-")
    summary.add_row("budgets", ", ".join(map(str, stats["budgets"])) or "-")
    summary.add_row("seeds", ", ".join(map(str, stats["seeds"])) or "-")
    console.print(summary)
    if stats["by_dataset"]:
        table = Table(title="by dataset", title_justify="left")
        for name in ("dataset", "rows", "ok", "architectures", "best_val_acc"):
            table.add_column(name, justify="left" if name == "dataset" else "right")
        for dataset, counts in stats["by_dataset"].items():
            table.add_row(
                dataset, *(_fmt(name, counts[name]) for name in ("rows", "ok", "architectures", "best_val_acc"))
            )
        console.print(table)
    return 0


def _export(bench, args) -> int:
    written = bench.export_parquet(args.output)
    if args.json:
        _print_json({"output": str(args.output), "rows": written})
    else:
        print(f"exported {written:,} run(s) to {args.output}")
    return 0


def _import(bench, args) -> int:
    report = []
    for source in args.inputs:
        added = bench.import_parquet(source)
        report.append({"input": str(source), "added": added})
        if not args.json:
            print(f"imported {added:,} new run(s) from {source}")
    if args.json:
        _print_json({"db": str(args.db), "imports": report, "rows": len(bench)})
    else:
        print(f"{args.db} now holds {len(bench):,} run(s)")
    return 0


_ACTIONS = {"query": _query, "top": _top, "pareto": _pareto, "stats": _stats, "export": _export, "import": _import}


def run(args: argparse.Namespace) -> int:
    bench = _open(args.db, create=args.bench_command == "import")
    try:
        return _ACTIONS[args.bench_command](bench, args)
    finally:
        bench.close()
