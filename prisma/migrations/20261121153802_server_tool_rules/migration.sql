-- AlterTable
ALTER TABLE "servers" ADD COLUMN     "tool_rules" JSONB NOT NULL DEFAULT '{}';
