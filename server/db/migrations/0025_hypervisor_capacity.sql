ALTER TABLE "nodes" ADD COLUMN "hypervisor" jsonb;--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "hypervisor_at" timestamp with time zone;