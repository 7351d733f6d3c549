"""Key discovery: who holds which table partitions, announced on a Kafka topic.

    processor = goka.Processor(brokers, graph, discovery=DiscoveryConfig(advertise="pod-0:50051"))

    with Membership(brokers) as membership:         # from anywhere, in any process
        membership.wait_synced(timeout=10)
        location = membership.locate("clicks-counter-table", "user-1")
        location.partition, location.owners[0].endpoint

The wire format is ``discovery.v1.Announcement`` (``proto/discovery/v1/discovery.proto``), so
clients in other languages can follow the topic too.
"""

from discovery.announcer import Announcer
from discovery.config import DiscoveryConfig
from discovery.membership import DEFAULT_TOPIC, Membership
from discovery.model import Location, MemberInfo, Owner, PartitionInfo, TableInfo
from discovery.placement import placement, standbys
from goka import __version__

__all__ = [
    "DEFAULT_TOPIC",
    "Announcer",
    "DiscoveryConfig",
    "Location",
    "MemberInfo",
    "Membership",
    "Owner",
    "PartitionInfo",
    "TableInfo",
    "__version__",
    "placement",
    "standbys",
]
