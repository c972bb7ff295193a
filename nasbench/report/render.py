"""The report as a self-contained HTML page (Jinja template, images embedded) or as
Markdown (images in a folder beside it), from the summary, its tables and its figures."""

from __future__ import annotations

import base64
from typing import Any

from nasbench.report.layout import SECTIONS, TEMPLATE
from nasbench.report.text import texts

__all__ = ["render_html", "render_markdown"]


def render_html(summary: dict, tables: dict, figures: dict[str, bytes]) -> str:
    """The report as one HTML page that opens anywhere without a network: the PNGs are inlined."""
    from importlib.resources import files

    import jinja2

    source = files("nasbench").joinpath("templates", TEMPLATE).read_text()
    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    images = {name: "data:image/png;base64," + base64.b64encode(data).decode() for name, data in figures.items()}
    colours = {m["label"]: m["colour"] for m in summary["models"]}
    return environment.from_string(source).render(
        s=summary, t=tables, x=texts(summary), images=images, sections=SECTIONS, colours=colours
    )


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(table: dict, bold_column: int | None = None) -> str:
    """A pipe table; numeric columns right-aligned, ``bold_column`` (the headline) in bold."""

    def row_cells(row):
        cells = row["cells"] if isinstance(row, dict) else row
        return [f"**{_md_cell(c)}**" if i == bold_column else _md_cell(c) for i, c in enumerate(cells)]

    headers = table["headers"]
    lines = [
        "| " + " | ".join(row_cells(headers)) + " |",
        "|" + "".join("---:|" if i in table["numeric"] else "---|" for i in range(len(headers))),
    ]
    lines += ["| " + " | ".join(row_cells(row)) + " |" for row in table["rows"]]
    return "\n".join(lines)


def _md_figure(key: str, alt: str, image_paths: dict[str, str], caption: str) -> list[str]:
    return [f"![{alt}]({image_paths[key]})", "", f"*{_md_cell(caption)}*", ""]


def _md_banners(s: dict, x: dict) -> list[str]:
    """The title, and the failed checks and collapsed trainings no reader may miss."""
    out = [
        f"# Robustness report: {s['experiment']}",
        "",
        f"Dataset **{s['dataset']}**, {len(s['models'])} model(s), generated {s['generated_at']}. "
        f"Headline number: {x['headline']}.",
        "",
    ]
    if s["failed_checks"]:
        out += [f"> **{x['banner']}**", ">"]
        out += [f"> - **{c['model']}: {c['name']}** – {c['detail']}" for c in s["failed_checks"]]
        out.append("")
    else:
        out += ["All applicable sanity checks passed (Carlini et al. 2019); see the checks below.", ""]
    if s.get("collapsed"):
        out += [f"> **{x['collapse_banner']}**", ">"]
        out += [f"> - **{c['model']}**: {c['reason']}" for c in s["collapsed"]]
        out.append("")
    return out


def _md_models(t: dict, x: dict) -> list[str]:
    """The threat model and the models table, a model's failed-checks cell in bold."""
    out = [f"## {SECTIONS['threat-model']}", ""]
    out += [f"- **{term}**: {text}" for term, text in x["threat_facts"]]
    out += ["", _md_table(t["eps"]), "", _md_table(t["attacks"]), ""]
    column = t["models"]["checks_column"]
    models = {
        **t["models"],
        "rows": [
            [f"**{c}**" if i == column and r["failed"] else c for i, c in enumerate(r["cells"])]
            for r in t["models"]["rows"]
        ],
    }
    return out + [
        f"## {SECTIONS['models']}",
        "",
        _md_table(models, bold_column=t["models"]["headline_column"]),
        "",
        x["captions"]["models"],
        "",
    ]


def _md_figures(s: dict, t: dict, captions: dict, image_paths: dict[str, str]) -> list[str]:
    """The curves, the Pareto front, the transfer matrix, the corruptions and the example grids."""
    out: list[str] = []
    for key in ("curves", "pareto", "transfer", "corruptions"):
        out += [f"## {SECTIONS[key]}", ""]
        out += (
            _md_figure(key, SECTIONS[key], image_paths, captions[key])
            if key in image_paths
            else [captions[f"{key}_missing"], ""]
        )
        if key in ("transfer", "corruptions") and t[key]:
            out += [_md_table(t[key]), ""]
    out += [f"## {SECTIONS['examples']}", "", captions["examples"], ""]
    for grid in s["grids"]:
        key = f"grid-{grid['model']}"
        out += [f"### {grid['model']}", ""] + _md_figure(
            key, f"adversarial examples of {grid['model']}", image_paths, captions[key]
        )
    if not s["grids"]:
        out += [captions["examples_missing"], ""]
    return out


def _md_checks_and_reproducibility(t: dict, x: dict) -> list[str]:
    """Every check's verdict (FAIL in bold), the per-attack details and how to make it all again."""
    checks = {
        **t["checks"],
        "rows": [
            [*r["cells"][:2], f"**{r['cells'][2]}**" if r["passed"] is False else r["cells"][2], *r["cells"][3:]]
            for r in t["checks"]["rows"]
        ],
    }
    captions = x["captions"]
    out = [f"## {SECTIONS['checks']}", "", captions["checks"], "", _md_table(checks), ""]
    out += [f"## {SECTIONS['details']}", "", _md_table(t["details"]), "", captions["details"], ""]
    out += [f"## {SECTIONS['reproducibility']}", ""]
    out += [f"- **{term}**: {text}" for term, text in x["repro_facts"]]
    out += ["", _md_table(t["versions"]), "", _md_table(t["runs"]), "", "Commands:", ""]
    for what, command in x["commands"]:
        out += [f"{what}:", "", f"```\n{command}\n```", ""]
    return out


def render_markdown(summary: dict, tables: dict, image_paths: dict[str, str]) -> str:
    """The report as Markdown; ``image_paths`` says where each figure's PNG is, relative to it."""
    x = texts(summary)
    out = _md_banners(summary, x)
    out += _md_models(tables, x)
    out += _md_figures(summary, tables, x["captions"], image_paths)
    out += _md_checks_and_reproducibility(tables, x)
    return "\n".join(out)
