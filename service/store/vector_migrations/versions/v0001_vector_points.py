"""vector_points: chunk vectors in PostgreSQL + pgvector, with BM25 term counts kept by trigger

One row per point: the dense vector (HNSW, cosine), the BM25 document weights as a ``sparsevec`` and as
parallel ``terms``/``weights`` arrays (GIN on ``terms`` finds the rows sharing a query term), the payload as
``jsonb``, and the payload fields the matcher filters on as real, indexed columns.

BM25's inverse document frequency needs, per collection, how many points hold each term and how many hold
any: ``vector_term_counts`` and ``vector_collections``, kept by statement triggers on every insert, update and
delete, so IDF is current for every writer (each process, each replica), as Qdrant's ``Modifier.IDF`` is.

Revision ID: v0001
Revises:
Create Date: 2026-12-02 22:30:00
"""

from alembic import context, op

revision = 'v0001'
down_revision = None
branch_labels = ('vectors',)
depends_on = None

# payload fields stored as columns, with their SQL types (service.store.pgvector_store.COLUMNS says the same)
COLUMNS = {
    "asset_id": "text", "source": "text", "language": "text", "format": "text", "approval_status": "text",
    "product": "text", "scope": "text[]", "valid_until": "integer", "published": "integer", "version": "integer",
}

# What each event adds to the counts: +1 per new row, -1 per old one.
DELTAS = {
    "INSERT": "SELECT collection, terms, 1 AS d FROM new_rows",
    "UPDATE": "SELECT collection, terms, -1 AS d FROM old_rows UNION ALL SELECT collection, terms, 1 FROM new_rows",
    "DELETE": "SELECT collection, terms, -1 AS d FROM old_rows",
}
REFERENCING = {"INSERT": "NEW TABLE AS new_rows", "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
               "DELETE": "OLD TABLE AS old_rows"}

# Term rows first, in key order, then the collection row: concurrent writers take their locks in one order.
COUNT = """
CREATE FUNCTION vector_points_count_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO vector_term_counts AS c (collection, term, points)
    SELECT collection, term, sum(d) FROM ({delta}) delta, unnest(terms) AS term
    GROUP BY collection, term HAVING sum(d) <> 0 ORDER BY collection, term
    ON CONFLICT (collection, term) DO UPDATE SET points = c.points + EXCLUDED.points;
  INSERT INTO vector_collections AS c (collection, points, lexical_points)
    SELECT collection, sum(d), coalesce(sum(d) FILTER (WHERE cardinality(terms) > 0), 0) FROM ({delta}) delta
    GROUP BY collection ORDER BY collection
    ON CONFLICT (collection) DO UPDATE SET points = c.points + EXCLUDED.points,
                                           lexical_points = c.lexical_points + EXCLUDED.lexical_points;
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    dim = int(context.config.attributes["dim"])
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
    op.execute(f"""
        CREATE TABLE vector_points (
            collection text NOT NULL,
            id uuid NOT NULL,
            dense vector({dim}) NOT NULL,
            lexical sparsevec,
            terms integer[] NOT NULL DEFAULT '{{}}',
            weights real[] NOT NULL DEFAULT '{{}}',
            payload jsonb NOT NULL DEFAULT '{{}}',
            {columns},
            PRIMARY KEY (collection, id))""")
    op.execute("CREATE INDEX vector_points_dense ON vector_points USING hnsw (dense vector_cosine_ops)")
    op.execute("CREATE INDEX vector_points_terms ON vector_points USING gin (terms)")
    for name, kind in COLUMNS.items():
        using = "USING gin (scope)" if kind.endswith("[]") else f"(collection, {name})"
        op.execute(f"CREATE INDEX vector_points_{name} ON vector_points {using}")
    op.execute("CREATE TABLE vector_term_counts (collection text NOT NULL, term integer NOT NULL, "
               "points integer NOT NULL, PRIMARY KEY (collection, term))")
    op.execute("CREATE TABLE vector_collections (collection text PRIMARY KEY, "
               "points bigint NOT NULL DEFAULT 0, lexical_points bigint NOT NULL DEFAULT 0)")
    for event, delta in DELTAS.items():
        name = event.lower()
        op.execute(COUNT.format(event=name, delta=delta))
        # a transition table serves one event only, hence one trigger (and function) per event
        op.execute(f"CREATE TRIGGER vector_points_{name}_counts AFTER {event} ON vector_points "
                   f"REFERENCING {REFERENCING[event]} FOR EACH STATEMENT EXECUTE FUNCTION vector_points_count_{name}()")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS vector_points")
    for event in DELTAS:
        op.execute(f"DROP FUNCTION IF EXISTS vector_points_count_{event.lower()}()")
    op.execute("DROP TABLE IF EXISTS vector_term_counts")
    op.execute("DROP TABLE IF EXISTS vector_collections")
