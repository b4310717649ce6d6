"""Assets catalogue, ingest, origin delivery and live interaction."""
