"""nasbench describe: not available yet."""

from nasbench.errors import UserError

HELP = "describe (not available yet)"


def add_arguments(parser):
    pass


def run(args):
    raise UserError("'nasbench describe' is not available in this version yet")
