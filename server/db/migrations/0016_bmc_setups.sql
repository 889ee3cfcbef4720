CREATE TABLE "bmc_setups" (
	"node_uuid" text PRIMARY KEY NOT NULL,
	"id" text NOT NULL,
	"state" text NOT NULL,
	"plan_sealed" text,
	"password_sealed" text,
	"summary" jsonb NOT NULL,
	"requested_by" text NOT NULL,
	"requested_at" timestamp with time zone NOT NULL,
	"delivered_at" timestamp with time zone,
	"delivered_attempt_id" bigint,
	"delivered_address" text,
	"finished_at" timestamp with time zone,
	"message" text,
	CONSTRAINT "bmc_setups_id_unique" UNIQUE("id")
);
--> statement-breakpoint
ALTER TABLE "bmc_setups" ADD CONSTRAINT "bmc_setups_node_uuid_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "bmc_setups_open_idx" ON "bmc_setups" USING btree ("state","requested_at");