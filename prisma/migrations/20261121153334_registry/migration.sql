-- AlterTable
ALTER TABLE "servers" ADD COLUMN     "revision" INTEGER NOT NULL DEFAULT 1;

-- CreateTable
CREATE TABLE "server_versions" (
    "id" UUID NOT NULL,
    "server_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "record" JSONB NOT NULL,
    "status" TEXT NOT NULL,
    "is_latest" BOOLEAN NOT NULL,
    "published_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "server_versions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "server_discovery" (
    "server_id" UUID NOT NULL,
    "server_info" JSONB,
    "protocol_version" TEXT,
    "capabilities" JSONB,
    "instructions" TEXT,
    "synced_at" TIMESTAMPTZ(3),
    "last_error" TEXT,
    "last_error_at" TIMESTAMPTZ(3),

    CONSTRAINT "server_discovery_pkey" PRIMARY KEY ("server_id")
);

-- CreateTable
CREATE TABLE "server_items" (
    "server_id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "gateway_name" TEXT NOT NULL,
    "title" TEXT,
    "description" TEXT,
    "definition" JSONB NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "position" INTEGER NOT NULL,

    CONSTRAINT "server_items_pkey" PRIMARY KEY ("server_id","kind","name")
);

-- CreateTable
CREATE TABLE "server_item_changes" (
    "id" UUID NOT NULL,
    "server_id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "change" TEXT NOT NULL,
    "before_fingerprint" TEXT,
    "after_fingerprint" TEXT,
    "detected_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "server_item_changes_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "server_health" (
    "server_id" UUID NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'unknown',
    "consecutive_failures" INTEGER NOT NULL DEFAULT 0,
    "consecutive_successes" INTEGER NOT NULL DEFAULT 0,
    "last_checked_at" TIMESTAMPTZ(3),
    "last_success_at" TIMESTAMPTZ(3),
    "last_failure_at" TIMESTAMPTZ(3),
    "last_error" TEXT,
    "last_error_kind" TEXT,
    "recent_latencies" DOUBLE PRECISION[],
    "latency_p50_ms" DOUBLE PRECISION,
    "latency_p95_ms" DOUBLE PRECISION,
    "changed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "server_health_pkey" PRIMARY KEY ("server_id")
);

-- CreateTable
CREATE TABLE "server_health_transitions" (
    "id" UUID NOT NULL,
    "server_id" UUID NOT NULL,
    "from" TEXT NOT NULL,
    "to" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "server_health_transitions_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "server_versions_is_latest_updated_at_idx" ON "server_versions"("is_latest", "updated_at");

-- CreateIndex
CREATE INDEX "server_versions_server_id_idx" ON "server_versions"("server_id");

-- CreateIndex
CREATE UNIQUE INDEX "server_versions_name_version_key" ON "server_versions"("name", "version");

-- CreateIndex
CREATE INDEX "server_items_kind_gateway_name_idx" ON "server_items"("kind", "gateway_name");

-- CreateIndex
CREATE INDEX "server_item_changes_server_id_detected_at_idx" ON "server_item_changes"("server_id", "detected_at");

-- CreateIndex
CREATE INDEX "server_health_status_idx" ON "server_health"("status");

-- CreateIndex
CREATE INDEX "server_health_transitions_server_id_at_idx" ON "server_health_transitions"("server_id", "at");

-- CreateIndex
CREATE INDEX "servers_created_at_id_idx" ON "servers"("created_at", "id");

-- AddForeignKey
ALTER TABLE "server_discovery" ADD CONSTRAINT "server_discovery_server_id_fkey" FOREIGN KEY ("server_id") REFERENCES "servers"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "server_items" ADD CONSTRAINT "server_items_server_id_fkey" FOREIGN KEY ("server_id") REFERENCES "servers"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "server_item_changes" ADD CONSTRAINT "server_item_changes_server_id_fkey" FOREIGN KEY ("server_id") REFERENCES "servers"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "server_health" ADD CONSTRAINT "server_health_server_id_fkey" FOREIGN KEY ("server_id") REFERENCES "servers"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "server_health_transitions" ADD CONSTRAINT "server_health_transitions_server_id_fkey" FOREIGN KEY ("server_id") REFERENCES "servers"("id") ON DELETE CASCADE ON UPDATE CASCADE;
