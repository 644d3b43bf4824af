# One image for web, worker and beat (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    LABELLOOP_DATA_DIR=/data LABELLOOP_STATIC_ROOT=/app/staticfiles
WORKDIR /app
COPY requirements.txt .
# torch==2.13.0 is pinned; point pip at the CPU wheels so it does not pull a CUDA build.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt
# The processes run as an unprivileged user that owns only /data (a named volume mounted there
# starts with this ownership).
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin labelloop \
    && mkdir -p /data && chown labelloop:labelloop /data
COPY . .
RUN LABELLOOP_DATA_DIR=/tmp/build-data python manage.py collectstatic --noinput -v0 \
    && rm -rf /tmp/build-data
USER labelloop
VOLUME /data
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "-b", "0.0.0.0:8000", "-w", "3", "--threads", "4", "--timeout", "600"]
