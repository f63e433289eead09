-- How many records of a stream the database refused and the audit writer set aside (src/audit/audit-trail.ts,
-- `store`): the records after each are linked onto the last one stored, so a stream's stored seq is its written seq
-- less the records set aside before it, and a later run replaying the stream's spooled records links them alike.
-- A constant default: adding it rewrites no row.

-- AlterTable
ALTER TABLE "audit_streams" ADD COLUMN     "set_aside" BIGINT NOT NULL DEFAULT 0;
