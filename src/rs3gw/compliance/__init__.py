"""Compliance reports (SOC 2, HIPAA, GDPR) built from the gateway's real state.

``state`` reads the stores once, ``checks`` turns that snapshot into findings mapped to each
standard's controls, ``render`` writes the JSON document and the HTML page, ``cli`` is
``rs3gw compliance report``.
"""
