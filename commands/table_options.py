"""The options ``train.py`` and ``predict.py`` share for reading a user's table."""

from __future__ import annotations

from pathlib import Path


def add_table_arguments(parser) -> None:
    """The options ``train.py`` and ``predict.py`` share for reading a user's table."""
    g = parser.add_argument_group(
        "your table's shape (see 'Your own data' in the README)")
    g.add_argument("--table", type=Path, metavar="DESC.yaml",
                   help="table description: patient, lesion and label columns, label values, "
                        "renamed contract columns, extra features, ignored columns")
    g.add_argument("--patient-column", metavar="NAME",
                   help="column identifying the patient (overrides the description; default "
                        "patient_id)")
    g.add_argument("--label-column", metavar="NAME",
                   help="label column (overrides the description; default pseudoprogression)")
    g.add_argument("--positive", metavar="VALUE",
                   help="label value of the positive class, e.g. yes (overrides the "
                        "description; default 1); other values must be given as "
                        "label.negative in a description unless they read 0/no/false")
    g.add_argument("--sep", metavar="S",
                   help="CSV separator (',', ';' or 'tab'; default: detected)")
    g.add_argument("--decimal", metavar="D",
                   help="decimal mark ('.' or ','; default: detected)")
    g.add_argument("--sheet", metavar="NAME",
                   help="the sheet of an .xlsx workbook to read: its name, or its position "
                        "from 0 (default: the first, with a warning when there are others)")
