"""nasbench train: not available yet."""

from nasbench.errors import UserError

HELP = "train (not available yet)"


def add_arguments(parser):
    pass


def run(args):
    raise UserError("'nasbench train' is not available in this version yet")
