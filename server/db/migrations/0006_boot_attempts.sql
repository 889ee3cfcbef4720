CREATE TABLE "boot_attempts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node_uuid" text NOT NULL,
	"token_hash" text NOT NULL,
	"address" text,
	"reason" text NOT NULL,
	"server_started" boolean DEFAULT false NOT NULL,
	"opened_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"last_used_at" timestamp with time zone,
	"closed_at" timestamp with time zone,
	"close_reason" text
);
--> statement-breakpoint
ALTER TABLE "events" ADD COLUMN "count" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "events" ADD COLUMN "last_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "credential_hash" text;--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "credential_issued_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "credential_attempt_id" bigint;--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "boot_expected_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "boot_expected_reason" text;--> statement-breakpoint
ALTER TABLE "boot_attempts" ADD CONSTRAINT "boot_attempts_node_uuid_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "boot_attempts_token_uq" ON "boot_attempts" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "boot_attempts_open_idx" ON "boot_attempts" USING btree ("node_uuid") WHERE closed_at is null;--> statement-breakpoint
CREATE INDEX "nodes_created_idx" ON "nodes" USING btree ("created_at");--> statement-breakpoint
-- Upgrade (added by hand): before this migration one per-boot token served stage-1 and the compute OS; a running
-- compute OS still holds it, so it becomes that boot's node credential (else every active node gets 403 and is
-- power-cycled by the fleet controller after the upgrade).
UPDATE "nodes" SET "credential_hash" = "boot_token_hash", "credential_issued_at" = "boot_token_issued_at" WHERE "boot_token_hash" IS NOT NULL;
