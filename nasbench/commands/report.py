"""nasbench report: not available yet."""

from nasbench.errors import UserError

HELP = "report (not available yet)"


def add_arguments(parser):
    pass


def run(args):
    raise UserError("'nasbench report' is not available in this version yet")
