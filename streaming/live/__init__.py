"""Live channels: RTMP/SRT ingest, the channel lifecycle, recordings. Public: the channel reader for the origin."""

from streaming.live.channels import Channel, get_channel, live_prefix

__all__ = ["Channel", "get_channel", "live_prefix"]
