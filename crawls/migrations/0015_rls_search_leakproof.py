"""Bid search (`q`) and the `extra` filter keep their indexes under row-level security.

A qual that is not wholly LEAKPROOF is evaluated after the policy's, so no index can serve it:
under RLS, `q` (the full-text and trigram indexes over the search document) and `extra @>` (its
GIN index) became filters over every bid of the workspace. Two causes:

- the document's COALESCE: PostgreSQL counts a COALESCE as leaky whatever it holds. It never
  applied (`extra` is NOT NULL, and jsonb_path_query_array of a non-NULL value is never NULL),
  so the document is rebuilt without it (crawls.bid_search.SearchDocument renders the same
  expression): both indexes are built anew CONCURRENTLY under a new name, the old one dropped
  CONCURRENTLY, the new one renamed; searches use the old index until the new one is ready;
- the functions the quals call: marked LEAKPROOF here when a superuser migrates (0013 marked
  texticlike and arraycontains). docs/tenancy.md, "LEAKPROOF functions", says what each one's
  errors could reveal and why that is accepted.
"""

from django.db import migrations

from project.rls_policies import leakproof

OLD = (
    "(title || ' ' || department::text || ' ' || reference::text || ' ' || COALESCE("
    "jsonb_path_query_array(extra, 'strict $.** ? (@.type() == \"string\")'::jsonpath)::text, ''))"
)
NEW = (
    "(title || ' ' || department::text || ' ' || reference::text || ' ' || "
    "jsonb_path_query_array(extra, 'strict $.** ? (@.type() == \"string\")'::jsonpath)::text)"
)
INDEXES = {
    "bid_search_fts": "gin (to_tsvector('simple'::regconfig, {document}))",
    "bid_search_trgm": "gin ({document} gin_trgm_ops)",
}
LEAKPROOF = [
    "textcat(text, text)",
    "jsonb_path_query_array(jsonb, jsonpath, jsonb, boolean)",
    "jsonb_in(cstring)",
    "jsonb_out(jsonb)",
    "textin(cstring)",
    "textout(text)",
    "to_tsvector(regconfig, text)",
    "ts_match_vq(tsvector, tsquery)",
    "jsonb_contains(jsonb, jsonb)",
]


def rebuild(name, using):
    """Build `name` anew on the NEW document without blocking writes: under a new name, then
    swap (backwards: the same with the OLD one)."""
    create = "CREATE INDEX CONCURRENTLY {} ON crawls_bid USING {}"
    return [
        migrations.RunSQL(
            create.format(f"{name}_new", using.format(document=NEW)),
            f"DROP INDEX CONCURRENTLY IF EXISTS {name}_new",
        ),
        migrations.RunSQL(
            f"DROP INDEX CONCURRENTLY {name}",
            create.format(name, using.format(document=OLD)),
        ),
        migrations.RunSQL(
            f"ALTER INDEX {name}_new RENAME TO {name}",
            f"ALTER INDEX {name} RENAME TO {name}_new",
        ),
    ]


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY
    dependencies = [("crawls", "0014_import_lease")]

    operations = [
        *(operation for name, using in INDEXES.items() for operation in rebuild(name, using)),
        migrations.RunSQL(leakproof(LEAKPROOF, "LEAKPROOF"), leakproof(LEAKPROOF, "NOT LEAKPROOF")),
    ]
