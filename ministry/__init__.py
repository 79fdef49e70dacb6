"""MinistryOfPackages: a private Python package index in one Twisted daemon."""

__version__ = "0.1.0"
