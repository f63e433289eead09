-- Trigram indexes serve case-insensitive substring search (ILIKE '%q%'). pg_trgm ships with PostgreSQL's contrib
-- (PGlite loads it: src/database/database.ts). Creating an extension needs a role allowed to (PostgreSQL 13+:
-- a database owner may create trusted extensions such as pg_trgm).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- AlterTable
ALTER TABLE "server_discovery" ADD COLUMN     "changed_at" TIMESTAMPTZ(3);

-- CreateIndex
-- Edited by hand: byte order ("C") for gateway_name and name, the collation discovery search orders by (an index
-- serves only an ORDER BY of its own collation). Prisma's schema cannot say so; its diff does not compare index
-- collations, so the schema and this index stay in agreement for it.
CREATE INDEX "server_items_search_order_idx" ON "server_items"("kind", "gateway_name" COLLATE "C", "server_id", "name" COLLATE "C");

-- CreateIndex
CREATE INDEX "server_items_name_trgm_idx" ON "server_items" USING GIN ("name" gin_trgm_ops);

-- CreateIndex
CREATE INDEX "server_items_title_trgm_idx" ON "server_items" USING GIN ("title" gin_trgm_ops);

-- CreateIndex
CREATE INDEX "server_items_description_trgm_idx" ON "server_items" USING GIN ("description" gin_trgm_ops);

-- CreateIndex
CREATE INDEX "servers_name_trgm_idx" ON "servers" USING GIN ("name" gin_trgm_ops);

-- CreateIndex
CREATE INDEX "servers_title_trgm_idx" ON "servers" USING GIN ("title" gin_trgm_ops);

-- CreateIndex
CREATE INDEX "servers_description_trgm_idx" ON "servers" USING GIN ("description" gin_trgm_ops);
