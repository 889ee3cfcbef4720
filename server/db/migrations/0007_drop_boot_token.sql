ALTER TABLE "nodes" DROP COLUMN "boot_token_hash";--> statement-breakpoint
ALTER TABLE "nodes" DROP COLUMN "boot_token_issued_at";