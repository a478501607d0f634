"""Tamper-evident audit log: hash-chained records, rotation, forwarding sinks, query and security events."""

from rs3gw.audit.query import Query
from rs3gw.audit.service import AuditService, audit_dir
from rs3gw.audit.settings import AuditSettings, parse_audit_table
from rs3gw.audit.verify import VerifyReport, verify_log

__all__ = [
    "AuditService",
    "AuditSettings",
    "Query",
    "VerifyReport",
    "audit_dir",
    "parse_audit_table",
    "verify_log",
]
