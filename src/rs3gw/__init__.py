"""rs3gw: an S3-compatible object storage gateway for AI/HPC workloads."""

__version__ = "0.1.0"
