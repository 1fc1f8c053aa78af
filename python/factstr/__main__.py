"""``python -m factstr``: the ``factstr`` command (see ``factstr.cli``)."""

from factstr.cli import run

if __name__ == "__main__":
    run()
