"""`nasbench report`: every section present, every embedded image decodes, the JSON
summary holds the numbers shown, failures are prominent, Markdown works, bad input exits 2."""

from __future__ import annotations

import base64
import io
import json
import re
import shlex
import shutil
from html.parser import HTMLParser
from xml.etree import ElementTree

import cssselect2
import pytest
import tinycss2
from PIL import Image
from tinycss2.color3 import parse_color

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
    from test_attack_cli import make_checkpoint, record_search_row

    from nasbench.checkpoint import load_checkpoint
    from nasbench.evaluation import evaluate_models
    from nasbench.model_loading import load_model
    from nasbench.store import Benchmark
    from nasbench.tracking import TrackingConfig, default_tracking_uri

    root = tmp_path_factory.mktemp("report")
    experiment_dir = root / "experiments" / "exp"
    experiment_dir.mkdir(parents=True)
    first, arch_hash, trained = make_checkpoint(root / "small", digits, filters=8, seed=0, epochs=3)
    second, _, _ = make_checkpoint(root / "wide", digits, filters=16, seed=1, epochs=2)
    # the search's results: Pareto context
    arch = record_search_row(experiment_dir / "benchmark.db", first, arch_hash, trained, params=1500)
    with Benchmark(experiment_dir / "benchmark.db") as bench:
        for i in range(3):
            bench.record(
                {
                    "arch_hash": f"other{i}",
                    "dataset": "digits",
                    "budget": 3,
                    "seed": 0,
                    "space": "macro",
                    "arch": arch,
                    "status": "ok",
                    "val_acc": 0.7 + 0.1 * i,
                    "params": 2000 * (i + 1),
                }
            )
    models = {}
    for path in (first, second):
        model, info = load_model(str(path), digits, experiment_dir=experiment_dir)
        models[info.label] = (model, info)
    tracking = TrackingConfig(default_tracking_uri(experiment_dir), "exp")
    evaluations = evaluate_models(
        models,
        digits,
        ATTACKS,
        EPS,
        n=48,
        targeted=False,
        seed=0,
        out_dir=experiment_dir,
        tracking=tracking,
        command="nasbench attack (test)",
    )
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
        row = page.cells[row_start : row_start + 7 + len(EPS) + 1]
        assert row[2] == (f"⚠ {model['failed_checks']} FAILED" if model["failed_checks"] else "none failed")
        assert f"{100 * model['clean_acc']:.1f}%" == row[6]
        for eps, cell in zip(EPS, row[7:], strict=False):
            assert cell == f"{100 * evaluation.report.robust_accuracy(eps):.1f}%"
        worst_curve = next(c for c in summary["curves"] if c["model"] == model["label"] and c["attack"] == "worst case")
        assert worst_curve["eps"] == EPS
    transfer = json.loads((experiment_dir / "evaluations" / "transfer.json").read_text())
    assert summary["transfer"]["robust_accuracy"] == transfer["robust_accuracy"]
    for _source, row in transfer["robust_accuracy"].items():
        for value in row.values():
            assert f"{100 * value:.1f}%" in page.cells
    assert {c["name"] for c in summary["checks"]} >= {
        "monotone-in-eps",
        "reaches-chance",
        "iterative-beats-single-step",
    }
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
    assert {a.path for a in client.list_artifacts(run.info.run_id, "report")} == {
        "report/report.html",
        "report/report.json",
    }


def _copy_experiment(experiment_dir, to, edit=None):
    """A copy of the experiment's evaluations; ``edit(record)`` may change each evaluation.json."""
    shutil.copytree(experiment_dir / "evaluations", to / "evaluations")
    for path in sorted((to / "evaluations").glob("*/evaluation.json")):
        record = json.loads(path.read_text())
        if edit is not None:
            edit(record)
        path.write_text(json.dumps(record))
    return to


@pytest.fixture(scope="module")
def failing(experiment, tmp_path_factory):
    """The experiment with one more check of the first model set to FAIL, and its HTML report."""
    experiment_dir, evaluations, _ = experiment
    root = tmp_path_factory.mktemp("failing")
    changed = {}

    def fail_one_check(record):
        if record["model"]["label"] == evaluations[0].label:
            check = next(c for c in record["report"]["checks"] if c["passed"] is not False)
            check.update(passed=False, detail="robust accuracy rises from 10% to 40%")
            changed.update(check)

    copy = _copy_experiment(experiment_dir, root / "exp", fail_one_check)
    return build_report(copy, root / "r.html"), changed


def test_failed_checks_are_shown_at_the_top(experiment, failing):
    _, evaluations, _ = experiment
    result, check = failing
    already = sum(len(e.report.failed_checks) for e in evaluations)  # tiny models may fail some for real
    text = result.path.read_text()
    alert = text.index('class="alert"')
    assert alert < text.index('id="threat-model"')  # before everything else
    banner = text[alert : text.index('id="threat-model"')]
    assert f"{already + 1} sanity check(s) FAILED" in banner
    assert f"{evaluations[0].label}: {check['name']}" in banner and "rises from 10% to 40%" in banner
    assert len(re.findall(r'<td class="fail">FAIL</td>', text)) == already + 1
    assert result.failed_checks == already + 1
    # The models table marks the model too, not only the checks table.
    failed = len(evaluations[0].report.failed_checks) + 1
    assert re.search(rf'<td class="checks fail">⚠ {failed} FAILED</td>', text)
    summary = json.loads(result.json_path.read_text())
    assert next(m for m in summary["models"] if m["label"] == evaluations[0].label)["failed_checks"] == failed


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
    argv = [
        "report",
        "--experiment",
        "exp",
        "--experiments-dir",
        root,
        "--out",
        str(out),
        "--no-tracking",
        "--models",
        evaluations[0].label,
    ]
    assert main(argv) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    summary = json.loads(out.with_suffix(".json").read_text())
    assert [m["label"] for m in summary["models"]] == [evaluations[0].label]
    assert summary["reproducibility"]["report"]["command"] == shlex.join(["nasbench", *argv])  # as typed

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


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "is not readable JSON"),
        ('["a", "list"]', "not a JSON object"),
        ('{"model": {"label": "x"}, "report": {}}', "no report 'clean_accuracy'"),
        ('{"name": "someone else\'s file"}', "no 'report'"),
    ],
)
def test_a_malformed_or_foreign_evaluation_is_one_line_naming_it(experiment, tmp_path, capsys, content, reason):
    experiment_dir, _, _ = experiment
    copy = _copy_experiment(experiment_dir, tmp_path / "experiments" / "exp")
    foreign = copy / "evaluations" / "foreign" / "evaluation.json"
    foreign.parent.mkdir()
    foreign.write_text(content)
    code = main(["report", "--experiment", "exp", "--experiments-dir", str(copy.parent), "--no-tracking"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(foreign) in err and reason in err and len(err.strip().splitlines()) == 1


def test_an_evaluation_record_reads_back_what_was_written(experiment):
    from nasbench.evaluation_record import EvaluationRecord

    _, evaluations, _ = experiment
    for evaluation in evaluations:
        written = json.loads(evaluation.json_path.read_text())
        assert EvaluationRecord.from_dict(written).to_dict() == written


# ----------------------------------------------------------------------------- what a reader checks


class _ElementTreeBuilder(HTMLParser):
    """The report's HTML as an ElementTree, which cssselect2 matches selectors against."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.builder = ElementTree.TreeBuilder()
        self.builder.start("document", {})

    def handle_starttag(self, tag, attrs):
        self.builder.start(tag, {name: value or "" for name, value in attrs})
        if tag in self.VOID:
            self.builder.end(tag)

    def handle_endtag(self, tag):
        if tag not in self.VOID:
            self.builder.end(tag)

    def handle_data(self, data):
        self.builder.data(data)

    def tree(self, text: str):
        self.feed(text)
        self.builder.end("document")
        return self.builder.close()


def _cascaded(page_html: str, selector: str) -> list[dict[str, str]]:
    """The declarations the page's own stylesheet gives each element ``selector`` picks,
    resolved by the CSS cascade (specificity, then order), as a browser would."""
    found = re.search(r"<style>(.*?)</style>", page_html, re.S)
    assert found is not None, "the page has no stylesheet"
    style = found.group(1)
    matcher = cssselect2.Matcher()
    for order, rule in enumerate(tinycss2.parse_stylesheet(style, skip_whitespace=True, skip_comments=True)):
        if rule.type != "qualified-rule":
            continue
        declarations = {
            d.lower_name: tinycss2.serialize(d.value).strip()
            for d in tinycss2.parse_declaration_list(rule.content, True, True)
            if d.type == "declaration"
        }
        for compiled in cssselect2.compile_selector_list(rule.prelude):
            matcher.add_selector(compiled, (order, declarations))
    root = cssselect2.ElementWrapper.from_xml_root(_ElementTreeBuilder().tree(page_html))
    result = []
    for element in root.query_all(selector):
        values = {}
        for _specificity, _order, _, (_, declarations) in sorted(matcher.match(element)):
            values.update(declarations)  # later (more specific, then later in the sheet) wins
        result.append(values)
    return result


def _contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS colours."""

    def luminance(colour):
        parsed = parse_color(colour)
        linear = [
            c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (parsed.red, parsed.green, parsed.blue)
        ]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_fail_verdicts_are_readable(failing):
    """Every FAIL cell, in the checks table and in the models table, is white on red: a failed
    row's pale background must not win the cascade over the verdict's own colours."""
    result, _ = failing
    page = result.path.read_text()
    cells = _cascaded(page, "td.fail")
    marked = sum(1 for m in json.loads(result.json_path.read_text())["models"] if m["failed_checks"])
    assert len(cells) == result.failed_checks + marked  # the checks table's cells and the models' marks
    for values in cells:
        background = values.get("background-color") or values["background"]
        assert _contrast(values["color"], background) >= 4.5, values  # WCAG AA for body text
    assert {v.get("white-space") for v in _cascaded(page, "pre")} == {"pre-wrap"}  # commands wrap


def test_reproducibility_names_the_report_command_the_transfer_and_a_dirty_tree(experiment, tmp_path, monkeypatch):
    import subprocess

    from nasbench.provenance import collect_provenance

    experiment_dir, evaluations, _ = experiment
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=n", "-c", "user.email=n@example.org", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "code.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "code.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    (repo / "code.py").write_text("x = 2\n")  # an edit not committed
    monkeypatch.chdir(repo)
    commit = collect_provenance()["git_commit"]
    assert re.fullmatch(r"[0-9a-f]{40} \(uncommitted changes\)", commit)

    headline = json.loads((experiment_dir / "evaluations" / "transfer.json").read_text())["eps"]
    result = build_report(experiment_dir, tmp_path / "r.html", attacks=["pgd-5"], headline_eps=headline)
    text, summary = result.path.read_text(), json.loads(result.json_path.read_text())
    report = summary["reproducibility"]["report"]
    assert report["git_commit"] == commit and commit in text
    # From Python, the equivalent CLI call, with the filters and the headline eps.
    assert report["command"].startswith(f"nasbench report --experiment {experiment_dir.name} ")
    assert "--attacks pgd-5" in report["command"] and f"--headline-eps {headline}" in report["command"]
    assert report["command"] in text and str(repo) in text  # where its relative paths start
    assert "attacks: pgd-5" in text and "given with --headline-eps" in text
    transfer_command = summary["reproducibility"]["transfer_command"]
    assert transfer_command and transfer_command in text
    assert "white-space: pre-wrap" in text


def test_markdown_says_what_the_html_says(experiment, tmp_path):
    from html import unescape

    from nasbench.report import text

    experiment_dir, _, _ = experiment
    html = build_report(experiment_dir, tmp_path / "r.html")
    md = build_report(experiment_dir, tmp_path / "r.md", format="md")
    summary = json.loads(html.json_path.read_text())
    html_text, md_text = unescape(html.path.read_text()), md.path.read_text()
    captions = text.captions(summary)
    for key in ("curves", "pareto", "transfer", *(f"grid-{g['model']}" for g in summary["grids"])):
        assert captions[key] in html_text and captions[key] in md_text, key
    # The headline column is marked, numbers right-aligned.
    headline = f"worst case @ {summary['headline']['eps']:g} (headline)"
    assert headline in html_text and f"**{headline}**" in md_text
    models_header = next(line for line in md_text.splitlines() if line.startswith("| model | kind |"))
    separator = md_text.splitlines()[md_text.splitlines().index(models_header) + 1]
    assert separator == "|---|---|---|" + "---:|" * (4 + len(EPS)) + "---|"
    for model in summary["models"]:
        robust = f"**{100 * model['robust_acc']:.1f}%**"
        row = next(line for line in md_text.splitlines() if line.startswith(f"| {model['label']} | "))
        assert robust in row


def test_one_order_one_colour_and_plain_words(experiment, tmp_path):
    experiment_dir, evaluations, _ = experiment
    full = json.loads(build_report(experiment_dir, tmp_path / "all.html").json_path.read_text())
    labels = [m["label"] for m in full["models"]]
    # The transfer matrix follows the models table, whatever order the models were attacked in.
    assert full["transfer"]["sources"] == full["transfer"]["targets"] == labels
    # A model keeps its colour when the report shows it alone.
    last = labels[-1]
    alone = json.loads(build_report(experiment_dir, tmp_path / "one.html", models=[last]).json_path.read_text())
    assert alone["models"][0]["colour"] == full["models"][-1]["colour"] != full["models"][0]["colour"]
    text = (tmp_path / "all.html").read_text()
    # Each grid names the attacks that made its examples.
    for grid in full["grids"]:
        record = next(e for e in evaluations if e.label == grid["model"]).record
        made_by = {a for e in record["report"]["examples"] for a in e["attacks"]}
        assert grid["attacks"] and set(grid["attacks"]) <= made_by
        assert all(attack in text for attack in grid["attacks"])
    assert "eps (pixel scale 0–1)" in text
    assert '<th class="num">points broken (so far)</th>' in text and ">broken<" not in text


def test_norms_list_every_attack_that_ran(experiment, tmp_path):
    """An unbounded L2 attack (DeepFool) has no worst-case curve but is part of the threat model."""
    from nasbench.report import collect_summary

    experiment_dir, _, _ = experiment
    deepfool = {"name": "deepfool", "norm": "L2", "eps": None, "steps": 50, "restarts": 1, "targeted": False}
    copy = _copy_experiment(
        experiment_dir, tmp_path / "exp", lambda record: record["report"]["threat_model"]["attacks"].append(deepfool)
    )
    assert collect_summary(copy)["threat_model"]["norms"] == ["Linf", "L2"]


def test_an_out_that_cannot_be_written_is_a_user_error(experiment, tmp_path, capsys):
    experiment_dir, _, _ = experiment
    blocker = tmp_path / "afile"
    blocker.write_text("a file where the report's folder should be")
    code = main(
        [
            "report",
            "--experiment",
            "exp",
            "--experiments-dir",
            str(experiment_dir.parent),
            "--no-tracking",
            "--out",
            str(blocker / "report.html"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "cannot write the report to" in err and "internal error" not in err
