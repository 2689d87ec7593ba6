"""``python -m fireflow.cli``: the ``fireflow`` command."""

from fireflow.cli import entry

if __name__ == "__main__":  # pragma: no cover
    entry()
