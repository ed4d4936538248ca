# Image for docker-compose.yml (web, worker, beat, migrate). No Docker engine runs on the
# development machines: this file is validated by `make lint` (compose config), not built there.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# collectstatic reads settings only; placeholder values let it run without any server.
RUN DATABASE_URL=postgresql://build/build REDIS_URL=redis://build:6379/0 SECRET_KEY=build-only \
    python manage.py collectstatic --noinput
# var/imports: IMPORT_DIR; a new named volume mounted there starts with its owner (forest).
RUN useradd --create-home forest && mkdir -p /app/var/imports && chown -R forest /app
USER forest
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "project.asgi:application"]
