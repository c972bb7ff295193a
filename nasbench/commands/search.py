"""nasbench search: not available yet."""

from nasbench.errors import UserError

HELP = "search (not available yet)"


def add_arguments(parser):
    pass


def run(args):
    raise UserError("'nasbench search' is not available in this version yet")
