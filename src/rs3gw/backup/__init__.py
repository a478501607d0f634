"""Bucket backups over the S3 API: content-addressed snapshots, point-in-time restore, verify, retention.

Everything here talks to a gateway through its S3 endpoint (never its data directory), so a backup can
be taken from, and restored into, any rs3gw and, where the API allows, any S3 server.
"""
