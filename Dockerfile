# The goka-py image: the package and its runtime dependencies, nothing from the dev extra.
#
#   docker build -t goka-py:dev .
#   docker run --rm goka-py:dev serve-view --brokers kafka:9092 --table clicks-counter-table
#   docker run --rm --entrypoint python goka-py:dev -m examples.clickcount process --help
#
# The entry point is the `viewsvc` command. The examples are not part of the installed package;
# they are copied to /app (the working directory), so `python -m examples.clickcount` finds them
# (k8s/base runs the click-count processor that way).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Stage 1: install the package into a virtualenv (pip needs the sources and a build backend;
# the runtime image needs neither).
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY goka/ goka/
COPY discovery/ discovery/
COPY viewsvc/ viewsvc/
RUN pip install .

# Stage 2: the runtime image, run as an unprivileged user.
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# a fixed numeric uid/gid, so that Kubernetes' runAsNonRoot can verify it (k8s/base sets the same)
RUN groupadd --system --gid 10001 goka \
    && useradd --system --uid 10001 --gid goka --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin goka \
    && mkdir -p /data \
    && chown goka:goka /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY examples/ examples/
# compiled now, as root: the containers run with a read-only root filesystem
RUN python -m compileall -q examples
USER 10001:10001
# gRPC (TableService, DiscoveryService, health, reflection) and Prometheus /metrics
EXPOSE 50051 9090
ENTRYPOINT ["viewsvc"]
CMD ["--help"]
