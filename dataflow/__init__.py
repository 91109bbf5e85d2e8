"""The Bytewax dataflow: the only package that imports ``bytewax``.

``build_flow`` wires the read-stream source, the batch processor (decode, validate, match) and
the sink (dead letters, alerts, Parquet, offsets); ``run_flow`` runs it with Bytewax's process
and worker options.
"""

from dataflow._cluster import (
    BYTEWAX_ENV,
    ClusterConfig,
    check_partitions,
    cluster_addresses,
    resolve_cluster,
)
from dataflow._config import FlowConfig, HotlistConfig
from dataflow._errors import DataflowError
from dataflow._flow import FlowOptions, build_flow, make_holder, run_flow, tune_gc
from dataflow._hotlist_sources import HotlistSources
from dataflow._hotlists import IndexHolder
from dataflow._process import BatchProcessor
from dataflow._sink import BatchSink
from dataflow._source import RedisStreamSource

__all__ = [
    "BYTEWAX_ENV",
    "BatchProcessor",
    "BatchSink",
    "ClusterConfig",
    "DataflowError",
    "FlowConfig",
    "FlowOptions",
    "HotlistConfig",
    "HotlistSources",
    "IndexHolder",
    "RedisStreamSource",
    "build_flow",
    "check_partitions",
    "cluster_addresses",
    "make_holder",
    "resolve_cluster",
    "run_flow",
    "tune_gc",
]
