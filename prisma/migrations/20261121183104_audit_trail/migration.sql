-- CreateTable
CREATE TABLE "audit_records" (
    "id" UUID NOT NULL,
    "stream_id" UUID NOT NULL,
    "seq" BIGINT NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL,
    "request_id" TEXT NOT NULL,
    "surface" TEXT NOT NULL,
    "ip" TEXT,
    "tenant_id" TEXT,
    "object_id" TEXT,
    "client_id" TEXT,
    "principal_name" TEXT,
    "session_id" TEXT,
    "server_id" UUID,
    "server_slug" TEXT,
    "method" TEXT NOT NULL,
    "rpc_id" TEXT,
    "target" TEXT,
    "arguments" TEXT,
    "decision" TEXT NOT NULL,
    "rule" TEXT,
    "outcome" TEXT NOT NULL,
    "latency_ms" DOUBLE PRECISION NOT NULL,
    "upstream_ms" DOUBLE PRECISION,
    "upstream_status" INTEGER,
    "error_kind" TEXT,
    "prev_hash" TEXT NOT NULL,
    "hash" TEXT NOT NULL,

    CONSTRAINT "audit_records_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_streams" (
    "id" UUID NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "host" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "last_seq" BIGINT NOT NULL,
    "last_hash" TEXT NOT NULL,
    "anchor_seq" BIGINT NOT NULL DEFAULT 0,
    "anchor_hash" TEXT,
    "removed_count" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "audit_streams_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "audit_records_at_id_idx" ON "audit_records"("at", "id");

-- CreateIndex
CREATE INDEX "audit_records_object_id_at_idx" ON "audit_records"("object_id", "at");

-- CreateIndex
CREATE INDEX "audit_records_server_slug_at_idx" ON "audit_records"("server_slug", "at");

-- CreateIndex
CREATE INDEX "audit_records_target_at_idx" ON "audit_records"("target", "at");

-- CreateIndex
CREATE INDEX "audit_records_decision_at_idx" ON "audit_records"("decision", "at");

-- CreateIndex
CREATE INDEX "audit_records_outcome_at_idx" ON "audit_records"("outcome", "at");

-- CreateIndex
CREATE UNIQUE INDEX "audit_records_stream_id_seq_key" ON "audit_records"("stream_id", "seq");
