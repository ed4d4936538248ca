#!/bin/sh
# The application's role (docker-compose.yml, DATABASE_URL): may log in, is neither a superuser
# nor BYPASSRLS, owns nothing; `manage.py migrate` (as the owner, POSTGRES_USER) grants it the
# rows of every table, as the row-level security policies allow (docs/tenancy.md).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v app_password="$POSTGRES_APP_PASSWORD" <<'SQL'
CREATE ROLE forest_app LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD :'app_password';
SQL
