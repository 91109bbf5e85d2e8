"""Command modules run through argparse the way ``plateflow`` runs them, for the CLI tests."""

from __future__ import annotations

import argparse
from types import ModuleType

from plateflow.cli import add_settings, command_parsers


def parser_of(*modules: ModuleType) -> argparse.ArgumentParser:
    """A ``plateflow`` parser with only the commands of ``modules``, each taking the flag of
    every setting (unlike :func:`plateflow.cli.build_parser`), so that one list of setting
    flags suits every command a test runs."""
    parser = argparse.ArgumentParser(prog="plateflow")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in modules:
        module.register(sub)
    for _, command in command_parsers(parser):
        add_settings(command)
    return parser
