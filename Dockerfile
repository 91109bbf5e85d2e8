# plateflow: one image for every role (flow, API, ingest, the daily jobs); the k8s/ manifests
# choose the role by the command. Python 3.12 is the newest Bytewax 0.21.1 supports.
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY plateflow plateflow
COPY dataflow dataflow
COPY matchers matchers
COPY sinks sinks
COPY records records
COPY api api
RUN python -m venv /opt/plateflow \
    && /opt/plateflow/bin/pip install --upgrade pip \
    && /opt/plateflow/bin/pip install .

FROM python:3.12-slim
# A fixed non-root uid/gid: the manifests run as 10001 with a read-only root file system, so
# everything the program writes goes to mounted volumes (/data, /var/run/bytewax, /tmp).
RUN groupadd --system --gid 10001 plateflow \
    && useradd --system --uid 10001 --gid plateflow --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin plateflow
COPY --from=build /opt/plateflow /opt/plateflow
ENV PATH=/opt/plateflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PLATEFLOW_DATA_DIR=/data \
    BYTEWAX_DATAFLOW_API_CACHE_PATH=/var/run/bytewax
USER 10001:10001
WORKDIR /data
EXPOSE 8000 9999 3030
ENTRYPOINT ["plateflow"]
CMD ["--help"]
