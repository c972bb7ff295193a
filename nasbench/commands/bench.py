"""nasbench bench: not available yet."""

from nasbench.errors import UserError

HELP = "bench (not available yet)"


def add_arguments(parser):
    pass


def run(args):
    raise UserError("'nasbench bench' is not available in this version yet")
