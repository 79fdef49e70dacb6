"""Makes ``twistd ministry`` find MinistryOfPackages (loaded lazily)."""

from twisted.application.service import ServiceMaker

Ministry = ServiceMaker(
    "MinistryOfPackages",
    "ministry.tap",
    "A private Python package index.",
    "ministry",
)
