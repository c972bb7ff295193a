"""nasbench demo: not available yet."""

from nasbench.errors import UserError

HELP = "demo (not available yet)"


def add_arguments(parser):
    pass


def run(args):
    raise UserError("'nasbench demo' is not available in this version yet")
