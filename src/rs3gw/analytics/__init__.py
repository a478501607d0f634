"""Request analytics (time series per bucket, access frequency) and cost estimation.

``recorder`` is the request observer and its per-process persistence; ``report`` turns merged
series plus the storage report into the admin API's and the CLI's documents; ``routes`` serves them
under ``/_rs3gw/admin/analytics/...``.
"""
