"""Runs predictors on held-out splits, scores them and records where every number came from."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vsbench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
