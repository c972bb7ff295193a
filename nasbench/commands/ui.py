"""nasbench ui: not available yet."""

from nasbench.errors import UserError

HELP = "ui (not available yet)"


def add_arguments(parser):
    pass


def run(args):
    raise UserError("'nasbench ui' is not available in this version yet")
