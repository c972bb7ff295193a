"""`nasbench report`: every section present, every embedded image decodes, the JSON
summary holds the numbers shown, failures are prominent, Markdown works, bad input exits 2."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser

import pytest
from PIL import Image

from nasbench.cli import main
from nasbench.report import SECTIONS, build_report

ATTACKS = "fgsm,pgd:steps=5"
EPS = [0.0, 0.1, 0.2, 0.3]


class _Page(HTMLParser):
    """Section ids, image sources and table cells of a report."""

    def __init__(self):
        super().__init__()
        self.ids, self.images, self.cells, self.links = set(), [], [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag in ("link", "script") and (attrs.get("href") or attrs.get("src")):
            self.links.append(attrs.get("href") or attrs.get("src"))
        if tag == "td":
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell.strip())
            self._cell = None


@pytest.fixture(scope="module")
def experiment(digits, tmp_path_factory):
    """An experiment with two evaluated models (a transfer matrix), a store and MLflow runs."""
    from test_attack_cli import make_checkpoint

    from nasbench.checkpoint import load_checkpoint
    from nasbench.evaluation import evaluate_models, load_model
    from nasbench.store import Benchmark
    from nasbench.tracking import TrackingConfig, default_tracking_uri

    root = tmp_path_factory.mktemp("report")
    experiment_dir = root / "experiments" / "exp"
    experiment_dir.mkdir(parents=True)
    first, arch_hash, trained = make_checkpoint(root / "small", digits, filters=8, seed=0, epochs=3)
    second, _, _ = make_checkpoint(root / "wide", digits, filters=16, seed=1, epochs=2)
    arch = json.loads((first / "arch.json").read_text())
    with Benchmark(experiment_dir / "benchmark.db") as bench:  # the search's results: Pareto context
        bench.record({"arch_hash": arch_hash, "dataset": "digits", "budget": 3, "seed": 0, "space": "macro",
                      "arch": arch, "status": "ok", "val_acc": trained.val_acc, "params": 1500})
        for i in range(3):
            bench.record({"arch_hash": f"other{i}", "dataset": "digits", "budget": 3, "seed": 0, "space": "macro",
                          "arch": arch, "status": "ok", "val_acc": 0.7 + 0.1 * i, "params": 2000 * (i + 1)})
    models = {}
    for path in (first, second):
        model, info = load_model(str(path), digits, experiment_dir=experiment_dir)
        models[info.label] = (model, info)
    tracking = TrackingConfig(default_tracking_uri(experiment_dir), "exp")
    evaluations = evaluate_models(models, digits, ATTACKS, EPS, n=48, targeted=False, seed=0,
                                  out_dir=experiment_dir, tracking=tracking, command="nasbench attack (test)")
    assert load_checkpoint(first)[2]["arch_hash"] == arch_hash
    return experiment_dir, evaluations, tracking


def _decoded(src: str) -> Image.Image:
    assert src.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))
    image.load()  # decodes every pixel, not just the header
    return image


def test_html_report_has_every_section_decodable_images_and_matching_json(experiment, tmp_path):
    experiment_dir, evaluations, tracking = experiment
    result = build_report(experiment_dir, tmp_path / "report.html", tracking=tracking)
    text = result.path.read_text()
    page = _Page()
    page.feed(text)

    assert set(SECTIONS) <= page.ids
    assert not page.links and "http://" not in text and "https://" not in text  # self-contained
    images = [_decoded(src) for src in page.images]
    # curves, Pareto, transfer heatmap and one example grid per model
    assert len(images) == 3 + len(evaluations)
    assert all(image.width > 200 and image.height > 150 for image in images)

    summary = json.loads(result.json_path.read_text())
    assert result.json_path == tmp_path / "report.json"
    assert [m["label"] for m in summary["models"]] == sorted(e.label for e in evaluations)
    headline = summary["headline"]["eps"]
    assert headline in EPS[1:]
    for model in summary["models"]:
        evaluation = next(e for e in evaluations if e.label == model["label"])
        assert model["clean_acc"] == pytest.approx(evaluation.report.clean_accuracy)
        assert model["robust_acc"] == pytest.approx(evaluation.report.robust_accuracy(headline))
        assert model["params"] == evaluation.record["model"]["params"]
        # The table shows exactly these numbers.
        row_start = page.cells.index(model["label"])
        row = page.cells[row_start:row_start + 6 + len(EPS) + 1]
        assert f"{100 * model['clean_acc']:.1f}%" == row[5]
        for eps, cell in zip(EPS, row[6:]):
            assert cell == f"{100 * evaluation.report.robust_accuracy(eps):.1f}%"
        worst_curve = next(c for c in summary["curves"] if c["model"] == model["label"] and c["attack"] == "worst case")
        assert worst_curve["eps"] == EPS
    transfer = json.loads((experiment_dir / "evaluations" / "transfer.json").read_text())
    assert summary["transfer"]["robust_accuracy"] == transfer["robust_accuracy"]
    for source, row in transfer["robust_accuracy"].items():
        for value in row.values():
            assert f"{100 * value:.1f}%" in page.cells
    assert {c["name"] for c in summary["checks"]} >= {"monotone-in-eps", "reaches-chance",
                                                       "iterative-beats-single-step"}
    assert len(summary["pareto"]["store"]["rows"]) == 4
    assert summary["pareto"]["front"]  # someone is always on the front
    threat = summary["threat_model"]
    assert threat["eps"]["Linf"] == EPS and {a["name"] for a in threat["attacks"]} == {"fgsm", "pgd"}
    assert next(a for a in threat["attacks"] if a["name"] == "pgd")["steps"] == 5
    assert summary["reproducibility"]["runs"][0]["command"] == "nasbench attack (test)"
    assert "nasbench attack (test)" in text and summary["reproducibility"]["versions"]["torch"] in text

    # Logged to MLflow, tagged with the evaluation runs it covers.
    from mlflow import MlflowClient

    client = MlflowClient(tracking.tracking_uri)
    run = client.get_run(result.mlflow_run_id)
    assert set(run.data.tags["nasbench.covers_runs"].split(",")) == {e.mlflow_run_id for e in evaluations}
    assert {a.path for a in client.list_artifacts(run.info.run_id, "report")} == {"report/report.html",
                                                                                  "report/report.json"}


def test_failed_checks_are_shown_at_the_top(experiment, tmp_path):
    experiment_dir, evaluations, _ = experiment
    copy = tmp_path / "exp"
    shutil.copytree(experiment_dir / "evaluations", copy / "evaluations")
    path = copy / "evaluations" / evaluations[0].label / "evaluation.json"
    record = json.loads(path.read_text())
    check = next(c for c in record["report"]["checks"] if c["passed"] is not False)
    check.update(passed=False, detail="robust accuracy rises from 10% to 40%")
    path.write_text(json.dumps(record))
    already = sum(len(e.report.failed_checks) for e in evaluations)  # tiny models may fail some for real

    result = build_report(copy, tmp_path / "r.html")
    text = result.path.read_text()
    alert = text.index('class="alert"')
    assert alert < text.index('id="threat-model"')  # before everything else
    banner = text[alert:text.index('id="threat-model"')]
    assert f"{already + 1} sanity check(s) FAILED" in banner
    assert f"{evaluations[0].label}: {check['name']}" in banner and "rises from 10% to 40%" in banner
    assert len(re.findall(r'<td class="fail">FAIL</td>', text)) == already + 1
    assert result.failed_checks == already + 1


def test_markdown_report_with_images_beside(experiment, tmp_path):
    experiment_dir, evaluations, _ = experiment
    result = build_report(experiment_dir, tmp_path / "appendix.md", format="md", attacks=["pgd-5"])
    text = result.path.read_text()
    for title in SECTIONS.values():
        assert f"## {title}" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 3 + len(evaluations)
    for link in links:
        with Image.open(result.path.parent / link) as image:
            image.load()
    summary = json.loads(result.json_path.read_text())
    assert {d["attack"] for d in summary["details"]} == {"pgd-5"}  # the filter applies
    assert {c["attack"] for c in summary["curves"]} == {"pgd-5", "worst case"}


def test_report_cli_and_bad_input(experiment, tmp_path, capsys):
    experiment_dir, evaluations, _ = experiment
    root = str(experiment_dir.parent)
    out = tmp_path / "cli.html"
    assert main(["report", "--experiment", "exp", "--experiments-dir", root, "--out", str(out), "--no-tracking",
                 "--models", evaluations[0].label]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    assert [m["label"] for m in json.loads(out.with_suffix(".json").read_text())["models"]] == [evaluations[0].label]

    for argv, message in [
        (["--experiment", "missing"], "no experiment 'missing'"),
        (["--experiment", "exp", "--models", "nosuchmodel"], "no evaluation of model 'nosuchmodel'"),
        (["--experiment", "exp", "--attacks", "square"], "attack 'square' was not run"),
        (["--experiment", "exp", "--format", "pdf"], "invalid format"),
        (["--experiment", "exp", "--headline-eps", "0.15"], "not an eps every model was evaluated at"),
    ]:
        code = main(["report", "--experiments-dir", root, "--out", str(tmp_path / "x.html"), "--no-tracking", *argv])
        err = capsys.readouterr().err
        assert code == 2, argv
        assert message in err and len(err.strip().splitlines()) == 1

    empty = tmp_path / "experiments" / "empty"
    empty.mkdir(parents=True)
    assert main(["report", "--experiment", "empty", "--experiments-dir", str(empty.parent)]) == 2
    assert "has no evaluations" in capsys.readouterr().err
