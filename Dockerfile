# One image for web, worker and beat (see docker-compose.yml).
FROM --platform=linux/amd64 python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    LABELLOOP_DATA_DIR=/data LABELLOOP_STATIC_ROOT=/app/staticfiles
WORKDIR /app
# The runtime lock only: no test or benchmark package goes into the image. Its hashes put pip in
# hash-checking mode, so every file must match the lock. torch is locked as 2.13.0+cpu, the CPU
# build, which PyPI does not carry: the PyTorch CPU index serves it, and the lock's one hash for it
# is that index's linux x86_64 CPython 3.11 wheel (the same file the developers' machines install).
# So the image builds for linux/amd64; another platform's torch wheel would need its hash added.
COPY requirements.txt .
RUN pip install --no-cache-dir --require-hashes --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt
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
CMD ["gunicorn", "config.wsgi", "-c", "config/gunicorn.conf.py", "-b", "0.0.0.0:8000", "-w", "3", "--threads", "4"]
