"""The region: jurisdictions, real boundaries, adjacency, agreements, and the queries on them.

Use :func:`load_region` for the region shipped with the hub; it is loaded once per process.
"""

from hub.region.agreements import AgreementFileError, load_agreements
from hub.region.region import Region, UnknownAgreement, UnknownJurisdiction, load_region

__all__ = [
    "AgreementFileError",
    "Region",
    "UnknownAgreement",
    "UnknownJurisdiction",
    "load_agreements",
    "load_region",
]
