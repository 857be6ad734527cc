# One image for every Airflow service and the emulator, built from the pinned requirements.txt.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow \
    PROJECT_HOME=/opt/project

RUN pip install --no-cache-dir uv==0.13.8
COPY requirements.txt /tmp/requirements.txt
RUN uv pip install --system --no-cache -r /tmp/requirements.txt

WORKDIR /opt/project
COPY pyproject.toml ./
COPY plugins ./plugins
COPY include ./include
COPY dags ./dags
RUN uv pip install --system --no-cache --no-deps -e . \
    && useradd --uid 50000 --gid 0 --create-home airflow \
    && mkdir -p /opt/airflow && chown -R 50000:0 /opt/airflow /opt/project
USER 50000
