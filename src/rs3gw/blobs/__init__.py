"""rs3gw package."""
