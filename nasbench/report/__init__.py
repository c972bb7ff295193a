"""Robustness reports: one self-contained HTML (or Markdown) file per experiment, plus JSON.

The report reads the evaluation bundles ``nasbench attack`` wrote under
``<experiment_dir>/evaluations/`` (see :mod:`nasbench.evaluation_record`), the transfer matrix
next to them, and, when present, the search's tabular benchmark
``<experiment_dir>/benchmark.db`` for the Pareto context. It shows, in order:

1. the sanity checks that failed, at the top where nobody can miss them;
2. the threat model: norms, eps values, every attack with all its parameters, the
   number of examples, targeted or not (Carlini et al. 2019, "On Evaluating
   Adversarial Robustness", section 3: a robustness number means nothing without it);
3. the models (found architectures and classic baselines) with parameters, MACs,
   latency, clean accuracy and the per-example worst-case robust accuracy;
4. robust accuracy against eps, per attack, one colour per model;
5. the Pareto front of clean accuracy, robust accuracy and size;
6. the transferability heatmap (Papernot et al. 2016);
   then, when the evaluations measured them, accuracy under common corruptions
   (Hendrycks & Dietterich 2019): a corruption x severity heatmap per model, the mean
   corruption accuracy and the mCE against the evaluation's baseline model;
7. adversarial example grids; 8. every check's verdict; 9. reproducibility.

Plots are matplotlib (Agg) PNGs, base64-embedded in the HTML so the file opens anywhere
without a network; ``format="md"`` writes the same report as Markdown with the PNGs
in a folder beside it. Every number shown is also in the JSON summary.

:func:`build_report` runs the steps: :mod:`~nasbench.report.summary` gathers the numbers,
:mod:`~nasbench.report.tables` and :mod:`~nasbench.report.text` put them into cells and
words, :mod:`~nasbench.report.plots` draws the figures, :mod:`~nasbench.report.render`
writes HTML or Markdown, and :mod:`~nasbench.report.build` the files and the MLflow run.
"""

from nasbench.report.build import ReportResult, build_report
from nasbench.report.layout import SECTIONS
from nasbench.report.summary import collect_summary

__all__ = ["SECTIONS", "ReportResult", "build_report", "collect_summary"]
