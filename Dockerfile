# Minimal image: the esm package and its command. Config is mounted at /etc/esm/config.yaml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY esm ./esm
RUN pip install --no-cache-dir .
USER nobody
EXPOSE 9090
ENTRYPOINT ["esm", "run", "--config", "/etc/esm/config.yaml"]
