"""Media facts, ladder planning, ffmpeg commands, CMAF packaging and images. Imports no other domain."""
