"""nasbench attack: not available yet."""

from nasbench.errors import UserError

HELP = "attack (not available yet)"


def add_arguments(parser):
    pass


def run(args):
    raise UserError("'nasbench attack' is not available in this version yet")
