"""Console tables in an 80-column terminal (COLUMNS=80): nothing is cut short ("…"), no
line is wider than the terminal, and every name and number is there in full.

(`nasbench attack`'s tables are checked the same way in test_attack_checks.py.)
"""

from pathlib import Path

import pytest

from nasbench.cli import main
from nasbench.store import Benchmark

RECORDED = Path(__file__).parent / "fixtures" / "cell_digits.parquet"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The benchmark that ships with the tests: 496 NAS-Bench-201 cells x 5 seeds on digits."""
    path = tmp_path_factory.mktemp("bench") / "cell_digits.db"
    assert main(["bench", "import", "--db", str(path), str(RECORDED)]) == 0
    return path


def shown(capsys, argv: list[str]) -> str:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80, out
    return out


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


def test_bench_top_and_pareto_fit_80_columns_with_full_hashes_and_numbers(recorded, capsys):
    with Benchmark(recorded) as bench:
        top = bench.top(3, by="val_acc", dataset="digits")
    out = shown(capsys, ["bench", "top", "--db", str(recorded), "-k", "3", "--dataset", "digits"])
    lines = out.splitlines()
    for rank, row in enumerate(top, start=1):
        # the 64-character hash on one line with its rank; every number of the row beside its rank
        assert any(line.split()[:2] == [str(rank), row["arch_hash"]] for line in lines), out
        for value in (f"{row['val_acc']:.4f}", f"{row['test_acc']:.4f}", f"{row['params']:,}", f"{row['macs']:,}"):
            assert any(line.split()[:1] == [str(rank)] and value in line.split() for line in lines), (value, out)
    assert "(all dataset digits, " in out and "(continued)" in out

    out = shown(capsys, ["bench", "pareto", "--db", str(recorded), "val_acc:max", "params:min"])
    assert all(row["arch_hash"] in out for row in bench_pareto(recorded))


def bench_pareto(path):
    with Benchmark(path) as bench:
        return bench.pareto(["val_acc:max", "params:min"])


def test_bench_query_and_stats_fit_80_columns(recorded, capsys):
    with Benchmark(recorded) as bench:
        arch_hash = bench.top(1, by="val_acc")[0]["arch_hash"]
    out = shown(capsys, ["bench", "query", "--db", str(recorded), arch_hash])
    assert "per-epoch curves" in out and "train_loss" in out
    shown(capsys, ["bench", "stats", "--db", str(recorded)])


def test_describe_fits_80_columns_with_every_number_in_full(capsys):
    out = shown(capsys, ["describe", "--model", "googlenet", "--input", "3x32x32"])
    assert "1,337,141,248" in out and "5,490,986" in out  # MACs and parameters of the whole model
    assert "12,582,912" in out  # a layer's MACs, which the default table cut to "12,582,9…"
