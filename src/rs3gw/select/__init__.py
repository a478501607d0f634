"""S3 Select: SQL over CSV, JSON and Parquet objects, answered as an AWS event stream (no HTTP here)."""
