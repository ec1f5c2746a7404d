"""The command lines' plumbing: their options (importable without numpy or pandas, so that
``--help`` answers at once), the options for reading a user's table that ``train.py`` and
``predict.py`` share, and :func:`commands.run.run_command`, which turns a problem the user
can fix into one message and an exit status."""
