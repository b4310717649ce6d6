"""Feeds, oEmbed, the embeddable player and the partner API."""
