# One image for api, worker, scheduler and the migration step (see docker-compose.yml).
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN python -m venv /opt/venv
COPY pyproject.toml constraints.txt README.md ./
COPY core core
COPY api api
COPY workers workers
COPY sandbox sandbox
COPY migrations migrations
RUN /opt/venv/bin/pip install -c constraints.txt .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOST=0.0.0.0
RUN useradd --system --uid 10001 kopilka
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY alembic.ini ./
COPY migrations migrations
USER kopilka
EXPOSE 8000
CMD ["python", "-m", "api"]
