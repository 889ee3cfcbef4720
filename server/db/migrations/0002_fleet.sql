CREATE TABLE "fleet_rebuilds" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node_uuid" text NOT NULL,
	"attempt" integer NOT NULL,
	"rack" text,
	"failed_at" timestamp with time zone NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone,
	"outcome" text DEFAULT 'running' NOT NULL,
	"reason" text
);
--> statement-breakpoint
CREATE TABLE "fleet_webhook_deliveries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"event" text NOT NULL,
	"node_uuid" text,
	"url" text NOT NULL,
	"body" text NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone NOT NULL,
	"delivered_at" timestamp with time zone,
	"gave_up_at" timestamp with time zone,
	"last_error" text,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "fleet_rebuilds" ADD CONSTRAINT "fleet_rebuilds_node_uuid_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "fleet_rebuilds_node_idx" ON "fleet_rebuilds" USING btree ("node_uuid","id");--> statement-breakpoint
CREATE INDEX "fleet_rebuilds_outcome_idx" ON "fleet_rebuilds" USING btree ("outcome");--> statement-breakpoint
CREATE INDEX "fleet_webhook_due_idx" ON "fleet_webhook_deliveries" USING btree ("next_attempt_at");