"""HbbTV red-button applications: registry, documents, AIT."""
