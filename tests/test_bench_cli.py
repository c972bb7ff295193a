"""`nasbench bench ...`: tables, --json, Parquet export/import, and one-line errors (exit 2)."""

import json

import pytest

from nasbench.cli import main
from nasbench.commands.bench import parse_where
from nasbench.errors import UserError
from nasbench.store import Benchmark

A, B, C = "a1" * 8, "b2" * 8, "c3" * 8


def row(arch_hash, seed=0, val_acc=0.9, params=1000, **overrides):
    """A finished run; pass metric overrides (e.g. val_acc=None) for failed ones."""
    base = {
        "arch_hash": arch_hash,
        "dataset": "digits",
        "budget": 5,
        "seed": seed,
        "space": "macro",
        "arch": {"layers": [{"filters": 8}]},
        "status": "ok",
        "reason": None,
        "curves": [{"epoch": 1, "val_acc": val_acc - 0.1}, {"epoch": 2, "val_acc": val_acc}],
        "train_acc": val_acc,
        "val_acc": val_acc,
        "test_acc": val_acc - 0.02,
        "params": params,
        "macs": params * 40,
        "latency_ms": 0.25,
        "device": "cpu",
        "train_seconds": 2.0,
        "mlflow_run_id": None,
        "robust": [{"attack": "pgd", "norm": "Linf", "eps": 0.1, "accuracy": round(1 - val_acc, 4)}],
        "provenance": {"torch": "2.13.0"},
    }
    return {**base, **overrides}


def failed(arch_hash, seed):
    return {
        **row(arch_hash, seed),
        "status": "failed",
        "reason": "diverged",
        "val_acc": None,
        "train_acc": None,
        "test_acc": None,
        "curves": [],
        "robust": [],
    }


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "bench.db"
    with Benchmark(path) as bench:
        bench.record(row(A, seed=0, val_acc=0.90, params=12_345))
        bench.record(row(A, seed=1, val_acc=0.80, params=12_345))
        bench.record(row(B, val_acc=0.95, params=90_000))
        bench.record(row(C, val_acc=0.70, params=2_000))
        bench.record(failed(C, seed=1))
    return path


def run_json(capsys, *argv):
    assert main(["bench", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def fail(capsys, *argv) -> str:
    """Run a command that must fail as bad input: exit 2 and exactly one line on stderr."""
    assert main(["bench", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasbench bench: error: "), captured.err
    return lines[0]


def test_stats_json_and_table(db, capsys):
    stats = run_json(capsys, "stats", "--db", str(db))
    assert stats["rows"] == 5 and stats["architectures"] == 3
    assert stats["by_status"] == {"ok": 4, "failed": 1, "pruned": 0}
    assert main(["bench", "stats", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "by dataset" in out and "digits" in out and "0.9500" in out and "failed: 1" in out


def test_top_json_table_filters_and_reduce(db, capsys):
    top = run_json(capsys, "top", "--db", str(db), "-k", "2")
    assert [(r["arch_hash"], r["seed"], r["val_acc"]) for r in top] == [(B, 0, 0.95), (A, 0, 0.90)]
    small = run_json(capsys, "top", "--db", str(db), "--where", "params<=20000", "--where", "seed=0")
    assert [r["arch_hash"] for r in small] == [A, C]
    means = run_json(capsys, "top", "--db", str(db), "--reduce", "mean")
    assert [(r["arch_hash"], round(r["val_acc"], 6), r["n_seeds"]) for r in means] == [
        (B, 0.95, 1),
        (A, 0.85, 2),
        (C, 0.7, 1),
    ]
    robust = run_json(capsys, "top", "--db", str(db), "-k", "1", "--by", "robust:pgd:Linf:0.1")
    assert robust[0]["arch_hash"] == C and robust[0]["robust:pgd:Linf:0.1"] == 0.3

    assert main(["bench", "top", "--db", str(db), "--by", "params", "-k", "4"]) == 0
    out = capsys.readouterr().out
    assert "top 4 by params" in out and A in out and "12,345" in out and "90,000" in out
    assert out.index(C) < out.index(A) < out.index(B)  # fewest parameters first


def test_pareto(db, capsys):
    front = run_json(capsys, "pareto", "--db", str(db), "val_acc:max", "params:min")
    # A seed 1 (0.80, 12,345) is beaten by A seed 0 (0.90, 12,345).
    assert [(r["arch_hash"], r["seed"]) for r in front] == [(B, 0), (A, 0), (C, 0)]
    comma = run_json(capsys, "pareto", "--db", str(db), "val_acc:max,params:min", "--where", "params>5000")
    assert [r["arch_hash"] for r in comma] == [B, A]
    assert main(["bench", "pareto", "--db", str(db), "val_acc", "latency_ms"]) == 0
    assert "Pareto front of val_acc, latency_ms: 1 run(s)" in capsys.readouterr().out


def test_query_by_hash(db, capsys, tmp_path):
    mean = run_json(capsys, "query", "--db", str(db), A, "--dataset", "digits", "--epochs", "5")
    assert mean["n_seeds"] == 2 and mean["val_acc"] == pytest.approx(0.85)
    assert [c["val_acc"] for c in mean["curves"]] == pytest.approx([0.75, 0.85])
    runs = run_json(capsys, "query", "--db", str(db), C, "--reduce", "none")
    assert [(r["seed"], r["status"], r["reason"]) for r in runs] == [(0, "ok", None), (1, "failed", "diverged")]
    one = run_json(capsys, "query", "--db", str(db), A, "--seed", "1", "--dataset", "digits", "--epochs", "5")
    assert one["val_acc"] == 0.80

    assert main(["bench", "query", "--db", str(db), A, "--dataset", "digits", "--epochs", "5"]) == 0
    out = capsys.readouterr().out
    assert "mean of 2 seed(s)" in out and "per-epoch curves" in out and "robust accuracy" in out
    assert "0.8500" in out and "pgd" in out

    line = fail(capsys, "query", "--db", str(db), "ffff", "--dataset", "digits")
    assert "has no runs of architecture ffff with dataset=digits" in line
    (tmp_path / "arch.json").write_text("{not json")
    assert "is not valid JSON" in fail(capsys, "query", "--db", str(db), str(tmp_path / "arch.json"))


def test_export_then_import_twice_adds_nothing_twice(db, capsys, tmp_path):
    out = tmp_path / "bench.parquet"
    assert run_json(capsys, "export", "--db", str(db), str(out)) == {"output": str(out), "rows": 5}
    merged = tmp_path / "merged.db"
    assert main(["bench", "import", "--db", str(merged), str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"imported 5 new run(s) from {out}", f"{merged} now holds 5 run(s)"]
    again = run_json(capsys, "import", "--db", str(merged), str(out), str(out))
    assert [item["added"] for item in again["imports"]] == [0, 0] and again["rows"] == 5
    assert run_json(capsys, "top", "--db", str(merged), "-k", "1")[0]["arch_hash"] == B


def test_bad_input_is_one_line_and_exit_2(db, capsys, tmp_path):
    assert "no benchmark database at" in fail(capsys, "stats", "--db", str(tmp_path / "absent.db"))
    assert not (tmp_path / "absent.db").exists()

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    assert "is not a SQLite database" in fail(capsys, "import", "--db", str(notes), str(tmp_path / "x.parquet"))
    assert notes.read_text() == "my notes\n"

    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    assert "corrupt.db" in fail(capsys, "top", "--db", str(corrupt))
    assert "is a directory" in fail(capsys, "stats", "--db", str(tmp_path))

    assert "unknown column 'colour'" in fail(capsys, "top", "--db", str(db), "--where", "colour=red")
    assert "unknown metric 'accuracy'" in fail(capsys, "top", "--db", str(db), "--by", "accuracy")
    assert "bad filter 'params'" in fail(capsys, "top", "--db", str(db), "--where", "params")
    assert "at least two objectives" in fail(capsys, "pareto", "--db", str(db), "val_acc")
    assert "no Parquet file" in fail(capsys, "import", "--db", str(db), str(tmp_path / "absent.parquet"))
    assert "directory" in fail(capsys, "export", "--db", str(db), str(tmp_path / "no" / "out.parquet"))
    # Nothing recorded was lost along the way.
    assert run_json(capsys, "stats", "--db", str(db))["rows"] == 5


def test_missing_db_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "top"])
    assert exit_info.value.code == 2
    assert "--db" in capsys.readouterr().err


def test_parse_where():
    assert parse_where(["budget=10", "params<=1e5", "space=macro,cell", "device != cpu"]) == {
        "budget": 10,
        "params": ("<=", 100000.0),
        "space": ["macro", "cell"],
        "device": ("!=", "cpu"),
    }
    with pytest.raises(UserError, match="filtered twice"):
        parse_where(["seed=1", "seed=2"])


def test_actions_take_a_yaml_config_and_typed_flags_override_it(db, tmp_path, capsys):
    config = tmp_path / "top.yaml"
    config.write_text(f"db: {db}\nk: 2\nby: params:min\nwhere: [budget=5, params>=2000]\njson: true\n")
    assert main(["bench", "top", "--config", str(config)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["arch_hash"], r["params"]) for r in rows] == [(C, 2_000), (A, 12_345)]
    assert main(["bench", "top", "--config", str(config), "-k", "1", "--by", "val_acc"]) == 0
    assert [r["arch_hash"] for r in json.loads(capsys.readouterr().out)] == [B]


def test_a_bad_action_config_is_one_line_and_exit_2(db, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(f"db: {db}\nbogus: 1\n")
    assert main(["bench", "stats", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"nasbench: error: unknown option 'bogus' in {config}"]
