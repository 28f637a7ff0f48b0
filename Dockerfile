# The sentimon worker image (base install: no PyTorch; model bundles ship in models/).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sentimon ./sentimon
COPY infra ./infra
COPY streams ./streams
COPY inference ./inference
COPY alerts ./alerts
COPY compression ./compression
COPY models ./models
RUN pip install -e . && useradd --system --home /var/lib/sentimon sentimon \
    && mkdir -p /var/lib/sentimon && chown sentimon /var/lib/sentimon
USER sentimon
EXPOSE 9108
CMD ["sentimon", "worker"]
