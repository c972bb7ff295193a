"""The search's Optuna study: its journal file in the experiment folder, how it is opened
(created, or reopened on resume) and how far it has come."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasbench.errors import UserError
from nasbench.search_config import SearchConfig
from nasbench.strategies import make_sampler

if TYPE_CHECKING:  # Optuna is imported when a study is opened
    import optuna
    from optuna.storages import JournalStorage

STUDY_NAME = "search"


def repair_journal(path: Path) -> None:
    """Make a journal left by a killed process readable again.

    Optuna appends one JSON line per operation; a process killed mid-write can leave a
    partial last line, which a later append would glue to a valid one. Cut it off, and
    drop the lock a killed writer may have left.
    """
    lock = Path(f"{path}.lock")
    if lock.is_symlink() or lock.exists():
        lock.unlink()
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def first_unreadable_line(journal: Path) -> int | None:
    """The number of the journal's first line that is not JSON, or None."""
    if not journal.is_file():
        return None
    with open(journal, "rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                json.loads(line)
            except ValueError:
                return number
    return None


def optuna_storage(directory: Path) -> JournalStorage:
    """The study's storage: the experiment's ``optuna.journal``, repaired first if need be."""
    import optuna

    from nasbench.study_journal import DriverJournalFile

    path = directory / "optuna.journal"
    repair_journal(path)
    return optuna.storages.JournalStorage(DriverJournalFile(str(path)))


def study_progress(study: optuna.Study) -> dict[str, Any]:
    """Counts of a study's trials by how they ended (``complete``, ``pruned``, ``failed``,
    ``finished``: the three together, ``deduplicated``: answered from the store), and
    ``running``: the numbers of those left RUNNING."""
    from optuna.trial import TrialState

    complete = pruned = failed = deduplicated = 0
    running: list[int] = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.COMPLETE:
            complete += 1
            deduplicated += trial.user_attrs.get("status") == "deduplicated"
        elif trial.state == TrialState.PRUNED:
            pruned += 1
        elif trial.state == TrialState.FAIL:
            failed += 1
        else:  # RUNNING/WAITING: left by a driver that died; run again as the same trial
            running.append(trial.number)
    return {
        "complete": complete,
        "pruned": pruned,
        "failed": failed,
        "deduplicated": deduplicated,
        "running": running,
        "finished": complete + pruned + failed,
    }


def open_study(
    config: SearchConfig, directory: Path, modes: list[str], space: Any = None
) -> tuple[optuna.Study, JournalStorage]:
    """The search's Optuna study (created, or reopened on resume) and its storage."""
    import optuna

    sampler = make_sampler(config.sampler, config.seed, config.multi_objective, space=space, **config.sampler_options)
    try:
        storage = optuna_storage(directory)
        study = optuna.create_study(
            storage=storage,
            study_name=STUDY_NAME,
            sampler=sampler,
            load_if_exists=True,
            directions=["maximize" if m == "max" else "minimize" for m in modes],
        )
    except ValueError:  # json.JSONDecodeError is one: a damaged journal, or something else
        bad_line = first_unreadable_line(directory / "optuna.journal")
        if bad_line is None:
            raise
        raise UserError(
            f"experiment {directory.name}: line {bad_line} of {directory / 'optuna.journal'} is not "
            "JSON; keep a copy, and remove it to start the search over"
        ) from None
    return study, storage
