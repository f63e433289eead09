-- Whether a record's caller was an application (an app-only token: `app`) or a user (`user`), so that the audit
-- list can find an app caller by the name the rate limiter gives it (`<tid>:app:<clientId>`). Nullable, without a
-- default: adding it rewrites no row, and records written before it stay NULL (kind unknown), which is also what
-- their hashes were computed without (src/audit/audit-record.ts).

-- AlterTable
ALTER TABLE "audit_records" ADD COLUMN     "principal_kind" TEXT;
