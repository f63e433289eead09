-- GET /audit?principal=<tid>:app:<clientId> filters on client_id (with tenant_id and principal_kind), newest first:
-- no index served it, and for an app with few records PostgreSQL read the whole table (182 ms on 300,000 rows, 0.2 ms
-- with this index). Building it holds inserts into audit_records for as long as it takes on a large table; the audit
-- writer spools what it cannot insert meanwhile and replays it after.

-- CreateIndex
CREATE INDEX "audit_records_client_id_at_idx" ON "audit_records"("client_id", "at");
