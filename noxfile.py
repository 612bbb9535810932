"""Developer tasks: ``nox`` runs tests, lint, typecheck and docs."""

from __future__ import annotations

import os
import sys

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True

# CI runs nox with the interpreter that runs nox itself: with CI set, nox
# fails on interpreters it cannot find, and the machines have one Python.
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


# Branch coverage the tests session must keep (the figures measured when
# the gate came in: the library 97 %, the command line 92 %, the benchmark
# 91 %; subprocesses included).  Each part is measured on its own, so that
# the well-covered library cannot hide the tools, nor they it.
COVERAGE_FLOORS = {
    "library": (97, ["--omit=trio_emtcp/_bench/*,trio_emtcp/_cli/*"]),
    "command line": (92, ["--include=trio_emtcp/_cli/*"]),
    "benchmark": (91, ["--include=trio_emtcp/_bench/*"]),
}


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest, pytest-trio) under ``-X dev``, with coverage.

    Arguments after ``--`` go to pytest; with any, the coverage gate is
    skipped (a partial run covers less).
    """
    session.install("-e", ".[tests]", "coverage>=7.10")
    session.run("coverage", "erase")
    session.run(
        "python",
        "-X",
        "dev",
        "-m",
        "coverage",
        "run",
        "-m",
        "pytest",
        *session.posargs,
        env={"PYTHONWARNINGS": "error"},
    )
    session.run("coverage", "combine", "--quiet")
    if session.posargs:
        return
    for part, (floor, selection) in COVERAGE_FLOORS.items():
        session.log(f"branch coverage of the {part}:")
        session.run("coverage", "report", f"--fail-under={floor}", *selection)


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """The long soak and stress variants (not part of the default run)."""
    session.install("-e", ".[tests]")
    session.run(
        "python",
        "-X",
        "dev",
        "-m",
        "pytest",
        "-m",
        "soak",
        *session.posargs,
        env={"PYTHONWARNINGS": "error"},
    )


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Every property test (hypothesis) with many more examples.

    ``nox -s fuzz`` runs 2,000 examples per property; ``nox -s fuzz --
    20000`` sets another count; further arguments go to pytest.  Prints
    hypothesis's statistics: how many examples each property ran.
    """
    count = session.posargs[0] if session.posargs else "2000"
    session.install("-e", ".[tests]")
    session.run(
        "python",
        "-X",
        "dev",
        "-m",
        "pytest",
        "-m",
        "hypothesis and not soak",
        "--hypothesis-show-statistics",
        *session.posargs[1:],
        env={"PYTHONWARNINGS": "error", "TRIO_EMTCP_FUZZ_EXAMPLES": count},
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and the examples."""
    session.install("-e", ".[tests]", "mypy", "nox", "typing_extensions")
    session.run("mypy")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the Sphinx docs; warnings are errors."""
    session.install("-e", ".[docs]")
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-n",
        "-b",
        "html",
        "docs",
        os.path.join("docs", "_build", "html"),
    )


@nox.session(python=PYTHON)
def memory(session: nox.Session) -> None:
    """The echo server's memory under 10,000 idle and 1,000 slowloris clients."""
    session.install("-e", ".")
    session.run("python", "-m", "trio_emtcp._bench._echo_memory", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Run the benchmark (``python -m trio_emtcp bench``), every contender."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "trio_emtcp", "bench", *session.posargs)
