ALTER TABLE "fleet_control" ADD COLUMN "leader_epoch" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "fleet_control" ADD COLUMN "epoch_holder" text;--> statement-breakpoint
ALTER TABLE "fleet_control" ADD COLUMN "epoch_at" timestamp with time zone;