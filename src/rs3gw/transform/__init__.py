"""Server-side transformations and Object Lambda-style steps applied to objects as they are read."""

from rs3gw.transform.cache import Result, ResultCache
from rs3gw.transform.service import Plan, TransformService
from rs3gw.transform.settings import TransformSettings, parse_transforms_table
from rs3gw.transform.spec import Step, parse_spec
from rs3gw.transform.text import luhn_valid, redact_text

PARAM = "x-rs3gw-transform"  # the GetObject query parameter carrying a chain

__all__ = [
    "PARAM",
    "Plan",
    "Result",
    "ResultCache",
    "Step",
    "TransformService",
    "TransformSettings",
    "luhn_valid",
    "parse_spec",
    "parse_transforms_table",
    "redact_text",
]
